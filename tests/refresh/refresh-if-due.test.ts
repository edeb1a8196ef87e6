/** TokenRefresher.refreshIfDue: the step of a bulk refresh that several instances run at once. */
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import { expiredAccount } from '../support/refresh.js';

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

describe('TokenRefresher.refreshIfDue', () => {
  it('says what it did: refreshed, then fresh (from the cache and from the store)', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    const r = refresher();
    expect(await r.refreshIfDue(id, { minValidityMs: 60_000 })).toBe('refreshed');
    expect(await r.refreshIfDue(id, { minValidityMs: 60_000 })).toBe('fresh');
    // Another process (a fresh refresher over the same store) finds the stored token valid.
    expect(await refresher().refreshIfDue(id, { minValidityMs: 60_000 })).toBe('fresh');
    expect(fake.stats.refreshes).toBe(1);
    // Two refreshes within the same second are both counted (an expiry comparison in whole seconds was not).
    for (let round = 0; round < 2; round++) {
      const { tokens } = await persistence.load(id);
      await persistence.saveTokens(id, { ...tokens, accessToken: 'stale', expiresAt: Date.now() - 1000 });
      r.invalidate(id);
      expect(await r.refreshIfDue(id, { minValidityMs: 60_000 })).toBe('refreshed');
    }
    expect(fake.stats.refreshes).toBe(3);
  });

  it('leaves an account whose lease another process holds to it, at once, and the circuit stays closed', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    const r = refresher({ circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } });
    expect(await persistence.acquireLease(id, 'another-process', 60_000)).not.toBeNull();
    expect(await r.refreshIfDue(id, { minValidityMs: 60_000 })).toBe('busy');
    expect(fake.stats.tokenRequests).toBe(0);
    expect(r.circuits().microsoft).toBeUndefined(); // a busy lease is found before the breaker: no probe spent
    await persistence.releaseLease(id, 'another-process');
    expect(await r.refreshIfDue(id, { minValidityMs: 60_000 })).toBe('refreshed');
    expect(r.circuits().microsoft).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
  });

  it('a getAccessToken that joined a flight left to another process waits for the token instead', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    const r = refresher();
    await persistence.acquireLease(id, 'another-process', 60_000);
    const bulk = r.refreshIfDue(id, { minValidityMs: 60_000 });
    const caller = r.getAccessToken(id); // joins the flight refreshIfDue started
    expect(await bulk).toBe('busy');
    // The other process goes away without refreshing: the caller takes the lease and refreshes.
    await persistence.releaseLease(id, 'another-process');
    const token = await caller;
    expect(token.accessToken).toBe((await persistence.load(id)).tokens?.accessToken); // the one it stored
    expect(fake.stats.refreshes).toBe(1);
  });

  it('passes failures through, and refuses bad arguments before any work', async () => {
    const { fake, refresher, id } = await expiredAccount(server);
    const r = refresher();
    for (const [accountId, minValidityMs] of [
      ['', 1000],
      [id, -1],
      [id, 1.5],
      [id, undefined],
    ] as const) {
      await expect(
        r.refreshIfDue(accountId, { minValidityMs: minValidityMs as number }),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(r.refreshIfDue('missing', { minValidityMs: 1000 })).rejects.toMatchObject({
      code: 'ERR_ACCOUNT_NOT_FOUND',
    });
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(r.refreshIfDue(id, { minValidityMs: 1000, signal: controller.signal })).rejects.toThrow(
      'stop',
    );
    expect(fake.stats.tokenRequests).toBe(0);
  });
});
