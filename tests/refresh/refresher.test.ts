import { inspect } from 'node:util';
import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import {
  type AccountStore,
  ConfigurationError,
  InvalidArgumentError,
  memoryStore,
  microsoft,
  ProviderRegistry,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  TokenExpiredError,
  TokenRefreshError,
  type TokenRefresherEvents,
} from '../../src/index.js';
import { waitFor } from '../support/async.js';
import { CLIENT, MS_REDIRECT, mswServer } from '../support/flow.js';
import { expiredAccount, recordingLogger } from '../support/refresh.js';

const server = mswServer();
const TOKEN_URL = 'https://login.microsoftonline.com/common/oauth2/v2.0/token';

/** Holds token requests at the endpoint until `open()`; `reached` resolves when the first arrives. */
function gateTokenEndpoint() {
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let arrived = () => {};
  const reached = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  let arrivals = 0;
  server.use(
    http.post(TOKEN_URL, async () => {
      arrivals++;
      arrived();
      await gate;
      return undefined; // on to the fake provider
    }),
  );
  return { open, reached, arrivals: () => arrivals };
}

function counting(store: AccountStore) {
  const calls: Record<string, number> = {};
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1;
        return value.apply(target, args);
      };
    },
  });
  return { store: wrapped, calls };
}

describe('TokenRefresher', () => {
  it('1,000 concurrent callers on an expired token make exactly one token request', async () => {
    const { fake, refresher, id } = await expiredAccount(server);
    const r = refresher();
    const results = await Promise.all(Array.from({ length: 1000 }, () => r.getAccessToken(id)));
    expect(fake.stats.tokenRequests).toBe(1);
    expect(new Set(results.map((t) => t.accessToken)).size).toBe(1);
    expect(results[0]?.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 3000_000);
    expect(results[0]?.email).toBe('user0@contoso.com');
  });

  it('serves the hot path without touching the store or the cipher', async () => {
    const { store, calls } = counting(memoryStore());
    const { refresher, id, cipher } = await expiredAccount(server, { store });
    let decrypts = 0;
    const original = cipher.decrypt.bind(cipher);
    cipher.decrypt = (c: string, a: string) => {
      decrypts++;
      return original(c, a);
    };
    const r = refresher();
    await r.getAccessToken(id);
    const before = { ...calls };
    const decryptsBefore = decrypts;
    for (let i = 0; i < 100; i++) await r.getAccessToken(id);
    expect(calls).toEqual(before);
    expect(decrypts).toBe(decryptsBefore);
  });

  it('uses a stored token that is still valid without calling the provider', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    await persistence.saveTokens(id, { accessToken: 'still-valid', expiresAt: Date.now() + 3600_000 });
    const token = await refresher().getAccessToken(id);
    expect(token.accessToken).toBe('still-valid');
    expect(fake.stats.tokenRequests).toBe(0);
  });

  it.each([60, 300])(
    'a token that lives %i s is refreshed once, not on every call: the skew is clamped to half its lifetime',
    async (ttlS) => {
      const { fake, refresher, id } = await expiredAccount(server, { accessTokenTtlS: ttlS });
      let offsetMs = 0;
      const r = refresher({ now: () => Date.now() + offsetMs }); // minValidityMs: the default 5 minutes
      const first = await r.getAccessToken(id);
      for (let i = 0; i < 4; i++) expect((await r.getAccessToken(id)).accessToken).toBe(first.accessToken);
      expect(fake.stats.refreshes).toBe(1);
      // A fresh process reading the stored token agrees (the lifetime comes from the record).
      const other = refresher({ now: () => Date.now() + offsetMs });
      expect((await other.getAccessToken(id)).accessToken).toBe(first.accessToken);
      expect(fake.stats.refreshes).toBe(1);
      // Still used until half its life is left; refreshed once past that point.
      offsetMs = ttlS * 400; // 40 % of its life gone
      expect((await r.getAccessToken(id)).accessToken).toBe(first.accessToken);
      offsetMs = ttlS * 600; // 60 % gone: less than half left
      const next = await r.getAccessToken(id);
      expect(next.accessToken).not.toBe(first.accessToken);
      expect(fake.stats.refreshes).toBe(2);
    },
  );

  it('never reuses a rotated refresh token (the server answers reuse with invalid_grant)', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server, { rotate: true });
    const r = refresher();
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const burst = await Promise.all(
        Array.from({ length: 10 }, () => r.getAccessToken(id, { forceRefresh: i % 2 === 0 })),
      );
      seen.add(burst[0]?.accessToken as string);
      const stored = (await persistence.load(id)).tokens?.refreshToken as string;
      expect(fake.isRefreshTokenValid(stored)).toBe(true);
      await persistence.saveTokens(id, { accessToken: 'expire-me', expiresAt: Date.now() - 1 });
      r.invalidate(id);
    }
    expect(fake.stats.refreshes).toBe(20);
    expect((await persistence.getAccount(id)).consecutiveFailures).toBe(0);
  });

  it('keeps the stored refresh token when the response has none (Google)', async () => {
    const { refresher, id, persistence } = await expiredAccount(server, { rotate: false });
    const before = (await persistence.load(id)).tokens?.refreshToken;
    await refresher().getAccessToken(id);
    const after = await persistence.load(id);
    expect(after.tokens?.refreshToken).toBe(before);
    expect(after.account.tokenExpiresAt?.getTime()).toBeGreaterThan(Date.now());
  });

  it.each([
    ['500', { status: 500, body: { error: 'server_error' } }],
    ['502 HTML', { status: 502, body: '<html>bad gateway</html>' }],
    ['503', { status: 503, body: { error: 'temporarily_unavailable' } }],
    ['429 without Retry-After', { status: 429, body: { error: 'too_many_requests' } }],
    ['a connection reset', 'network' as const],
    ['an HTML 200', { status: 200, body: '<html>portal</html>' }],
    ['no access_token', { status: 200, body: { token_type: 'Bearer' } }],
  ])('retries after %s and then succeeds, losing nothing', async (_name, fault) => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    fake.failNext(fault);
    const token = await refresher().getAccessToken(id);
    expect(fake.stats.tokenRequests).toBe(2);
    const stored = await persistence.load(id);
    expect(stored.tokens?.accessToken).toBe(token.accessToken);
    expect(fake.isRefreshTokenValid(stored.tokens?.refreshToken as string)).toBe(true);
  });

  it('retries truncated JSON', async () => {
    const { fake, refresher, id } = await expiredAccount(server);
    server.use(
      http.post(
        'https://login.microsoftonline.com/common/oauth2/v2.0/token',
        () =>
          new HttpResponse('{"access_token":"x","expi', {
            status: 200,
            headers: { 'content-type': 'application/json' },
          }),
        { once: true },
      ),
    );
    await refresher().getAccessToken(id);
    expect(fake.stats.tokenRequests).toBe(1); // the truncated answer came from the override
  });

  it('honours Retry-After on 429', async () => {
    const { fake, refresher, id } = await expiredAccount(server);
    fake.failNext({ status: 429, body: { error: 'too_many_requests' }, headers: { 'retry-after': '1' } });
    const started = Date.now();
    await refresher().getAccessToken(id);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(fake.stats.tokenRequests).toBe(2);
  });

  it('gives up after bounded attempts with a retryable error and records the failure', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    fake.failNext(
      ...Array.from({ length: 4 }, () => ({ status: 503, body: { error: 'temporarily_unavailable' } })),
    );
    const failed: TokenRefresherEvents['refreshFailed'][] = [];
    const r = refresher().on('refreshFailed', (e) => failed.push(e));
    const err = await r.getAccessToken(id).catch((e) => e);
    expect(err).toBeInstanceOf(TokenRefreshError);
    expect(err.retryable).toBe(true);
    expect(fake.stats.tokenRequests).toBe(4);
    const account = await persistence.getAccount(id);
    expect(account).toMatchObject({ status: 'active', consecutiveFailures: 1 });
    expect(account.lastError?.code).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(failed).toHaveLength(1);
    // The refresh token is intact: the next call succeeds.
    await r.getAccessToken(id);
    expect((await persistence.getAccount(id)).consecutiveFailures).toBe(0);
  });

  it('a timeout is transient and retried', async () => {
    // The set-up (code exchange) runs with the harness's generous timeout; only the refresher's provider has
    // the short one under test. The first token request is never answered, so its timeout is the only way it
    // can end: firing "early" is impossible. The retry is answered at once by the fake; 5 s (the timeout is in
    // whole seconds) is far beyond what an in-process answer takes even on a loaded machine.
    const { fake, refresher, id } = await expiredAccount(server);
    let arrivals = 0;
    server.use(
      http.post(
        TOKEN_URL,
        async () => {
          arrivals++;
          await new Promise<never>(() => {}); // never answered: only the client's timeout ends it
          return HttpResponse.error();
        },
        { once: true },
      ),
    );
    const registry = new ProviderRegistry([
      microsoft({ ...CLIENT, redirectUri: MS_REDIRECT, timeoutMs: 5000 }),
    ]);
    const token = await refresher({
      registry,
      retry: { retries: 1, minDelayMs: 1, maxDelayMs: 5 },
    }).getAccessToken(id);
    expect(token.accessToken).toBeTruthy();
    expect(arrivals).toBe(1); // the held request reached the endpoint and ended by the client's timeout
    expect(fake.stats.tokenRequests).toBe(1); // the retry, answered by the fake
  });

  it('invalid_grant: no retry, reauth_required, an event, and later calls fail fast', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    fake.revokeUser('user0@contoso.com');
    const events: TokenRefresherEvents['reauthorizationRequired'][] = [];
    const r = refresher().on('reauthorizationRequired', (e) => events.push(e));
    const err = await r.getAccessToken(id).catch((e) => e);
    expect(err).toBeInstanceOf(ReauthorizationRequiredError);
    expect(fake.stats.tokenRequests).toBe(1);
    expect(events).toEqual([{ accountId: id, provider: 'microsoft', reason: err.message }]);
    expect((await persistence.getAccount(id)).status).toBe('reauth_required');
    const again = await r.getAccessToken(id).catch((e) => e);
    expect(again).toBeInstanceOf(ReauthorizationRequiredError);
    expect(fake.stats.tokenRequests).toBe(1);
    // Another process fails fast too: the status is stored.
    await expect(refresher().getAccessToken(id)).rejects.toBeInstanceOf(ReauthorizationRequiredError);
    expect(fake.stats.tokenRequests).toBe(1);
  });

  it('invalid_client is a configuration error, not retried', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    fake.failNext({ status: 401, body: { error: 'invalid_client' } });
    await expect(refresher().getAccessToken(id)).rejects.toBeInstanceOf(ConfigurationError);
    expect(fake.stats.tokenRequests).toBe(1);
    expect((await persistence.getAccount(id)).status).toBe('error');
  });

  it('keeps rotated tokens when the store write fails, and stores them on retry', async () => {
    const inner = memoryStore();
    let failPuts = 0;
    const flaky: AccountStore = new Proxy(inner, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop === 'putAccount' || prop === 'putAccountAndRelease') {
          return (...args: Parameters<AccountStore['putAccount']>) => {
            if (failPuts > 0) {
              failPuts--;
              return Promise.reject(new Error('connection terminated unexpectedly'));
            }
            return (value as AccountStore['putAccount']).apply(target, args);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const { fake, refresher, id, persistence } = await expiredAccount(server, { store: flaky, rotate: true });
    const r = refresher();
    failPuts = 1;
    const token = await r.getAccessToken(id);
    expect(r.pendingWrites()).toEqual([id]);
    // While pending, this process keeps serving the new token and holds the lease.
    expect((await r.getAccessToken(id)).accessToken).toBe(token.accessToken);
    expect(await inner.acquireLease(id, 'another-process', 1000)).toBeNull();
    // Wait for the background write to succeed (the condition itself, not a fixed number of polls).
    await waitFor(() => (r.pendingWrites().length === 0 ? true : undefined), 15_000);
    expect(r.pendingWrites()).toEqual([]);
    const stored = await persistence.load(id);
    expect(stored.tokens?.accessToken).toBe(token.accessToken);
    expect(fake.isRefreshTokenValid(stored.tokens?.refreshToken as string)).toBe(true);
    expect(fake.stats.refreshes).toBe(1);
    expect(await inner.acquireLease(id, 'another-process', 1000)).not.toBeNull();
    r.close();
  });

  it('opens the circuit after 5 transient failures, fails fast, probes after the cool-down, and closes', async () => {
    let now = Date.now();
    const { fake, refresher, ids } = await expiredAccount(server, { accounts: 7 });
    const events: string[] = [];
    const r = refresher({
      now: () => now,
      retry: { retries: 0 },
      circuitBreaker: { failureThreshold: 5, cooldownMs: 60_000 },
    })
      .on('circuitOpen', (e) => events.push(`open ${e.provider} ${e.retryAfterMs}`))
      .on('circuitClosed', (e) => events.push(`closed ${e.provider}`));
    fake.failNext(...Array.from({ length: 6 }, () => ({ status: 503, body: {} })));
    for (const id of ids.slice(0, 5))
      await expect(r.getAccessToken(id)).rejects.toBeInstanceOf(TokenRefreshError);
    expect(events).toEqual(['open microsoft 60000']);
    expect(r.circuits().microsoft?.state).toBe('open');
    const requests = fake.stats.tokenRequests;
    const fast = await r.getAccessToken(ids[5] as string).catch((e) => e);
    expect(fast).toBeInstanceOf(ProviderUnavailableError);
    expect(fast.retryAfterMs).toBe(60_000);
    expect(fake.stats.tokenRequests).toBe(requests);
    // After the cool-down one probe goes through; it fails: open again.
    now += 60_001;
    await expect(r.getAccessToken(ids[5] as string)).rejects.toBeInstanceOf(TokenRefreshError);
    expect(r.circuits().microsoft?.state).toBe('open');
    now += 60_001;
    await r.getAccessToken(ids[6] as string);
    expect(r.circuits().microsoft?.state).toBe('closed');
    expect(events).toEqual(['open microsoft 60000', 'open microsoft 60000', 'closed microsoft']);
  });

  it('a probe that finds the lease busy does not leave the circuit half-open (it used to fail fast for ever)', async () => {
    // The measured defect: with another process holding the lease when the cool-down ended, the breaker stayed
    // half_open and every refresh of the provider failed with ERR_PROVIDER_UNAVAILABLE from then on.
    let now = Date.now();
    const { fake, refresher, ids, persistence } = await expiredAccount(server, { accounts: 4 });
    const [a, b, c, d] = ids as [string, string, string, string];
    const r = refresher({
      now: () => now++, // each read moves 1 ms: the wait for the other process ends without real time
      retry: { retries: 0 },
      waitForOtherRefreshMs: 5,
      circuitBreaker: { failureThreshold: 2, cooldownMs: 300 },
    });
    fake.failNext({ status: 503, body: {} }, { status: 503, body: {} });
    await expect(r.getAccessToken(a)).rejects.toBeInstanceOf(TokenRefreshError);
    await expect(r.getAccessToken(b)).rejects.toBeInstanceOf(TokenRefreshError);
    expect(r.circuits().microsoft?.state).toBe('open');
    now += 301;
    await persistence.acquireLease(c, 'another-process', 60_000);
    const waited = await r.getAccessToken(c).catch((e: unknown) => e);
    expect(waited).toBeInstanceOf(TokenRefreshError); // timed out waiting for the other process
    expect(r.circuits().microsoft).toMatchObject({ state: 'open', retryAfterMs: 0 });
    // The provider is healthy: the next call is the probe; it succeeds and closes the circuit.
    await r.getAccessToken(d);
    expect(r.circuits().microsoft?.state).toBe('closed');
    await persistence.releaseLease(c, 'another-process');
    await r.getAccessToken(c);
    expect(fake.stats.tokenRequests).toBe(4); // two refused, then d and c: none made while the circuit was open
  });

  it('aborts during the backoff wait', async () => {
    const { fake, refresher, id } = await expiredAccount(server);
    fake.failNext({ status: 429, body: {}, headers: { 'retry-after': '30' } });
    const controller = new AbortController();
    const reason = new Error('request cancelled');
    const r = refresher({ retry: { maxRetryTimeMs: 60_000 } });
    const token = r.getAccessToken(id, { signal: controller.signal });
    // Abort once the throttled attempt has been answered: the refresher is then in its 30 s Retry-After wait.
    while (fake.stats.tokenRequests === 0) await new Promise((resolve) => setImmediate(resolve));
    controller.abort(reason);
    await expect(token).rejects.toBe(reason);
    await r.settled(); // the flight ended with the abort, not after the 30 s wait
    expect(fake.stats.tokenRequests).toBe(1); // no retry was made
  });

  it('one waiter giving up does not abort the refresh that others wait for', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    const gate = gateTokenEndpoint();
    const r = refresher();
    const controller = new AbortController();
    const a = r.getAccessToken(id, { signal: controller.signal });
    const b = r.getAccessToken(id);
    // The shared refresh is at the token endpoint (held there); only now does one waiter give up.
    await gate.reached;
    controller.abort(new Error('gone'));
    await expect(a).rejects.toThrow('gone'); // at once, without waiting for the held answer
    gate.open();
    const token = await b;
    // Exactly one token request: the abort neither cancelled it (a retry would be a second) nor started another.
    expect(fake.stats.tokenRequests).toBe(1);
    expect(gate.arrivals()).toBe(1);
    expect((await persistence.load(id)).tokens?.accessToken).toBe(token.accessToken);
  });

  it('two processes sharing a store refresh once (the lease decides)', async () => {
    const { fake, refresher, id } = await expiredAccount(server);
    const p1 = refresher({ holderId: 'process-1' });
    const p2 = refresher({ holderId: 'process-2' });
    fake.failNext({ delayMs: 200 });
    const results = await Promise.all([
      ...Array.from({ length: 50 }, () => p1.getAccessToken(id)),
      ...Array.from({ length: 50 }, () => p2.getAccessToken(id)),
    ]);
    expect(fake.stats.refreshes).toBe(1);
    expect(new Set(results.map((t) => t.accessToken)).size).toBe(1);
  });

  it('a lease left by a dead process lapses, then the account is refreshed', async () => {
    // One injected clock for the store's leases and the refresher: the lease lapses when the test says so.
    let now = Date.now();
    const store = memoryStore({ now: () => now });
    const { fake, refresher, id, persistence } = await expiredAccount(server, { store });
    await persistence.acquireLease(id, 'crashed-process', 300);
    let settled = false;
    const token = refresher({ now: () => now })
      .getAccessToken(id)
      .finally(() => {
        settled = true;
      });
    // While the lease holds, nothing is refreshed and the caller waits (it polls the store).
    await waitFor(() => (fake.stats.tokenRequests === 0 && !settled ? true : undefined));
    expect(await store.acquireLease(id, 'yet-another-process', 1000)).toBeNull();
    now += 301; // the dead holder's lease lapses
    await token;
    expect(fake.stats.refreshes).toBe(1);
  });

  it('waits for another process only up to waitForOtherRefreshMs', async () => {
    const { refresher, id, persistence } = await expiredAccount(server);
    await persistence.acquireLease(id, 'slow-process', 60_000);
    const err = await refresher({ waitForOtherRefreshMs: 200 })
      .getAccessToken(id)
      .catch((e) => e);
    expect(err).toBeInstanceOf(TokenRefreshError);
    expect(err.message).toMatch(/another process/);
  });

  it('forceRefresh replaces a rejected token once, even for many callers', async () => {
    const { fake, refresher, id } = await expiredAccount(server);
    const r = refresher();
    const first = await r.getAccessToken(id);
    const forced = await Promise.all(
      Array.from({ length: 20 }, () => r.getAccessToken(id, { forceRefresh: true })),
    );
    expect(new Set(forced.map((t) => t.accessToken)).size).toBe(1);
    expect(forced[0]?.accessToken).not.toBe(first.accessToken);
    expect(fake.stats.refreshes).toBe(2);
  });

  it('rejected: the refused token is replaced once; a late refusal of it, here or in another process, costs nothing', async () => {
    const { fake, refresher, id } = await expiredAccount(server);
    const r = refresher();
    const first = await r.getAccessToken(id);
    const replaced = await r.getAccessToken(id, { rejected: first });
    expect(replaced.accessToken).not.toBe(first.accessToken);
    expect(fake.stats.refreshes).toBe(2);
    // The old token refused again (a request that was slower): the new one, no refresh.
    expect((await r.getAccessToken(id, { rejected: first })).accessToken).toBe(replaced.accessToken);
    // Another process holding nothing: it reads the store, which already holds a token other than the refused one.
    expect((await refresher().getAccessToken(id, { rejected: first })).accessToken).toBe(
      replaced.accessToken,
    );
    expect(fake.stats.refreshes).toBe(2);
    // The current token refused: refreshed.
    expect((await r.getAccessToken(id, { rejected: replaced })).accessToken).not.toBe(replaced.accessToken);
    expect(fake.stats.refreshes).toBe(3);
    const message = 'rejected must be an AccessToken of this account and resource (from getAccessToken)';
    for (const bad of [{ accessToken: 1, accountId: id }, { ...first.toJSON(), accountId: 'other' }, null]) {
      await expect(r.getAccessToken(id, { rejected: bad as never })).rejects.toThrow(
        new InvalidArgumentError(message),
      );
    }
    await expect(r.getAccessToken(id, { rejected: first, resource: 'graph' })).rejects.toThrow(message);
    expect(fake.stats.refreshes).toBe(3);
  });

  it('forceRefresh refreshes even when this process holds no token yet', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    await persistence.saveTokens(id, {
      accessToken: 'rejected-by-the-server',
      expiresAt: Date.now() + 3600_000,
    });
    const forced = await Promise.all(
      Array.from({ length: 5 }, () => refresher().getAccessToken(id, { forceRefresh: true })),
    );
    const shared = refresher();
    const same = await Promise.all(
      Array.from({ length: 5 }, () => shared.getAccessToken(id, { forceRefresh: true })),
    );
    for (const t of [...forced, ...same]) expect(t.accessToken).not.toBe('rejected-by-the-server');
    expect(new Set(same.map((t) => t.accessToken)).size).toBe(1);
    expect(fake.stats.refreshes).toBeGreaterThanOrEqual(2);
  });

  it('an expired token without a refresh token is TokenExpiredError', async () => {
    const { refresher, id, persistence, store } = await expiredAccount(server);
    const raw = await store.getAccount(id);
    if (!raw) throw new Error('setup');
    await persistence.clearTokens(id, { status: 'active' });
    await persistence.saveTokens(id, { accessToken: 'a', expiresAt: Date.now() - 1 });
    await expect(refresher().getAccessToken(id)).rejects.toBeInstanceOf(TokenExpiredError);
  });

  it('a disconnected account requires reauthorization', async () => {
    const { refresher, id, persistence } = await expiredAccount(server);
    await persistence.clearTokens(id);
    await expect(refresher().getAccessToken(id)).rejects.toBeInstanceOf(ReauthorizationRequiredError);
  });

  it('validates arguments and options', async () => {
    const { refresher, persistence, registry } = await expiredAccount(server);
    const r = refresher();
    await expect(r.getAccessToken('')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(r.getAccessToken('x', { minValidityMs: -1 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    await expect(r.getAccessToken('missing')).rejects.toMatchObject({ code: 'ERR_ACCOUNT_NOT_FOUND' });
    await expect(r.getAccessToken('x', { signal: AbortSignal.abort(new Error('stop')) })).rejects.toThrow(
      'stop',
    );
    const { TokenRefresher } = await import('../../src/index.js');
    expect(() => new TokenRefresher({ persistence, registry, leaseTtlMs: 0 })).toThrow(ConfigurationError);
    expect(
      () => new TokenRefresher({ persistence, registry, circuitBreaker: { failureThreshold: 0 } }),
    ).toThrow(ConfigurationError);
    expect(() => new TokenRefresher({ persistence: undefined as never, registry })).toThrow(
      ConfigurationError,
    );
  });

  it('never hands a secret to the logger, events or serialization', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    const logger = recordingLogger();
    const payloads: unknown[] = [];
    const r = refresher({ logger })
      .on('refreshed', (e) => payloads.push(e))
      .on('refreshFailed', (e) => payloads.push(e));
    const before = (await persistence.load(id)).tokens?.refreshToken as string;
    fake.failNext({ status: 503, body: { error: 'temporarily_unavailable' } });
    const token = await r.getAccessToken(id);
    fake.revokeUser('user0@contoso.com');
    await r.getAccessToken(id, { forceRefresh: true }).catch((e) => payloads.push(e));
    const after = (await persistence.load(id)).tokens?.refreshToken as string;
    const everything = [
      ...logger.lines,
      ...payloads.map((p) => JSON.stringify(p)),
      ...payloads.map((p) => inspect(p, { depth: 10 })),
      JSON.stringify(token),
      inspect(token),
      inspect(r),
    ].join('\n');
    expect(logger.lines.length).toBeGreaterThan(2);
    for (const secret of [token.accessToken, before, after]) expect(everything).not.toContain(secret);
  });

  it('a throwing listener does not break a refresh', async () => {
    const { refresher, id } = await expiredAccount(server);
    const logger = recordingLogger();
    const r = refresher({ logger }).on('refreshed', () => {
      throw new Error('listener bug');
    });
    await expect(r.getAccessToken(id)).resolves.toBeTruthy();
    expect(logger.lines.some((l) => l.includes('event listener threw'))).toBe(true);
  });
});
