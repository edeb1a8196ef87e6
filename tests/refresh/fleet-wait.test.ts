/**
 * Waiting for another process's refresh: woken by the store's change (no read when it carries the record),
 * or by the lease's release; the breaker never sticks on these exits; a token source plugs in.
 */
import { describe, expect, it } from 'vitest';
import {
  type AccountStore,
  memoryStore,
  TokenExpiredError,
  TokenRefreshError,
  type TokenSource,
} from '../../src/index.js';
import { mswServer } from '../support/flow.js';
import { expiredAccount } from '../support/refresh.js';

const server = mswServer();

/** A memory store counting readAndLease calls and reporting when one found the lease busy. */
function watchedStore() {
  const inner = memoryStore();
  const counts = { reads: 0 };
  let onBusy = () => {};
  const store = new Proxy(inner, {
    get(target, name) {
      const value = Reflect.get(target, name, target);
      if (name === 'readAndLease') {
        return async (...args: Parameters<NonNullable<AccountStore['readAndLease']>>) => {
          counts.reads++;
          const read = await inner.readAndLease(...args);
          if (read.busy) onBusy();
          return read;
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as AccountStore;
  const busy = () =>
    new Promise<void>((resolve) => {
      onBusy = resolve;
    });
  return { store, counts, busy };
}

describe('waiting for another process', () => {
  it('is woken by the holder’s write, which carries the record: no second read, no token request', async () => {
    const { store, counts, busy } = watchedStore();
    const { fake, refresher, id, persistence } = await expiredAccount(server, { store });
    await persistence.acquireLease(id, 'other-process', 60_000);
    const r = refresher();
    const waited = busy();
    const token = r.getAccessToken(id);
    await waited;
    const readsBefore = counts.reads;
    await persistence.saveTokens(
      id,
      { accessToken: 'from-the-other-process', expiresAt: Date.now() + 3_600_000 },
      { releaseLease: 'other-process' },
    );
    expect((await token).accessToken).toBe('from-the-other-process');
    expect(counts.reads).toBe(readsBefore); // woken with the record: nothing read again
    expect(fake.stats.tokenRequests).toBe(0);
  });

  it('is woken by a release without a write (the holder gave up) and refreshes itself, once', async () => {
    const { store, busy } = watchedStore();
    const { fake, refresher, id, persistence } = await expiredAccount(server, { store });
    await persistence.acquireLease(id, 'other-process', 60_000);
    const r = refresher();
    const waited = busy();
    const token = r.getAccessToken(id);
    await waited;
    await persistence.releaseLease(id, 'other-process');
    expect((await token).accessToken).toMatch(/./);
    expect(fake.stats.tokenRequests).toBe(1);
  });

  it('a cool-down that ends while another process holds the lease, or finds its token refreshed, leaves the next refresh a probe', async () => {
    let now = Date.now();
    const { store, busy } = watchedStore();
    const { fake, refresher, ids, persistence } = await expiredAccount(server, { store, accounts: 4 });
    const [a, b, c, d] = ids as [string, string, string, string];
    const r = refresher({
      now: () => now,
      retry: { retries: 0 },
      circuitBreaker: { failureThreshold: 2, cooldownMs: 300 },
    });
    fake.failNext({ status: 503, body: {} }, { status: 503, body: {} });
    await expect(r.getAccessToken(a)).rejects.toBeInstanceOf(TokenRefreshError);
    await expect(r.getAccessToken(b)).rejects.toBeInstanceOf(TokenRefreshError);
    expect(r.circuits().microsoft?.state).toBe('open');
    now += 301;
    // c: another process holds the lease, then writes a valid token: this process uses it, no probe spent.
    await persistence.acquireLease(c, 'other-process', 60_000);
    const waited = busy();
    const fromOther = r.getAccessToken(c);
    await waited;
    await persistence.saveTokens(
      c,
      { accessToken: 'c-other', expiresAt: now + 3_600_000 },
      { releaseLease: 'other-process' },
    );
    expect((await fromOther).accessToken).toBe('c-other');
    expect(r.circuits().microsoft).toMatchObject({ state: 'open', retryAfterMs: 0 });
    // d: the probe, through a healthy provider: it closes the circuit.
    await r.getAccessToken(d);
    expect(r.circuits().microsoft?.state).toBe('closed');
    expect(fake.stats.tokenRequests).toBe(3); // a and b refused, then d
  });

  it('a probe aborted in its backoff settles: the next refresh is the probe and closes the circuit', async () => {
    let now = Date.now();
    const { fake, refresher, ids } = await expiredAccount(server, { accounts: 3 });
    const [a, b, c] = ids as [string, string, string];
    const r = refresher({
      now: () => now,
      retry: { retries: 1, maxRetryTimeMs: 60_000 },
      circuitBreaker: { failureThreshold: 1, cooldownMs: 300 },
    });
    fake.failNext({ status: 503, body: {} }, { status: 503, body: {} });
    await expect(r.getAccessToken(a)).rejects.toBeInstanceOf(TokenRefreshError);
    expect(r.circuits().microsoft?.state).toBe('open');
    now += 301;
    // b is the probe; its first attempt is throttled for 10 s, and its only caller gives up in that wait.
    fake.failNext({ status: 429, body: {}, headers: { 'retry-after': '10' } });
    const controller = new AbortController();
    const requestsBefore = fake.stats.tokenRequests;
    const probe = r.getAccessToken(b, { signal: controller.signal });
    while (fake.stats.tokenRequests === requestsBefore) await new Promise((resolve) => setImmediate(resolve));
    expect(r.circuits().microsoft?.state).toBe('half_open');
    controller.abort(new Error('the caller gave up'));
    await expect(probe).rejects.toThrow('the caller gave up');
    await r.settled();
    // Nothing learnt from it: still half-open, and the next call is let through as the probe.
    expect(r.circuits().microsoft?.state).toBe('half_open');
    await r.getAccessToken(c);
    expect(r.circuits().microsoft?.state).toBe('closed');
  });
});

describe('token sources', () => {
  it('a grant without a refresh token plugs in and runs through the same policies', async () => {
    const { refresher, id, persistence, fake } = await expiredAccount(server);
    // The account holds no refresh token (as an app-only mailbox would).
    await persistence.clearTokens(id, { status: 'active' });
    await persistence.saveTokens(id, {
      accessToken: 'old',
      refreshToken: null,
      expiresAt: Date.now() - 1000,
    });
    const requests: string[] = [];
    const appOnly: TokenSource = {
      grant: 'client_credentials',
      canObtain: () => true,
      obtain: async ({ account, refreshToken }) => {
        requests.push(`${account.id}:${refreshToken === null ? 'no refresh token' : 'refresh token'}`);
        const { TokenSet } = await import('../../src/tokens/token-set.js');
        return {
          tokens: new TokenSet({ accessToken: 'app-token', expiresAt: Date.now() + 3_600_000 }),
          scopes: undefined,
          claims: undefined,
        };
      },
    };
    const r = refresher({ tokenSource: () => appOnly });
    const [first, second] = await Promise.all([r.getAccessToken(id), r.getAccessToken(id)]);
    expect(first.accessToken).toBe('app-token');
    expect(second).toBe(first);
    expect(requests).toEqual([`${id}:no refresh token`]); // single flight around the source
    expect(fake.stats.tokenRequests).toBe(0);
    expect((await persistence.load(id)).tokens?.accessToken).toBe('app-token'); // written like any refresh
  });

  it('the default grant refuses an account without a refresh token with TokenExpiredError, before any lease', async () => {
    const { refresher, id, persistence, store } = await expiredAccount(server);
    await persistence.clearTokens(id, { status: 'active' });
    await persistence.saveTokens(id, {
      accessToken: 'old',
      refreshToken: null,
      expiresAt: Date.now() - 1000,
    });
    await expect(refresher().getAccessToken(id)).rejects.toBeInstanceOf(TokenExpiredError);
    expect(await store.acquireLease(id, 'someone-else', 1000)).not.toBeNull(); // no lease left behind
  });
});
