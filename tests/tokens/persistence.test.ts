import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AccountNotFoundError,
  type AccountStore,
  aesGcmCipher,
  ConfigurationError,
  CryptoError,
  InvalidArgumentError,
  memoryStore,
  StorageError,
  TokenPersistence,
  VersionConflictError,
} from '../../src/index.js';
import { ACCESS, connectInput, ID_TOKEN, REFRESH, setup } from './helpers.js';

describe('TokenPersistence', () => {
  it('validates ids, owners, emails and metadata above the store: a naive store is never asked', async () => {
    const calls: string[] = [];
    const inner = memoryStore();
    // A third-party store that checks nothing and would keep whatever it is given.
    const naive = new Proxy(inner, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function'
          ? (...args: unknown[]) => {
              calls.push(String(prop));
              return value.apply(target, args);
            }
          : value;
      },
    });
    const { persistence } = setup({ store: naive });
    const bad = [
      connectInput({ owner: 'user\u0000' }),
      connectInput({ owner: 'user-\ud800' }),
      connectInput({ email: 'ada\udc00@example.com' }),
      connectInput({ provider: 'google\n' }),
      connectInput({ id: 'id\u0000' }),
      connectInput({ metadata: { 'role\u0000': 'booking' } }),
      connectInput({ metadata: { role: 'book\ud800' } }),
      connectInput({ scopes: ['openid\u0000'] }),
    ];
    for (const input of bad)
      await expect(persistence.connect(input as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(persistence.getAccount('a\u0000')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      persistence.findAccount({ provider: 'google', owner: 'o\ud800', email: 'a@example.com' }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(calls).toEqual([]);
    // Two owners that differ only in a lone surrogate never become one account.
    const { account } = await persistence.connect(connectInput({ owner: 'owner-x' }));
    await expect(
      persistence.connect(connectInput({ owner: 'owner-x\ud800' }) as never),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await persistence.getAccount(account.id)).owner).toBe('owner-x');
  });

  it('a failure text that would not store the same everywhere (NUL, a cut surrogate pair) is made storable', async () => {
    const { persistence } = setup();
    const { account } = await persistence.connect(connectInput());
    const updated = await persistence.recordFailure(account.id, {
      code: 'E\u0000',
      message: `x\u0000y ${'🙂'.slice(0, 1)}`,
    });
    expect(updated.lastError).toMatchObject({ code: 'E\ufffd', message: 'x\ufffdy \ufffd' });
  });

  it('connects a mailbox: stores it encrypted and loads the tokens back', async () => {
    const { persistence, store } = setup();
    const expiresAt = Date.now() + 3600_000;
    const result = await persistence.connect(
      connectInput({ tokens: { accessToken: ACCESS, refreshToken: REFRESH, idToken: ID_TOKEN, expiresAt } }),
    );
    expect(result.created).toBe(true);
    expect(result.account).toMatchObject({
      provider: 'google',
      owner: 'user-1',
      email: 'ada@example.com',
      status: 'active',
      version: 1,
      consecutiveFailures: 0,
      lastError: null,
      metadata: { plan: 'pro' },
    });
    expect(result.account.tokenExpiresAt?.getTime()).toBe(expiresAt);
    const raw = await store.getAccount(result.account.id);
    expect(raw?.secret).toMatch(/^om1\.k1\./);
    for (const secret of [ACCESS, REFRESH, ID_TOKEN]) expect(JSON.stringify(raw)).not.toContain(secret);
    const loaded = await persistence.load(result.account.id);
    expect(loaded.tokens?.accessToken).toBe(ACCESS);
    expect(loaded.tokens?.refreshToken).toBe(REFRESH);
    expect(loaded.tokens?.idToken).toBe(ID_TOKEN);
    expect(loaded.tokens?.expiresAt?.getTime()).toBe(expiresAt);
    expect(loaded.tokens?.tokenType).toBe('Bearer');
  });

  it('reconnects the same mailbox in place: same id, active again, failures reset, no duplicate', async () => {
    const { persistence, store } = setup();
    const first = await persistence.connect(connectInput());
    await persistence.recordFailure(
      first.account.id,
      { code: 'ERR_REAUTHORIZATION_REQUIRED', message: 'revoked' },
      { status: 'reauth_required' },
    );
    const again = await persistence.connect(
      connectInput({
        email: 'ADA@example.com',
        tokens: { accessToken: 'new-access', refreshToken: 'new-refresh' },
        metadata: undefined,
      }),
    );
    expect(again.created).toBe(false);
    expect(again.account.id).toBe(first.account.id);
    expect(again.account).toMatchObject({
      status: 'active',
      consecutiveFailures: 0,
      lastError: null,
      metadata: { plan: 'pro' },
    });
    expect((await store.listAccounts()).records).toHaveLength(1);
    const loaded = await persistence.load(first.account.id);
    expect(loaded.tokens?.refreshToken).toBe('new-refresh');
  });

  it('keeps the stored refresh token when a reconnect or refresh brings none', async () => {
    const { persistence } = setup();
    const { account } = await persistence.connect(connectInput());
    await persistence.connect(
      connectInput({ tokens: { accessToken: 'second-access' }, metadata: { plan: 'free' } }),
    );
    let loaded = await persistence.load(account.id);
    expect(loaded.tokens?.accessToken).toBe('second-access');
    expect(loaded.tokens?.refreshToken).toBe(REFRESH);
    expect(loaded.account.metadata).toEqual({ plan: 'free' });
    await persistence.saveTokens(account.id, {
      accessToken: 'third-access',
      refreshToken: null,
      expiresAt: new Date(2_000_000_000_000),
    });
    loaded = await persistence.load(account.id);
    expect(loaded.tokens?.accessToken).toBe('third-access');
    expect(loaded.tokens?.refreshToken).toBe(REFRESH);
    expect(loaded.account.tokenExpiresAt?.getTime()).toBe(2_000_000_000_000);
  });

  it('replaces the refresh token when a rotation brings a new one', async () => {
    const { persistence } = setup();
    const { account } = await persistence.connect(connectInput());
    const saved = await persistence.saveTokens(
      account.id,
      { accessToken: 'a2', refreshToken: 'r2', expiresAt: 1_900_000_000_000 },
      { expectedVersion: 1, scopes: ['x'] },
    );
    expect(saved.account.version).toBe(2);
    expect(saved.account.scopes).toEqual(['x']);
    expect(saved.tokens?.refreshToken).toBe('r2');
    expect((await persistence.load(account.id)).tokens?.refreshToken).toBe('r2');
  });

  it('refuses a stale expectedVersion and changes nothing', async () => {
    const { persistence } = setup();
    const { account } = await persistence.connect(connectInput());
    await persistence.saveTokens(account.id, { accessToken: 'a2' });
    const err = await persistence
      .saveTokens(account.id, { accessToken: 'a3', refreshToken: 'r3' }, { expectedVersion: 1 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(VersionConflictError);
    expect(err.actualVersion).toBe(2);
    const loaded = await persistence.load(account.id);
    expect(loaded.tokens?.accessToken).toBe('a2');
    expect(loaded.tokens?.refreshToken).toBe(REFRESH);
  });

  it('re-reads and retries when a concurrent writer gets in between (no expectedVersion)', async () => {
    const inner = memoryStore();
    let interfere = true;
    const racing: AccountStore = {
      ...bind(inner),
      async putAccount(record, options) {
        if (interfere && options.expectedVersion !== null) {
          interfere = false;
          const current = await inner.getAccount(record.id);
          if (current) {
            const { version: _v, updatedAt: _u, ...rest } = current;
            await inner.putAccount(
              { ...rest, metadata: { touchedBy: 'other process' } },
              { expectedVersion: current.version },
            );
          }
        }
        return inner.putAccount(record, options);
      },
    };
    const { persistence } = setup({ store: racing });
    interfere = false;
    const { account } = await persistence.connect(connectInput());
    interfere = true;
    const saved = await persistence.saveTokens(account.id, { accessToken: 'after-race' });
    expect(saved.account.version).toBe(3);
    expect(saved.account.metadata).toEqual({ touchedBy: 'other process' });
    expect((await persistence.load(account.id)).tokens?.accessToken).toBe('after-race');
  });

  it('clears tokens on disconnect', async () => {
    const { persistence } = setup();
    const { account } = await persistence.connect(connectInput());
    const cleared = await persistence.clearTokens(account.id);
    expect(cleared.status).toBe('revoked');
    expect(cleared.tokenExpiresAt).toBeNull();
    expect((await persistence.load(account.id)).tokens).toBeNull();
    expect(await persistence.isAuthenticated(account.id)).toBe(false);
    // A later reconnect without a refresh token does not resurrect the old one.
    await persistence.connect(connectInput({ tokens: { accessToken: 'fresh' } }));
    expect((await persistence.load(account.id)).tokens?.refreshToken).toBeNull();
  });

  it('tells whether an account is authenticated', async () => {
    let now = 1_800_000_000_000;
    const { persistence } = setup({ now: () => now });
    const withRefresh = await persistence.connect(
      connectInput({ tokens: { accessToken: 'a', refreshToken: 'r', expiresAt: now - 1 } }),
    );
    const noRefresh = await persistence.connect(
      connectInput({ email: 'b@example.com', tokens: { accessToken: 'a', expiresAt: now + 60_000 } }),
    );
    expect(await persistence.isAuthenticated(withRefresh.account.id)).toBe(true);
    expect(await persistence.isAuthenticated(noRefresh.account.id)).toBe(true);
    now += 120_000;
    expect(await persistence.isAuthenticated(noRefresh.account.id)).toBe(false);
    await persistence.recordFailure(
      withRefresh.account.id,
      { code: 'ERR_REAUTHORIZATION_REQUIRED', message: 'invalid_grant' },
      { status: 'reauth_required' },
    );
    expect(await persistence.isAuthenticated(withRefresh.account.id)).toBe(false);
    expect(await persistence.isAuthenticated('missing')).toBe(false);
  });

  it('records failures and resets them on success', async () => {
    const { persistence } = setup();
    const { account } = await persistence.connect(connectInput());
    await persistence.recordFailure(account.id, { code: 'ERR_TOKEN_REFRESH_FAILED', message: 'HTTP 503' });
    const failed = await persistence.recordFailure(account.id, {
      code: 'ERR_TOKEN_REFRESH_FAILED',
      message: 'x'.repeat(2000),
    });
    expect(failed.consecutiveFailures).toBe(2);
    expect(failed.status).toBe('active');
    expect(failed.lastError?.code).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(failed.lastError?.message).toHaveLength(500);
    expect(failed.lastError?.at).toBeInstanceOf(Date);
    const ok = await persistence.saveTokens(account.id, { accessToken: 'new' });
    expect(ok.account).toMatchObject({ consecutiveFailures: 0, lastError: null, status: 'active' });
    expect(ok.account.lastRefreshedAt).toBeInstanceOf(Date);
  });

  it('refuses a record copied onto another account (AAD binds the blob to its id)', async () => {
    const { persistence, store } = setup();
    const a = await persistence.connect(connectInput());
    const b = await persistence.connect(
      connectInput({ email: 'mallory@example.com', tokens: { accessToken: 'mallory' } }),
    );
    const rawA = await store.getAccount(a.account.id);
    const rawB = await store.getAccount(b.account.id);
    if (!rawA || !rawB) throw new Error('setup');
    const { version, updatedAt: _u, ...restB } = rawB;
    await store.putAccount({ ...restB, secret: rawA.secret }, { expectedVersion: version });
    const err = await persistence.load(b.account.id).catch((e) => e);
    expect(err).toBeInstanceOf(CryptoError);
    expect(err.reason).toBe('decrypt_failed');
    expect(err.accountId).toBe(b.account.id);
  });

  it('reports a wrong or missing key as a CryptoError, never garbage', async () => {
    const { persistence, store } = setup();
    const { account } = await persistence.connect(connectInput());
    const otherKeys = [
      // Another key under the same id, k1.
      {
        cipher: aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' }),
        error: { reason: 'decrypt_failed' },
      },
      // No key k1 at all.
      {
        cipher: aesGcmCipher({ keys: { k9: randomBytes(32) }, current: 'k9' }),
        error: { reason: 'unknown_key', keyId: 'k1' },
      },
    ];
    for (const { cipher, error } of otherKeys) {
      const other = new TokenPersistence({ store, cipher });
      await expect(other.load(account.id)).rejects.toMatchObject({ code: 'ERR_CRYPTO', ...error });
      // Reading the account without its tokens still works.
      expect((await other.getAccount(account.id)).email).toBe('ada@example.com');
    }
  });

  it('re-encrypts with the current key during a rotation', async () => {
    const oldKey = randomBytes(32);
    const { persistence, store } = setup({ key: oldKey });
    const { account } = await persistence.connect(connectInput());
    const rotated = new TokenPersistence({
      store,
      cipher: aesGcmCipher({ keys: { k1: oldKey, k2: randomBytes(32) }, current: 'k2' }),
    });
    expect((await rotated.load(account.id)).tokens?.accessToken).toBe(ACCESS);
    expect(await rotated.reencrypt(account.id)).toBe(true);
    expect(await rotated.reencrypt(account.id)).toBe(false);
    expect((await store.getAccount(account.id))?.secret).toMatch(/^om1\.k2\./);
    expect((await rotated.load(account.id)).tokens?.refreshToken).toBe(REFRESH);
    await expect(persistence.load(account.id)).rejects.toMatchObject({ reason: 'unknown_key' });
    // A cleared account has nothing to re-encrypt.
    await rotated.clearTokens(account.id);
    expect(await rotated.reencrypt(account.id)).toBe(false);
  });

  it('turns store failures into StorageError, never into "not found"', async () => {
    const boom = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const failing: AccountStore = {
      ...bind(memoryStore()),
      getAccount: async () => {
        throw boom;
      },
      findAccountByIdentity: async () => {
        throw boom;
      },
      deleteAccount: async () => {
        throw boom;
      },
    };
    const { persistence } = setup({ store: failing });
    for (const call of [
      () => persistence.load('a'),
      () => persistence.getAccount('a'),
      () => persistence.isAuthenticated('a'),
      () => persistence.saveTokens('a', { accessToken: 'x' }),
      () => persistence.deleteAccount('a'),
      () => persistence.connect(connectInput()),
    ]) {
      const err = await call().catch((e) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect(err.cause).toBe(boom);
      expect(err.retryable).toBe(true);
    }
  });

  it('reports a missing account as AccountNotFoundError', async () => {
    const { persistence } = setup();
    for (const call of [
      () => persistence.load('nope'),
      () => persistence.getAccount('nope'),
      () => persistence.saveTokens('nope', { accessToken: 'x' }),
      () => persistence.clearTokens('nope'),
      () => persistence.recordFailure('nope', { code: 'X', message: 'y' }),
      () => persistence.reencrypt('nope'),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(AccountNotFoundError);
    }
    expect(await persistence.deleteAccount('nope')).toBe(false);
  });

  it('rejects bad input with InvalidArgumentError and changes nothing stored', async () => {
    const { persistence, store } = setup();
    const bad = [
      () => persistence.connect(null as never),
      () => persistence.connect(connectInput({ tokens: { accessToken: '' } })),
      () => persistence.connect(connectInput({ tokens: { accessToken: 'a', expiresAt: Number.NaN } })),
      () => persistence.connect(connectInput({ tokens: { accessToken: 'a', refreshToken: 42 } })),
      () => persistence.connect(connectInput({ email: '' })),
      () => persistence.connect(connectInput({ scopes: 'openid' })),
      () => persistence.connect(connectInput({ metadata: { big: 1n } })),
    ];
    for (const call of bad) await expect(call()).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await store.listAccounts()).records).toHaveLength(0);

    const { account } = await persistence.connect(connectInput());
    const before = await store.getAccount(account.id);
    const badUpdates = [
      () => persistence.saveTokens(account.id, { accessToken: 'a', expiresAt: new Date('invalid') }),
      () => persistence.saveTokens(account.id, { accessToken: 'a' }, { expectedVersion: 0 }),
      () => persistence.saveTokens(account.id, { accessToken: 'a', tokenType: '' }),
      () => persistence.saveTokens(account.id, { accessToken: 'a', idToken: 5 as never }),
      () => persistence.saveTokens(account.id, { accessToken: 'a' }, { scopes: [''] }),
      () => persistence.clearTokens(account.id, { status: 'bogus' as never }),
      () => persistence.recordFailure(account.id, { code: 1 } as never),
      () => persistence.recordFailure(account.id, { code: 'x', message: 'y' }, { status: 'nope' as never }),
      () => persistence.load(''),
      () => persistence.deleteAccount(undefined as never),
    ];
    for (const call of badUpdates) await expect(call()).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await store.getAccount(account.id)).toEqual(before);
  });

  it('wraps a custom cipher failure and an unreadable blob as CryptoError', async () => {
    const store = memoryStore();
    let mode: 'ok' | 'throw' | 'garbage' = 'ok';
    const persistence = new TokenPersistence({
      store,
      cipher: {
        encrypt: async (plaintext) => {
          if (mode === 'throw') throw new Error('KMS unavailable');
          return Buffer.from(plaintext).toString('base64');
        },
        decrypt: async (ciphertext) => {
          if (mode === 'throw') throw new Error('KMS unavailable');
          return mode === 'garbage' ? `not json ${ACCESS}` : Buffer.from(ciphertext, 'base64').toString();
        },
      },
    });
    const { account } = await persistence.connect(connectInput());
    mode = 'garbage';
    const garbage = await persistence.load(account.id).catch((e) => e);
    expect(garbage).toMatchObject({ code: 'ERR_CRYPTO', reason: 'malformed' });
    expect(garbage.cause).toBeUndefined();
    mode = 'throw';
    await expect(persistence.load(account.id)).rejects.toMatchObject({
      code: 'ERR_CRYPTO',
      reason: 'decrypt_failed',
    });
    await expect(
      persistence.saveTokens(account.id, { accessToken: 'x', refreshToken: 'y' }),
    ).rejects.toMatchObject({ code: 'ERR_CRYPTO' });
    // A custom cipher has no needsReencryption: nothing to rotate.
    mode = 'ok';
    expect(await persistence.reencrypt(account.id)).toBe(false);
  });

  it('validates its options', () => {
    const cipher = aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' });
    expect(() => new TokenPersistence(undefined as never)).toThrow(ConfigurationError);
    expect(() => new TokenPersistence({ store: {} as never, cipher })).toThrow(
      'TokenPersistence: `store` must implement AccountStore',
    );
    expect(() => new TokenPersistence({ store: memoryStore(), cipher: {} as never })).toThrow(
      'TokenPersistence: `cipher` must implement Cipher (encrypt and decrypt)',
    );
  });
});

function bind(store: AccountStore): AccountStore {
  return {
    getAccount: store.getAccount.bind(store),
    findAccountByIdentity: store.findAccountByIdentity.bind(store),
    putAccount: store.putAccount.bind(store),
    deleteAccount: store.deleteAccount.bind(store),
    listAccounts: store.listAccounts.bind(store),
    acquireLease: store.acquireLease.bind(store),
    releaseLease: store.releaseLease.bind(store),
  };
}
