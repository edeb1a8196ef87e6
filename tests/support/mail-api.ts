/**
 * Set-ups for the Gmail API and Microsoft Graph transports: a fake OAuth provider, the emulated API linked to
 * it (only tokens it issued are accepted), and an account connected through the real authorization flow.
 */
import type { setupServer } from 'msw/node';
import { expect } from 'vitest';
import {
  type AccountStore,
  type Cipher,
  google,
  type MailApiOptions,
  type MailboxClient,
  MICROSOFT_GRAPH_SCOPES,
  memoryStore,
  microsoft,
  type StateStore,
  type TelemetryOptions,
} from '../../src/index.js';
import { fakeGmailApi, fakeGoogle, fakeGraph, fakeMicrosoft } from '../../src/testing/index.js';
import { waitFor } from './async.js';
import { defined, memoryAuth, testCipher } from './auth.js';
import { CLIENT, GOOGLE_REDIRECT, MS_REDIRECT } from './flow.js';

export const ADA = 'ada@example.com';
export const GRACE = 'grace@contoso.com';

/** A few milliseconds of backoff so retry tests stay fast; Retry-After still rules when the API sends it. */
export const FAST_API = { minRetryDelayMs: 5, pollIntervalMs: 50 } as const;

/** API options ({@link FAST_API} and `extra`) whose fetch records each request's URL and bearer token. */
export function recordingApi(extra: MailApiOptions = {}) {
  const urls: URL[] = [];
  const bearers: string[] = [];
  const api: MailApiOptions = {
    ...FAST_API,
    ...extra,
    fetch: (input, init) => {
      urls.push(new URL(String(input)));
      bearers.push(new Headers(init?.headers).get('authorization')?.replace(/^Bearer /, '') ?? '');
      return fetch(input, init);
    },
  };
  return { api, urls, bearers };
}

/**
 * Watch poll rounds begun so far, read from the URLs {@link recordingApi} recorded: each round's first request,
 * a Gmail `history.list` without a `pageToken` or a Graph delta request without a `$skiptoken` (the pages
 * after it carry those).
 */
export function pollRounds(urls: readonly URL[]): number {
  return urls.filter(
    (u) =>
      (u.pathname.endsWith('/history') && !u.searchParams.has('pageToken')) ||
      (u.pathname.endsWith('/messages/delta') && !u.searchParams.has('$skiptoken')),
  ).length;
}

/**
 * Resolves once `rounds` more poll rounds (default 2) have begun than now. A watch polls one round at a time:
 * the first round begun after this call sees what the mailbox holds now, and the next one begins only once
 * that round was handled (its messages delivered). So "nothing more is delivered" is checked after the watch
 * went over the mailbox again, not after a delay.
 */
export async function waitForPollRounds(urls: readonly URL[], rounds = 2): Promise<void> {
  const target = pollRounds(urls) + rounds;
  await waitFor(() => (pollRounds(urls) >= target ? true : undefined), 10_000, {
    message: () =>
      `timed out waiting for ${rounds} more poll rounds (${pollRounds(urls)} of ${target} begun)`,
  });
}

export async function gmailSetup(
  server: ReturnType<typeof setupServer>,
  options: {
    mailTransport?: 'imap' | 'gmail-api';
    accessTokenTtlS?: number;
    telemetry?: TelemetryOptions;
  } = {},
) {
  const googleFake = fakeGoogle({ ...CLIENT, ...defined({ accessTokenTtlS: options.accessTokenTtlS }) });
  const gmail = fakeGmailApi({ tokens: googleFake, email: ADA });
  server.use(...googleFake.handlers(), ...gmail.handlers());
  const { auth, store, cipher } = memoryAuth({
    providers: [
      google({
        ...CLIENT,
        redirectUri: GOOGLE_REDIRECT,
        mailTransport: options.mailTransport ?? 'gmail-api',
      }),
    ],
    refresh: { retry: { retries: 0 } },
    ...defined({ telemetry: options.telemetry }),
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
    ...defined({ accessTokenTtlS: options.accessTokenTtlS }),
  });
  const graph = fakeGraph({ tokens: microsoftFake, email: GRACE });
  server.use(...microsoftFake.handlers(), ...graph.handlers());
  const store = options.store ?? memoryStore();
  const cipher = options.cipher ?? testCipher();
  const make = (extra: { readonly mailboxActivityFlushMs?: number } = {}) =>
    memoryAuth({
      ...extra,
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
      refresh: { retry: { retries: 0 }, ...defined({ minValidityMs: options.minValidityMs }) },
    }).auth;
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

/** markAsRead of a message the mailbox does not hold: a 404 `MailRequestError` carrying the API's own code. */
export async function expectMissingMessage(
  mailbox: MailboxClient,
  id: string,
  expected: { apiCode: string; protocol: 'gmail-api' | 'graph' },
): Promise<void> {
  await expect(mailbox.markAsRead(id)).rejects.toMatchObject({
    code: 'ERR_MAIL_REQUEST_REJECTED',
    status: 404,
    ...expected,
  });
}
