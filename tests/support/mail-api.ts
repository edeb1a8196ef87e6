/**
 * Set-ups for the Gmail API and Microsoft Graph transports: a fake OAuth provider, the emulated API linked to
 * it (only tokens it issued are accepted), and an account connected through the real authorization flow.
 */
import { randomBytes } from 'node:crypto';
import type { setupServer } from 'msw/node';
import {
  type AccountStore,
  aesGcmCipher,
  type Cipher,
  createMailboxAuth,
  google,
  MICROSOFT_GRAPH_SCOPES,
  memoryStore,
  microsoft,
  type StateStore,
} from '../../src/index.js';
import { fakeGmailApi, fakeGoogle, fakeGraph, fakeMicrosoft } from '../../src/testing/index.js';
import { CLIENT, GOOGLE_REDIRECT, MS_REDIRECT } from './flow.js';

export const ADA = 'ada@example.com';
export const GRACE = 'grace@contoso.com';

/** A few milliseconds of backoff so retry tests stay fast; Retry-After still rules when the API sends it. */
export const FAST_API = { minRetryDelayMs: 5, pollIntervalMs: 50 } as const;

export async function gmailSetup(
  server: ReturnType<typeof setupServer>,
  options: { mailTransport?: 'imap' | 'gmail-api'; accessTokenTtlS?: number } = {},
) {
  const googleFake = fakeGoogle({
    ...CLIENT,
    ...(options.accessTokenTtlS === undefined ? {} : { accessTokenTtlS: options.accessTokenTtlS }),
  });
  const gmail = fakeGmailApi({ tokens: googleFake, email: ADA });
  server.use(...googleFake.handlers(), ...gmail.handlers());
  const store = memoryStore();
  const cipher = aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' });
  const auth = createMailboxAuth({
    providers: [
      google({
        ...CLIENT,
        redirectUri: GOOGLE_REDIRECT,
        mailTransport: options.mailTransport ?? 'gmail-api',
      }),
    ],
    store,
    cipher,
    refresh: { retry: { retries: 0 } },
  });
  const { url } = await auth.startAuthorization('google', { owner: 'u1' });
  const { account } = await auth.completeAuthorization('google', googleFake.approve(url, { email: ADA }), {
    owner: 'u1',
  });
  return { auth, store, cipher, google: googleFake, gmail, accountId: account.id };
}

export async function graphSetup(
  server: ReturnType<typeof setupServer>,
  options: {
    mailTransport?: 'imap' | 'graph';
    /** Consent to Graph too when the preset is IMAP (the account then has both tokens). @default true */
    graphConsent?: boolean;
    store?: AccountStore & StateStore;
    cipher?: Cipher;
    /** Lifetime of the access tokens the fake issues. @default 3599 */
    accessTokenTtlS?: number;
    /** The refresher's `minValidityMs`. @default 300000 */
    minValidityMs?: number;
  } = {},
) {
  const microsoftFake = fakeMicrosoft({
    ...CLIENT,
    rotateRefreshTokens: true,
    ...(options.accessTokenTtlS === undefined ? {} : { accessTokenTtlS: options.accessTokenTtlS }),
  });
  const graph = fakeGraph({ tokens: microsoftFake, email: GRACE });
  server.use(...microsoftFake.handlers(), ...graph.handlers());
  const store = options.store ?? memoryStore();
  const cipher = options.cipher ?? aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' });
  const make = () =>
    createMailboxAuth({
      providers: [
        microsoft({
          ...CLIENT,
          redirectUri: MS_REDIRECT,
          mailTransport: options.mailTransport ?? 'imap',
          ...(options.graphConsent === false || options.mailTransport === 'graph'
            ? {}
            : { extraScopes: [...MICROSOFT_GRAPH_SCOPES] }),
        }),
      ],
      store,
      cipher,
      refresh: {
        retry: { retries: 0 },
        ...(options.minValidityMs === undefined ? {} : { minValidityMs: options.minValidityMs }),
      },
    });
  const auth = make();
  const { url } = await auth.startAuthorization('microsoft', { owner: 'u1' });
  const { account } = await auth.completeAuthorization(
    'microsoft',
    microsoftFake.approve(url, { email: GRACE }),
    { owner: 'u1' },
  );
  microsoftFake.stats.refreshes = 0;
  microsoftFake.stats.tokenRequests = 0;
  return { auth, make, store, cipher, microsoft: microsoftFake, graph, accountId: account.id };
}

export function waitFor<T>(check: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const value = check();
      if (value !== undefined) return resolve(value);
      if (Date.now() > deadline) return reject(new Error('timed out waiting'));
      setTimeout(tick, 10);
    };
    tick();
  });
}
