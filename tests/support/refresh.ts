import { randomBytes } from 'node:crypto';
import type { setupServer } from 'msw/node';
import {
  type AccountStore,
  type Logger,
  memoryStore,
  microsoft,
  ProviderRegistry,
  TokenPersistence,
  TokenRefresher,
  type TokenRefresherOptions,
} from '../../src/index.js';
import { fakeMicrosoft } from '../../src/testing/index.js';
import { defined, memoryAuth, testCipher } from './auth.js';
import { CLIENT, MS_REDIRECT } from './flow.js';

/** A logger that keeps every line, to check that no secret reaches it. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (level: string) => (fields: Record<string, unknown>, message: string) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
  };
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** A fake Microsoft (rotating refresh tokens), a store, and a connected account whose token is expired. */
export async function expiredAccount(
  server: ReturnType<typeof setupServer>,
  options: {
    store?: AccountStore;
    rotate?: boolean;
    accounts?: number;
    timeoutMs?: number;
    accessTokenTtlS?: number;
  } = {},
) {
  const fake = fakeMicrosoft({
    ...CLIENT,
    rotateRefreshTokens: options.rotate ?? true,
    ...defined({ accessTokenTtlS: options.accessTokenTtlS }),
  });
  server.use(...fake.handlers());
  const store = options.store ?? memoryStore();
  const key = randomBytes(32);
  const cipher = testCipher(key);
  const persistence = new TokenPersistence({ store, cipher });
  const registry = new ProviderRegistry([
    // A generous provider timeout: under CPU load (a second test run beside this one) a short one fails
    // requests that are merely slow. The timeout test sets its own.
    microsoft({ ...CLIENT, redirectUri: MS_REDIRECT, timeoutMs: options.timeoutMs ?? 30_000 }),
  ]);
  const provider = registry.get('microsoft');
  const ids: string[] = [];
  for (let i = 0; i < (options.accounts ?? 1); i++) {
    // Obtain a real refresh token from the fake through a code exchange.
    const url = await provider.authorizationUrl({
      state: 's',
      codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      nonce: 'n',
    });
    const callback = fake.approve(url, { email: `user${i}@contoso.com` });
    const result = await provider.exchangeCode(callback, {
      state: 's',
      codeVerifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
      nonce: 'n',
    });
    const { account } = await persistence.connect({
      provider: 'microsoft',
      owner: 'owner-1',
      email: `user${i}@contoso.com`,
      tokens: {
        accessToken: result.tokens.accessToken,
        refreshToken: result.tokens.refreshToken,
        expiresAt: Date.now() - 1000, // expired
      },
    });
    ids.push(account.id);
  }
  fake.stats.tokenRequests = 0;
  fake.stats.refreshes = 0;
  const refresher = (extra: Partial<TokenRefresherOptions> = {}) =>
    new TokenRefresher({
      persistence,
      registry,
      retry: { retries: 3, minDelayMs: 1, maxDelayMs: 5, maxRetryTimeMs: 5000 },
      ...extra,
    });
  return { fake, store, persistence, registry, cipher, key, id: ids[0] as string, ids, refresher };
}

/** {@link expiredAccount} behind a `createMailboxAuth` over the same registry, store and cipher; `account` is its record. */
export async function expiredAccountAuth(server: ReturnType<typeof setupServer>) {
  const fleet = await expiredAccount(server);
  const { auth } = memoryAuth({
    providers: fleet.registry,
    store: fleet.store as never,
    cipher: fleet.cipher,
  });
  return { ...fleet, auth, account: await auth.getAccount(fleet.id) };
}

/** Store a new access token for the account that is valid for `days` more days. */
export function saveValidFor(persistence: TokenPersistence, id: string, accessToken: string, days: number) {
  return persistence.saveTokens(id, { accessToken, expiresAt: Date.now() + days * 86_400_000 });
}
