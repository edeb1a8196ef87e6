/**
 * `auth.close()`: refreshes in flight settle and release their leases, watchers and orchestrators stop
 * (watch leases released), a second close is the same promise, and every method refuses to run afterwards.
 */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AccountStore,
  aesGcmCipher,
  ClosedError,
  createMailboxAuth,
  definePreset,
  GOOGLE,
  isMailboxAuthError,
  memoryStore,
  type ProviderOptions,
} from '../src/index.js';
import { fakeGoogle } from '../src/testing/index.js';
import { CLIENT, GOOGLE_REDIRECT } from './support/flow.js';
import { MemoryMailServer, memoryTransport } from './support/memory-transport.js';
import { expiredAccount } from './support/refresh.js';

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const TOKEN_URL = 'https://login.microsoftonline.com/common/oauth2/v2.0/token';

/** Holds every token request at the endpoint until `open()`; `reached` resolves when the first arrives. */
function gateTokenEndpoint() {
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let arrived = () => {};
  const reached = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  server.use(
    http.post(TOKEN_URL, async () => {
      arrived();
      await gate;
      return undefined; // on to the fake provider
    }),
  );
  return { open, reached };
}

async function fleet(accounts = 1) {
  const setup = await expiredAccount(server, { accounts });
  const auth = createMailboxAuth({
    providers: setup.registry,
    store: setup.store as never,
    cipher: setup.cipher,
    refresh: { retry: { retries: 0 }, holderId: 'closing-instance' },
  });
  return { ...setup, auth };
}

/** Whether another holder could take the lease now (then gives it back). */
async function leaseFree(store: AccountStore, key: string): Promise<boolean> {
  const lease = await store.acquireLease(key, 'another-instance', 60_000);
  if (lease !== null) await store.releaseLease(key, 'another-instance');
  return lease !== null;
}

const memoryMail = (options: ProviderOptions) =>
  definePreset(
    { ...GOOGLE, id: 'memory-mail', mailTransport: 'memory', mailTransports: ['memory'] },
    options,
  );

async function mailSetup() {
  const google = fakeGoogle(CLIENT);
  server.use(...google.handlers());
  const mail = new MemoryMailServer(google);
  const store = memoryStore();
  const auth = createMailboxAuth({
    providers: [memoryMail({ ...CLIENT, redirectUri: GOOGLE_REDIRECT })],
    store,
    cipher: aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' }),
    transports: [memoryTransport(mail)],
  });
  const { url } = await auth.startAuthorization('memory-mail', { owner: 'u1' });
  const { account } = await auth.completeAuthorization(
    'memory-mail',
    google.approve(url, { email: 'ada@example.com' }),
    { owner: 'u1' },
  );
  return { auth, store, mail, accountId: account.id };
}

