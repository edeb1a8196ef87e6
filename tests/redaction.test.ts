/**
 * Invariant 1: no token, refresh token, id_token or key in JSON.stringify, util.inspect, String() or
 * util.format output of anything the library returns or throws.
 */
import { randomBytes } from 'node:crypto';
import { format, inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  aesGcmCipher,
  fernetCipher,
  memoryStore,
  StorageError,
  TokenExchangeError,
  TokenPersistence,
  TokenSet,
} from '../src/index.js';
import { ACCESS, connectInput, ID_TOKEN, REFRESH } from './tokens/helpers.js';

function renderings(value: unknown): string[] {
  return [
    JSON.stringify(value) ?? '',
    inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true, getters: true }),
    inspect(value, { depth: Number.POSITIVE_INFINITY }),
    format('%s %o %O %j', value, value, value, value),
    String(value),
  ];
}

function expectNoSecret(value: unknown, secrets: readonly string[]): void {
  for (const text of renderings(value)) {
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
}

describe('redaction', () => {
  it('shows no secret in any object returned by TokenPersistence', async () => {
    const key = randomBytes(32);
    const cipher = aesGcmCipher({ keys: { k1: key }, current: 'k1' });
    const store = memoryStore();
    const persistence = new TokenPersistence({ store, cipher });
    const secrets = [
      ACCESS,
      REFRESH,
      ID_TOKEN,
      key.toString('base64'),
      key.toString('hex'),
      key.toString('base64url'),
    ];

    const returned: unknown[] = [cipher, store, persistence];
    const connected = await persistence.connect(connectInput());
    returned.push(connected, connected.account, connected.tokens);
    const loaded = await persistence.load(connected.account.id);
    returned.push(loaded, loaded.tokens, loaded.account);
    returned.push(
      await persistence.saveTokens(connected.account.id, { accessToken: ACCESS, refreshToken: REFRESH }),
    );
    returned.push(await persistence.getAccount(connected.account.id));
    returned.push(
      await persistence.recordFailure(connected.account.id, { code: 'ERR_X', message: 'failed' }),
    );
    returned.push(await store.listAccounts());
    returned.push(await persistence.load(connected.account.id).then((x) => ({ nested: { deep: [x] } })));

    for (const value of returned) expectNoSecret(value, secrets);
    // The values are still there for whoever asks.
    expect(loaded.tokens?.accessToken).toBe(ACCESS);
    expect(Object.keys(loaded.tokens as object)).not.toContain('accessToken');
    expect({ ...(loaded.tokens as object) }).not.toHaveProperty('refreshToken');
  });

  it('shows which tokens exist without their values', () => {
    const tokens = new TokenSet({ accessToken: ACCESS, refreshToken: REFRESH, expiresAt: 0 });
    expect(JSON.parse(JSON.stringify(tokens))).toEqual({
      accessToken: '[redacted]',
      refreshToken: '[redacted]',
      idToken: null,
      expiresAt: '1970-01-01T00:00:00.000Z',
      tokenType: 'Bearer',
    });
    expect(inspect(tokens)).toContain("refreshToken: '[redacted]'");
  });

  it('shows no secret from the cause of an error, however deep', () => {
    const body = { error: 'invalid_grant', access_token: ACCESS, refresh_token: REFRESH };
    const driverError = Object.assign(new Error('token endpoint said no'), {
      code: 'OAUTH_RESPONSE_BODY_ERROR',
      status: 400,
      cause: body,
      body,
    });
    const err = new TokenExchangeError('The token endpoint refused the code', {
      cause: driverError,
      status: 400,
      oauthError: 'invalid_grant',
    });
    const outer = new StorageError('wrapped', { cause: err });
    for (const value of [err, outer, { error: err }, [outer]]) expectNoSecret(value, [ACCESS, REFRESH]);
    // The summary keeps what helps debugging.
    const json = JSON.parse(JSON.stringify(err));
    expect(json).toMatchObject({
      code: 'ERR_TOKEN_EXCHANGE_FAILED',
      status: 400,
      oauthError: 'invalid_grant',
    });
    expect(json.causes[0]).toEqual({
      name: 'Error',
      message: 'token endpoint said no',
      code: 'OAUTH_RESPONSE_BODY_ERROR',
      status: 400,
    });
    expect(inspect(outer)).toContain('ERR_TOKEN_EXCHANGE_FAILED');
    // The original cause is still reachable on purpose.
    expect(err.cause).toBe(driverError);
  });

  it('shows no key material for Fernet ciphers', () => {
    const key = randomBytes(32);
    expectNoSecret(fernetCipher({ keys: key }), [
      key.toString('base64url'),
      key.toString('base64'),
      key.toString('hex'),
    ]);
  });
});
