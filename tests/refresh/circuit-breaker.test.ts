/**
 * CircuitBreaker.execute: every call's outcome is reported however it ends, so a probe always settles and the
 * circuit never stays half-open with no probe; successThreshold probes close it.
 */
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  TokenRefreshError,
} from '../../src/index.js';
import { CircuitBreaker, type CircuitOutcome } from '../../src/refresh/circuit-breaker.js';

/** As the refresher classifies: transient = failure, the library's other errors = neutral, else nothing. */
const classify = (error: unknown): CircuitOutcome =>
  error instanceof TokenRefreshError
    ? 'failure'
    : error instanceof ReauthorizationRequiredError
      ? 'neutral'
      : 'none';

const transient = () => Promise.reject(new TokenRefreshError('HTTP 503'));

function breakerWith(options: { failureThreshold?: number; successThreshold?: number; cooldownMs?: number }) {
  let now = 1_000_000;
  const changes: string[] = [];
  const breaker = new CircuitBreaker(
    'p',
    { cooldownMs: 100, ...options },
    () => now,
    (s) => changes.push(s),
  );
  return { breaker, changes, tick: (ms: number) => (now += ms) };
}

/** A breaker opened by one transient failure, its cool-down over: the next call is the probe. */
async function openBreaker(successThreshold = 1) {
  const b = breakerWith({ failureThreshold: 1, successThreshold });
  await b.breaker.execute(transient, classify).catch(() => {});
  expect(b.breaker.snapshot().state).toBe('open');
  b.tick(101);
  return b;
}

describe('CircuitBreaker.execute', () => {
  it('opens after failureThreshold transient failures in a row and refuses during the cool-down', async () => {
    const { breaker, changes, tick } = breakerWith({ failureThreshold: 3 });
    for (let i = 0; i < 2; i++) await breaker.execute(transient, classify).catch(() => {});
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
    await breaker.execute(async () => 'ok', classify); // a success resets the count
    for (let i = 0; i < 3; i++) await breaker.execute(transient, classify).catch(() => {});
    expect(breaker.snapshot()).toMatchObject({ state: 'open', retryAfterMs: 100 });
    expect(changes).toEqual(['open']);
    let ran = false;
    const refused = await breaker
      .execute(async () => {
        ran = true;
      }, classify)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProviderUnavailableError);
    expect((refused as ProviderUnavailableError).retryAfterMs).toBe(100);
    expect(ran).toBe(false);
    tick(40);
    expect(breaker.snapshot().retryAfterMs).toBe(60);
  });

  it.each([
    ['is aborted', () => Promise.reject(new DOMException('aborted', 'AbortError'))],
    ['throws an error that is not the library’s', () => Promise.reject(new TypeError('boom'))],
  ])('a probe that %s settles: the next call is the probe', async (_name, fn) => {
    const { breaker, changes } = await openBreaker();
    await expect(breaker.execute(fn, classify)).rejects.toBeDefined();
    expect(breaker.snapshot().state).toBe('half_open');
    let ran = false;
    await breaker.execute(async () => {
      ran = true;
    }, classify);
    expect(ran).toBe(true);
    expect(breaker.snapshot().state).toBe('closed');
    expect(changes).toEqual(['open', 'closed']);
  });

  it('a probe that succeeds closes; a transient failure opens for a new cool-down; a permanent one (the provider answered) closes', async () => {
    for (const [fn, state] of [
      [async () => 'token', 'closed'],
      [transient, 'open'],
      [() => Promise.reject(new ReauthorizationRequiredError('invalid_grant')), 'closed'],
    ] as const) {
      const { breaker } = await openBreaker();
      await breaker.execute(fn as () => Promise<unknown>, classify).catch(() => {});
      expect(breaker.snapshot().state).toBe(state);
      if (state === 'open') expect(breaker.snapshot().retryAfterMs).toBe(100);
    }
  });

  it('lets one probe at a time through and refuses the others while it runs', async () => {
    const { breaker } = await openBreaker();
    let release: () => void = () => {};
    const probe = breaker.execute(() => new Promise<void>((r) => (release = r)), classify);
    expect(breaker.snapshot().state).toBe('half_open');
    await expect(breaker.execute(async () => 1, classify)).rejects.toBeInstanceOf(ProviderUnavailableError);
    release();
    await probe;
    expect(await breaker.execute(async () => 2, classify)).toBe(2);
  });

  it('successThreshold: that many successful probes in a row close it; a failure between them re-opens', async () => {
    const { breaker, changes, tick } = await openBreaker(3);
    await breaker.execute(async () => 1, classify);
    await breaker.execute(async () => 2, classify);
    expect(breaker.snapshot()).toMatchObject({ state: 'half_open', consecutiveSuccesses: 2 });
    await breaker.execute(transient, classify).catch(() => {});
    expect(breaker.snapshot()).toMatchObject({ state: 'open', consecutiveSuccesses: 0 });
    tick(101);
    for (let i = 0; i < 3; i++) await breaker.execute(async () => i, classify);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveSuccesses: 0 });
    expect(changes).toEqual(['open', 'open', 'closed']);
  });

  it('refuses bad options with a ConfigurationError', () => {
    for (const options of [
      { failureThreshold: 0 },
      { successThreshold: 0 },
      { successThreshold: 1.5 },
      { cooldownMs: -1 },
    ]) {
      expect(() => new CircuitBreaker('p', options, Date.now, () => {})).toThrow(ConfigurationError);
    }
  });
});
