/** CircuitBreaker.execute: every exit of a probe settles it; the circuit never stays half-open. */
import { describe, expect, it } from 'vitest';
import { ProviderUnavailableError } from '../../src/index.js';
import { CircuitBreaker } from '../../src/refresh/circuit-breaker.js';

function openBreaker() {
  let now = 1_000_000;
  const changes: string[] = [];
  const breaker = new CircuitBreaker(
    'p',
    { failureThreshold: 1, cooldownMs: 100 },
    () => now,
    (s) => changes.push(s),
  );
  breaker.failure();
  now += 101; // the cool-down is over: the next call is the probe
  return { breaker, changes, tick: (ms: number) => (now += ms) };
}

describe('CircuitBreaker.execute', () => {
  it.each([
    ['returns without an outcome (the lease was busy, a usable token was found)', async () => undefined],
    ['is aborted', async () => Promise.reject(new DOMException('aborted', 'AbortError'))],
    ['throws an error that is not the library’s', async () => Promise.reject(new TypeError('boom'))],
  ])('a probe that %s returns the circuit to open with the cool-down over', async (_name, fn) => {
    const { breaker } = openBreaker();
    await breaker.execute(fn).catch(() => {});
    expect(breaker.snapshot()).toMatchObject({ state: 'open', retryAfterMs: 0 });
    // The next call is a probe again, not refused.
    let ran = false;
    await breaker.execute(async () => {
      ran = true;
      breaker.success();
    });
    expect(ran).toBe(true);
    expect(breaker.snapshot().state).toBe('closed');
  });

  it('a probe that succeeds closes; one that fails transiently opens for a new cool-down; a permanent one closes', async () => {
    for (const [report, state] of [
      ['success', 'closed'],
      ['failure', 'open'],
      ['neutral', 'closed'],
    ] as const) {
      const { breaker } = openBreaker();
      await breaker.execute(async () => breaker[report]());
      expect(breaker.snapshot().state, report).toBe(state);
      if (state === 'open') expect(breaker.snapshot().retryAfterMs).toBe(100);
    }
  });

  it('refuses while open and while another probe runs', async () => {
    const { breaker, tick } = openBreaker();
    let release: () => void = () => {};
    const probe = breaker.execute(() => new Promise<void>((r) => (release = r)));
    await expect(breaker.execute(async () => 1)).rejects.toBeInstanceOf(ProviderUnavailableError);
    release();
    await probe;
    tick(1);
    expect(await breaker.execute(async () => 2)).toBe(2); // probe again after the one without an outcome
  });
});