describe('auth.close()', () => {
  it('lets a refresh in flight finish, stores its token and releases its lease', async () => {
    const { auth, id, store, persistence, fake } = await fleet();
    const gate = gateTokenEndpoint();
    const token = auth.getAccessToken(id);
    await gate.reached;
    expect(await leaseFree(store, id)).toBe(false); // the refresh holds it
    const closing = auth.close();
    await expect(auth.getAccount(id)).rejects.toBeInstanceOf(ClosedError);
    gate.open();
    await closing;
    expect(await leaseFree(store, id)).toBe(true);
    // The answer of the request already sent was kept: its rotated refresh token is the stored one.
    const refreshed = await token;
    const stored = await persistence.load(id);
    expect(stored.tokens?.accessToken).toBe(refreshed.accessToken);
    expect(fake.isRefreshTokenValid(stored.tokens?.refreshToken as string)).toBe(true);
  });

  it('stops a fleet refresh in flight: it rejects with ClosedError and every lease is free', async () => {
    const { auth, ids, store } = await fleet(3);
    const gate = gateTokenEndpoint();
    const run = auth.refreshExpiring({ withinMs: 86_400_000, concurrency: 1 });
    await gate.reached;
    const closing = auth.close();
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClosedError);
    expect((err as ClosedError).code).toBe('ERR_CLOSED');
    gate.open();
    await closing;
    for (const id of ids) expect(await leaseFree(store, id)).toBe(true);
  });

  it('releases the lease kept for tokens whose store write never succeeded', async () => {
    const inner = memoryStore();
    let failPuts = 0;
    const flaky = new Proxy(inner, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop === 'putAccount') {
          return (...args: Parameters<AccountStore['putAccount']>) => {
            if (failPuts > 0) return Promise.reject(new Error('connection terminated unexpectedly'));
            return inner.putAccount(...args);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const setup = await expiredAccount(server, { store: flaky });
    const auth = createMailboxAuth({
      providers: setup.registry,
      store: flaky as never,
      cipher: setup.cipher,
    });
    failPuts = 1; // every write fails from now on
    await auth.getAccessToken(setup.id);
    expect(auth.refresher.pendingWrites()).toEqual([setup.id]);
    expect(await leaseFree(inner, setup.id)).toBe(false); // kept while the write is retried
    await auth.close();
    expect(await leaseFree(inner, setup.id)).toBe(true);
  });

  it('stops a mailbox watcher and an orchestrator it created, releasing the watch lease', async () => {
    const { auth, store, accountId } = await mailSetup();
    const mailbox = auth.mailbox(accountId);
    const watcher = mailbox.watch(() => {});
    await watcher.ready;
    let watching = () => {};
    const started = new Promise<void>((resolve) => {
      watching = resolve;
    });
    // The orchestrator's watcher is up once the account's watch lease is held and its client connected.
    const orchestrator = auth.watchOrchestrator({
      onMessage: () => {},
      mailbox: { transport: 'memory' },
      holderId: 'closing-instance',
    });
    orchestrator.add(accountId, { mailbox: 'INBOX' });
    const check = setInterval(() => {
      if (orchestrator.health()[0]?.state === 'watching' && orchestrator.health()[0]?.connected) watching();
    }, 5);
    await started;
    clearInterval(check);
    expect(await leaseFree(store, `watch:${accountId}`)).toBe(false);
    await auth.close();
    await watcher.done; // resolved: the watch was stopped, not failed
    expect(mailbox.health().watching).toBe(false);
    expect(orchestrator.health()).toEqual([]);
    expect(await leaseFree(store, `watch:${accountId}`)).toBe(true);
  });

  it('is idempotent: a second call returns the same promise', async () => {
    const { auth } = await fleet();
    const first = auth.close();
    expect(auth.close()).toBe(first);
    await first;
    expect(auth.close()).toBe(first);
    await expect(auth.close()).resolves.toBeUndefined();
  });

  it('makes every method fail with ClosedError afterwards', async () => {
    const { auth, id } = await fleet();
    await auth.close();
    const asyncCalls: [string, () => Promise<unknown>][] = [
      ['getAccessToken', () => auth.getAccessToken(id)],
      ['connectImap', () => auth.connectImap(id)],
      ['createSmtpTransport', () => auth.createSmtpTransport(id)],
      ['refreshExpiring', () => auth.refreshExpiring({ withinMs: 1000 })],
      ['health', () => auth.health()],
      ['accountHealth', () => auth.accountHealth(id)],
      ['rotateKeys', () => auth.rotateKeys()],
      ['startAuthorization', () => auth.startAuthorization('microsoft', { owner: 'o' })],
      [
        'completeAuthorization',
        () => auth.completeAuthorization('microsoft', 'https://x/?code=c', { owner: 'o' }),
      ],
      ['disconnect', () => auth.disconnect(id)],
      ['getAccount', () => auth.getAccount(id)],
    ];
    for (const [name, call] of asyncCalls) {
      const err = await call().catch((e: unknown) => e);
      expect(isMailboxAuthError(err, 'ERR_CLOSED'), name).toBe(true);
      expect((err as Error).message).toContain(`${name}()`);
      expect((err as ClosedError).retryable).toBe(false);
    }
    const syncCalls: [string, () => unknown][] = [
      ['mailbox', () => auth.mailbox(id)],
      ['watchOrchestrator', () => auth.watchOrchestrator({ onMessage: () => {} })],
      ['on', () => auth.on('refreshed', () => {})],
      ['listProviders', () => auth.listProviders()],
    ];
    for (const [name, call] of syncCalls) {
      expect(call, name).toThrow(ClosedError);
    }
    const err = await auth.getAccessToken(id).catch((e: unknown) => e);
    expect(JSON.stringify(err)).toContain('ERR_CLOSED');
    expect(inspect(err)).not.toMatch(/refresh_token|secret/i);
  });

  it("ends a wait for another instance's refresh with ClosedError, the abort as cause", async () => {
    const { auth, id, store } = await fleet();
    await store.acquireLease(id, 'another-instance', 60_000); // another instance is refreshing
    let refused = () => {};
    const waiting = new Promise<void>((resolve) => {
      refused = resolve;
    });
    const leases: AccountStore = store;
    const acquire = leases.acquireLease.bind(leases);
    leases.acquireLease = async (...args: Parameters<AccountStore['acquireLease']>) => {
      const lease = await acquire(...args);
      if (lease === null) refused();
      return lease;
    };
    const token = auth.getAccessToken(id);
    await waiting;
    await auth.close();
    const err = await token.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClosedError);
    expect((err as Error).message).toBe('MailboxAuth was closed while getAccessToken() ran');
    expect((err as Error).cause).toBeInstanceOf(Error);
  });
});
