/**
 * One `MailboxAuth` per server process, configured from the environment.
 *
 * Server only: route handlers and server components import this module, never a `'use client'` file (it
 * holds the OAuth client secrets and the token key). In your app, `npm i server-only` and put
 * `import 'server-only';` on the first line to turn a stray client import into a build error.
 *
 * | Variable | |
 * |---|---|
 * | `GOOGLE_CLIENT_ID`, `GOOGLE_CLIENT_SECRET` | Registers Google when both are set |
 * | `MS_CLIENT_ID`, `MS_CLIENT_SECRET`, `MS_TENANT` | Registers Microsoft when both are set (`MS_TENANT` defaults to `common`) |
 * | `APP_ORIGIN` | This app's public origin, the base of the redirect URIs (default `http://localhost:3000` outside production) |
 * | `TOKEN_KEY`, `TOKEN_KEY_ID` | 32-byte AES key (base64, base64url or hex) and its id (default `k1`); random per process if unset, memory store only |
 * | `DATABASE_URL` | PostgreSQL: accounts and pending authorizations survive restarts and are shared between instances |
 * | `DATABASE_SCHEMA` | The PostgreSQL schema of the tables (default `public`) |
 * | `WATCH_MAILBOXES` | `0`: no watch orchestrator in this process (serverless, or a separate worker watches); default on |
 * | `LOCAL_OIDC_ISSUER`, `LOCAL_SMTP_PORT`, `LOCAL_IMAP_PORT` | Development: the local provider of `dev-provider.ts` (see lib/local-provider.ts) |
 */
import { randomBytes } from 'node:crypto';
import {
  aesGcmCipher,
  type Cipher,
  createMailboxAuth,
  google,
  isMailboxAuthError,
  type MailboxAuth,
  type MailboxAuthOptions,
  memoryStore,
  microsoft,
  type OAuthProvider,
} from 'oauth-mailbox';
import { postgresStore } from 'oauth-mailbox/postgres';
import pg from 'pg';
import { type Inboxes, watchInboxes } from './inbox';
import { localProvider, mailboxOptions, watchable } from './local-provider';

/** The configured library, or why it could not be configured (shown on the page, no secret in it). */
export type MailboxSetup =
  | {
      readonly ok: true;
      readonly auth: MailboxAuth;
      /** `APP_ORIGIN`: the origin of the redirect URIs and of the browser redirects. */
      readonly origin: string;
      /** Where accounts are stored, for the page footer. */
      readonly storage: 'postgres' | 'memory';
      /** The mailbox watchers and what they received; `undefined` with `WATCH_MAILBOXES=0`. */
      readonly inboxes: Inboxes | undefined;
    }
  | { readonly ok: false; readonly problems: readonly string[] };

/** The callback route of a provider; register exactly this URL in the provider's console. */
export const redirectUri = (origin: string, provider: string): string =>
  `${origin}/api/oauth/${provider}/callback`;

const production = process.env.NODE_ENV === 'production';

/** Both halves of a client credential, or neither. */
function credentials(
  idVar: string,
  secretVar: string,
  problems: string[],
): { clientId: string; clientSecret: string } | undefined {
  const clientId = process.env[idVar];
  const clientSecret = process.env[secretVar];
  if (!clientId && !clientSecret) return undefined;
  if (!clientId || !clientSecret) {
    problems.push(`${clientId ? secretVar : idVar} is missing (${clientId ? idVar : secretVar} is set).`);
    return undefined;
  }
  return { clientId, clientSecret };
}

function appOrigin(problems: string[]): string {
  const value = process.env.APP_ORIGIN ?? (production ? undefined : 'http://localhost:3000');
  if (value === undefined) {
    problems.push('APP_ORIGIN is not set: the public origin of this app, such as https://app.example.com.');
    return '';
  }
  try {
    return new URL(value).origin;
  } catch {
    problems.push(`APP_ORIGIN is not a URL: ${value.slice(0, 100)}`);
    return '';
  }
}

function tokenCipher(persistent: boolean, problems: string[]): Cipher | undefined {
  const keyId = process.env.TOKEN_KEY_ID ?? 'k1';
  const key = process.env.TOKEN_KEY;
  if (!key && persistent) {
    problems.push(
      'TOKEN_KEY is not set: with DATABASE_URL the tokens outlive this process, so they need a stable key ' +
        "(node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64'))\").",
    );
    return undefined;
  }
  if (!key)
    console.warn('[oauth-mailbox example] TOKEN_KEY is not set: a random key is used for this process.');
  try {
    return aesGcmCipher({ keys: { [keyId]: key || randomBytes(32) }, current: keyId });
  } catch (error) {
    problems.push(`TOKEN_KEY: ${isMailboxAuthError(error) ? error.message : 'not a valid key'}`);
    return undefined;
  }
}

async function setUp(): Promise<MailboxSetup> {
  const problems: string[] = [];
  const origin = appOrigin(problems);

  const providers: OAuthProvider[] = [];
  const googleCredentials = credentials('GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET', problems);
  if (googleCredentials && origin) {
    providers.push(google({ ...googleCredentials, redirectUri: redirectUri(origin, 'google') }));
  }
  const msCredentials = credentials('MS_CLIENT_ID', 'MS_CLIENT_SECRET', problems);
  if (msCredentials && origin) {
    providers.push(
      microsoft({
        ...msCredentials,
        redirectUri: redirectUri(origin, 'microsoft'),
        tenant: process.env.MS_TENANT ?? 'common',
      }),
    );
  }
  const local = origin ? localProvider(redirectUri(origin, 'local'), problems) : undefined;
  if (local) providers.push(local);
  if (providers.length === 0 && problems.length === 0) {
    problems.push(
      'No provider is configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, and/or MS_CLIENT_ID and ' +
        'MS_CLIENT_SECRET (or, to try it locally, run dev-provider.ts and set LOCAL_OIDC_ISSUER).',
    );
  }

  const databaseUrl = process.env.DATABASE_URL;
  const cipher = tokenCipher(Boolean(databaseUrl), problems);
  if (problems.length > 0 || cipher === undefined) return { ok: false, problems };

  let pool: pg.Pool | undefined;
  let auth: MailboxAuth | undefined;
  try {
    let store: MailboxAuthOptions['store'];
    if (databaseUrl) {
      pool = new pg.Pool({ connectionString: databaseUrl, max: 5 });
      const postgres = postgresStore({ client: pool, schema: process.env.DATABASE_SCHEMA || 'public' });
      await postgres.migrate(); // idempotent; or apply postgresMigrations() with your migration tool
      store = postgres;
    } else {
      console.warn(
        '[oauth-mailbox example] DATABASE_URL is not set: accounts live in memory and vanish on restart ' +
          '(one process only).',
      );
      store = memoryStore();
    }
    // allowedOrigins: every redirect URI is checked now (https outside localhost, no localhost in production).
    auth = createMailboxAuth({ providers, store, cipher, allowedOrigins: [origin] });
    auth.on('reauthorizationRequired', ({ accountId }) => {
      // Your app: email the owner, or flag the account in your UI. The accounts page shows the status.
      console.warn(`[oauth-mailbox example] account ${accountId} must be reconnected`);
    });
    // Every connected mailbox watched, from the `connected` / `disconnected` events (lib/inbox.ts). Created
    // here, so once per process like the `MailboxAuth`: the events are hooked once.
    const inboxes =
      process.env.WATCH_MAILBOXES === '0'
        ? undefined
        : await watchInboxes(auth, {
            log: (line) => console.log(`[oauth-mailbox example] ${line}`),
            clientOptions: mailboxOptions,
            watchable,
          });
    return { ok: true, auth, origin, storage: databaseUrl ? 'postgres' : 'memory', inboxes };
  } catch (error) {
    await auth?.close().catch(() => {});
    await pool?.end().catch(() => {});
    // A configuration mistake (a redirect URI the library refuses) is shown on the page; anything else
    // (the database is down) is thrown, and the next request tries again.
    if (isMailboxAuthError(error, 'ERR_CONFIGURATION')) return { ok: false, problems: [error.message] };
    throw error;
  }
}

// globalThis, not a module variable: `next dev` re-evaluates modules on every edit, and each route may be
// bundled separately; one process must still have one instance (one pool, one refresher and its locks).
const processWide = globalThis as typeof globalThis & { __oauthMailboxExample?: Promise<MailboxSetup> };

/** The process-wide `MailboxAuth` (created on first use), or the configuration problems. */
export function getMailboxSetup(): Promise<MailboxSetup> {
  processWide.__oauthMailboxExample ??= setUp().catch((error: unknown) => {
    processWide.__oauthMailboxExample = undefined;
    throw error;
  });
  return processWide.__oauthMailboxExample;
}
