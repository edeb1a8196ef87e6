/**
 * examples/nextjs, end to end over HTTP: `next start` on the example's production build, then the routes a
 * browser hits. No network: Google's endpoints are static metadata and its callbacks here fail before any
 * token request; the whole flow (consent, token exchange, accounts page, SMTP, revocation) runs against the
 * repository's local OpenID Provider, the one `examples/nextjs/dev-provider.ts` starts for development, with
 * Dovecot as the mailbox's IMAP server when it is installed (required in CI): the watch orchestrator fed by
 * the `connected` / `disconnected` events, and the initial sync after a connect, seen through `/api/inbox`.
 *
 * Needs the build: `npm run example:nextjs:build`. Without it the suite skips with a visible reason; CI builds
 * first and sets NEXTJS_EXAMPLE_REQUIRED=1, so there a missing build fails instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeDevLogin } from '../../examples/dev/dev-login.js';
import { type LocalProvider, startLocalProvider } from '../../examples/dev/local-provider.js';
import { type SmtpSink, startSmtpSink } from '../../examples/dev/smtp-sink.js';
import { waitFor } from '../support/async.js';
import { type Dovecot, dovecotAvailable, startDovecot } from '../support/dovecot-server.js';
import { requireService } from '../support/services.js';

const APP_DIR = fileURLToPath(new URL('../../examples/nextjs', import.meta.url));
const NEXT_BIN = createRequire(import.meta.url).resolve('next/dist/bin/next');
const ORIGIN = 'https://app.example.test'; // not loopback: `next start` is production, where localhost is refused

function buildAvailable(): boolean {
  if (existsSync(join(APP_DIR, '.next', 'BUILD_ID'))) return true;
  const reason = 'no production build in examples/nextjs/.next (run npm run example:nextjs:build)';
  if (process.env.NEXTJS_EXAMPLE_REQUIRED === '1') throw new Error(`Next.js example test: ${reason}`);
  console.warn(`[skip] Next.js example tests: ${reason}`);
  return false;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface RunningApp {
  readonly base: string;
  readonly output: () => string;
  stop(): Promise<void>;
}

/** `next start` with exactly these variables for the example (nothing inherited from this shell's config). */
async function startApp(env: Record<string, string>): Promise<RunningApp> {
  const port = await freePort();
  const inherited = { ...process.env };
  for (const name of Object.keys(inherited)) {
    if (
      /^(GOOGLE_|MS_|TOKEN_KEY|APP_ORIGIN|DATABASE_|DEMO_SESSION|LOCAL_|WATCH_MAILBOXES$|NODE_ENV$)/.test(
        name,
      )
    )
      delete inherited[name];
  }
  const child: ChildProcess = spawn(
    process.execPath,
    [NEXT_BIN, 'start', APP_DIR, '--port', String(port), '--hostname', '127.0.0.1'],
    { env: { ...inherited, NEXT_TELEMETRY_DISABLED: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  // Ready when it answers; a bound for a slow machine, checked as soon as the port is open.
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`next start exited (${child.exitCode}):\n${output}`);
        return fetch(`${base}/favicon.ico`, { signal: AbortSignal.timeout(2_000) }).then(
          () => true,
          () => undefined,
        );
      },
      30_000,
      { message: () => `next start did not answer within 30 s:\n${output}` },
    );
  } catch (error) {
    if (child.exitCode === null) child.kill('SIGKILL');
    throw error;
  }
  return {
    base,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

const request = (app: RunningApp, path: string, init: RequestInit = {}) =>
  fetch(`${app.base}${path}`, { redirect: 'manual', ...init, signal: AbortSignal.timeout(15_000) });

/** `GET /api/inbox`: what the example's watch orchestrator and initial syncs received (examples/nextjs/lib/inbox.ts). */
interface InboxJson {
  readonly watched: readonly {
    readonly accountId: string;
    readonly state: string;
    readonly lastSuccessAt: string | null;
    readonly initialSync: { readonly state: string; readonly unread?: number } | null;
  }[];
  readonly messages: readonly {
    readonly accountId: string;
    readonly via: 'watch' | 'initial sync';
    readonly subject: string | null;
    readonly from: string | null;
  }[];
}

/** A page's HTML without the `<!-- -->` React puts between adjacent text parts. */
const html = async (response: Response) => (await response.text()).replaceAll('<!-- -->', '');

const CONFIGURED = {
  GOOGLE_CLIENT_ID: 'smoke-test.apps.googleusercontent.com',
  GOOGLE_CLIENT_SECRET: 'smoke-test-secret',
  APP_ORIGIN: ORIGIN,
  TOKEN_KEY: randomBytes(32).toString('base64'),
  DEMO_SESSION: '1',
};

describe.skipIf(!buildAvailable())('examples/nextjs (next start)', () => {
  describe('configured with Google, memory store', () => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await startApp(CONFIGURED);
    }, 40_000);
    afterAll(async () => {
      await app?.stop();
    });

    it('renders the home page with the redirect URI to register', async () => {
      const response = await request(app, '/');
      expect(response.status).toBe(200);
      const body = await html(response);
      expect(body).toContain('Connect a mailbox');
      expect(body).toContain(`${ORIGIN}/api/oauth/google/callback`);
      expect(body).not.toContain('smoke-test-secret');
    });

    it('start: 302 to Google with PKCE (S256), state, nonce and offline access', async () => {
      const response = await request(app, '/api/oauth/google/start');
      expect(response.status).toBe(302);
      expect(response.headers.get('cache-control')).toContain('no-store');
      const location = new URL(response.headers.get('location') ?? '');
      expect(location.origin + location.pathname).toBe('https://accounts.google.com/o/oauth2/v2/auth');
      const q = location.searchParams;
      expect(q.get('client_id')).toBe(CONFIGURED.GOOGLE_CLIENT_ID);
      expect(q.get('redirect_uri')).toBe(`${ORIGIN}/api/oauth/google/callback`);
      expect(q.get('response_type')).toBe('code');
      expect(q.get('code_challenge_method')).toBe('S256');
      expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(q.get('nonce')).toBeTruthy();
      expect(q.get('scope')?.split(' ')).toEqual(
        expect.arrayContaining(['openid', 'email', 'https://mail.google.com/']),
      );
      expect(q.get('access_type')).toBe('offline');
    });

    it('an unknown provider is a 404, at the start and at the callback', async () => {
      expect((await request(app, '/api/oauth/yahoo/start')).status).toBe(404);
      expect((await request(app, '/api/oauth/yahoo/callback?code=x&state=y')).status).toBe(404);
    });

    it('callback: an unknown state goes back to the accounts page with the error code only', async () => {
      const state = randomBytes(32).toString('base64url');
      const response = await request(app, `/api/oauth/google/callback?state=${state}&code=secret-code`);
      expect(response.status).toBe(302);
      const location = new URL(response.headers.get('location') ?? '');
      expect(location.origin + location.pathname).toBe(`${ORIGIN}/accounts`);
      expect(Object.fromEntries(location.searchParams)).toEqual({
        status: 'error',
        provider: 'google',
        error: 'ERR_INVALID_STATE',
      });
    });

    it("callback: a state started by another session's owner is refused", async () => {
      const start = await request(app, '/api/oauth/google/start', { headers: { cookie: 'demo-user=alice' } });
      const state = new URL(start.headers.get('location') ?? '').searchParams.get('state');
      const response = await request(app, `/api/oauth/google/callback?state=${state}&code=stolen`, {
        headers: { cookie: 'demo-user=mallory' },
      });
      expect(new URL(response.headers.get('location') ?? '').searchParams.get('error')).toBe(
        'ERR_INVALID_STATE',
      );
    });

    it('callback: the user declining consent comes back as ERR_AUTHORIZATION_DENIED, shown on the page', async () => {
      const start = await request(app, '/api/oauth/google/start', { headers: { cookie: 'demo-user=bob' } });
      const state = new URL(start.headers.get('location') ?? '').searchParams.get('state');
      const response = await request(app, `/api/oauth/google/callback?error=access_denied&state=${state}`, {
        headers: { cookie: 'demo-user=bob' },
      });
      const location = new URL(response.headers.get('location') ?? '');
      expect(location.searchParams.get('error')).toBe('ERR_AUTHORIZATION_DENIED');
      const page = await request(app, `${location.pathname}${location.search}`, {
        headers: { cookie: 'demo-user=bob' },
      });
      expect(page.status).toBe(200);
      const body = await html(page);
      expect(body).toContain('You declined access');
      expect(body).toContain('href="/api/oauth/google/start"');
      expect(body).toContain('No mailbox connected yet');
    });

    it('disconnect: refuses a cross-origin POST (403) and answers 404 for an account not of this owner', async () => {
      const foreign = await request(app, '/api/accounts/some-id/disconnect', {
        method: 'POST',
        headers: { origin: 'https://evil.example' },
      });
      expect(foreign.status).toBe(403);
      const unknown = await request(app, '/api/accounts/some-id/disconnect', {
        method: 'POST',
        headers: { origin: ORIGIN },
      });
      expect(unknown.status).toBe(404);
    });

    it('logs the failures by code, name and message only, without the authorization code', () => {
      expect(app.output()).toMatch(
        /callback google: ERR_INVALID_STATE \{\s*code: 'ERR_INVALID_STATE',\s*name: '\w+',\s*message: '[^']+'\s*\}/,
      );
      expect(app.output()).not.toContain('secret-code');
      expect(app.output()).not.toContain('[cause]'); // never the whole error object
      expect(app.output()).not.toMatch(/^\s+at .*\(/m); // nor a stack trace
    });
  });

  describe('the whole flow, with the local dev provider', () => {
    const callbackUri = `${ORIGIN}/api/oauth/local/callback`;
    const as = (owner: string, init: RequestInit = {}): RequestInit => ({
      ...init,
      headers: { cookie: `demo-user=${owner}`, ...(init.method === 'POST' ? { origin: ORIGIN } : {}) },
    });
    // Dovecot is ada's IMAP server (bearer tokens checked against the provider), and the SMTP server
    // delivers into it; without Dovecot (outside CI) the flow runs without IMAP and nothing is watched.
    const withDovecot = dovecotAvailable();
    const waiting = 'Waiting before the connect';
    let op: LocalProvider;
    let dovecot: Dovecot | undefined;
    let sink: SmtpSink;
    let app: RunningApp;
    let accountId: string;
    let callbackSearch: string;
    const inbox = async (owner: string): Promise<InboxJson> => {
      const response = await request(app, '/api/inbox', as(owner));
      expect(response.status, app.output()).toBe(200);
      return (await response.json()) as InboxJson;
    };
    beforeAll(async () => {
      op = await startLocalProvider({
        redirectUris: [callbackUri],
        clientId: 'nextjs-example',
        clientSecret: 'local-dev-secret',
      });
      if (withDovecot) {
        dovecot = await startDovecot({ introspectionUrl: op.introspectionUrl, mechanisms: ['xoauth2'] });
        // Unread mail from before the connect: only the initial sync can find it.
        dovecot.deliver(
          'ada@example.com',
          `From: grace@example.org\r\nTo: ada@example.com\r\nSubject: ${waiting}\r\nMessage-ID: <waiting@example.org>\r\n\r\nHello.\r\n`,
        );
      }
      sink = await startSmtpSink({
        validate: async (user, token) => (await op.introspect(token)).username === user,
        deliver: (message) => {
          for (const to of message.to) dovecot?.deliver(to, message.raw);
        },
      });
      app = await startApp({
        APP_ORIGIN: ORIGIN,
        DEMO_SESSION: '1',
        TOKEN_KEY: CONFIGURED.TOKEN_KEY,
        LOCAL_OIDC_ISSUER: op.issuer,
        LOCAL_SMTP_PORT: String(sink.port),
        ...(dovecot === undefined ? {} : { LOCAL_IMAP_PORT: String(dovecot.imapPort) }),
      });
    }, 40_000);
    afterAll(async () => {
      await app?.stop();
      await sink?.close();
      await dovecot?.stop();
      await op?.close();
    });

    it('connects: start → consent at the provider → callback → back on the accounts page', async () => {
      const start = await request(app, '/api/oauth/local/start', as('ada'));
      expect(start.status).toBe(302);
      // The browser's part at the provider: sign in as ada@example.com and consent.
      const callback = await completeDevLogin(new URL(start.headers.get('location') ?? ''), {
        login: 'ada@example.com',
        redirectUri: callbackUri,
      });
      callbackSearch = callback.search;
      const done = await request(app, `/api/oauth/local/callback${callbackSearch}`, as('ada'));
      expect(done.status).toBe(302);
      const back = new URL(done.headers.get('location') ?? '');
      expect(back.origin + back.pathname).toBe(`${ORIGIN}/accounts`);
      expect(back.searchParams.get('status')).toBe('success');
      accountId = back.searchParams.get('account') ?? '';
      expect(accountId).not.toBe('');

      const page = await html(await request(app, `/accounts${back.search}`, as('ada')));
      expect(page).toContain('Connected ada@example.com (Local dev provider).');
      expect(page).toContain(`/api/accounts/${accountId}/disconnect`);
      expect(page).toContain('connected');
    });

    it.skipIf(!withDovecot)(
      'the connected event: the orchestrator watches the mailbox, and its initial sync found the waiting mail',
      async () => {
        const seen = await waitFor(
          async () => {
            const now = await inbox('ada');
            const watch = now.watched.find((w) => w.accountId === accountId);
            return watch?.state === 'watching' &&
              watch.lastSuccessAt !== null &&
              watch.initialSync?.state === 'done'
              ? { now, watch }
              : undefined;
          },
          15_000,
          { message: () => `ada's mailbox is not watched and synced:\n${app.output()}` },
        );
        expect(seen.watch.initialSync).toEqual({ state: 'done', unread: 1 });
        expect(seen.now.messages).toEqual([
          expect.objectContaining({
            accountId,
            via: 'initial sync',
            subject: waiting,
            from: 'grace@example.org',
          }),
        ]);
        const page = await html(await request(app, '/accounts', as('ada')));
        expect(page).toContain('watching, initial sync: 1 unread');
        expect(page).toContain('Latest mail');
        expect(page).toContain(waiting);
      },
    );

    it('the callback is single use: a replay is refused before any token request', async () => {
      const replay = await request(app, `/api/oauth/local/callback${callbackSearch}`, as('ada'));
      expect(new URL(replay.headers.get('location') ?? '').searchParams.get('error')).toBe(
        'ERR_INVALID_STATE',
      );
      expect(op.tokenRequests).toBe(1);
    });

    it("keeps owners apart: another user neither sees nor disconnects ada's mailbox", async () => {
      const page = await html(await request(app, '/accounts', as('mallory')));
      expect(page).not.toContain('ada@example.com');
      const attempt = await request(
        app,
        `/api/accounts/${accountId}/disconnect`,
        as('mallory', { method: 'POST' }),
      );
      expect(attempt.status).toBe(404);
      expect(await inbox('mallory')).toEqual({ watched: [], messages: [] });
    });

    it('sends a test message over SMTP with the OAuth access token', async () => {
      const sent = await request(app, `/api/accounts/${accountId}/send-test`, as('ada', { method: 'POST' }));
      expect(sent.status).toBe(303);
      const outcome = new URL(sent.headers.get('location') ?? '').searchParams;
      expect(outcome.get('status'), `${outcome.get('error')}\n${app.output()}`).toBe('sent');
      expect(sink.messages).toHaveLength(1);
      expect(sink.messages[0]?.user).toBe('ada@example.com');
      expect(sink.messages[0]?.to).toEqual(['ada@example.com']);
    });

    it.skipIf(!withDovecot)(
      'the watcher delivers the test message, which arrived in the INBOX after the connect',
      async () => {
        const messages = await waitFor(
          async () => {
            const now = await inbox('ada');
            return now.messages.some((m) => m.via === 'watch') ? now.messages : undefined;
          },
          15_000,
          { message: () => `the watcher delivered nothing:\n${app.output()}` },
        );
        expect(messages.map(({ via, subject }) => ({ via, subject }))).toEqual([
          { via: 'watch', subject: 'oauth-mailbox: test message' },
          { via: 'initial sync', subject: waiting },
        ]);
        // The mail from before the connect came from the initial sync only, never from the watcher.
        expect(app.output().match(new RegExp(`new message for account ${accountId}: `, 'g'))).toHaveLength(1);
        expect(await html(await request(app, '/accounts', as('ada')))).toContain('new, from the watcher');
      },
    );

    it('disconnects: revoked at the provider, gone from the page', async () => {
      const gone = await request(app, `/api/accounts/${accountId}/disconnect`, as('ada', { method: 'POST' }));
      expect(gone.status).toBe(303);
      const back = new URL(gone.headers.get('location') ?? '');
      expect(Object.fromEntries(back.searchParams)).toEqual({ status: 'disconnected', revoked: '1' });
      const page = await html(await request(app, `/accounts${back.search}`, as('ada')));
      expect(page).toContain('the provider revoked the access');
      expect(page).toContain('No mailbox connected yet');
    });

    it.skipIf(!withDovecot)(
      'the disconnected event: the orchestrator no longer watches the mailbox',
      async () => {
        // Its owner is listed until `orchestrator.remove` resolved, so an empty list is the orchestrator's.
        await waitFor(
          async () => {
            const now = await inbox('ada');
            return now.watched.length === 0 && now.messages.length === 0 ? true : undefined;
          },
          10_000,
          { message: () => `ada's mailbox is still watched:\n${app.output()}` },
        );
      },
    );
  });

  describe('without any provider configured', () => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await startApp({ APP_ORIGIN: ORIGIN, DEMO_SESSION: '1' });
    }, 40_000);
    afterAll(async () => {
      await app?.stop();
    });

    it('shows what to set instead of failing', async () => {
      const body = await html(await request(app, '/accounts'));
      expect(body).toContain('Mailbox connection not configured');
      expect(body).toContain('GOOGLE_CLIENT_ID');
      expect((await request(app, '/api/oauth/google/start')).status).toBe(503);
    });
  });

  describe('the demo session in production', () => {
    let app: RunningApp;
    beforeAll(async () => {
      const { DEMO_SESSION: _, ...withoutDemo } = CONFIGURED;
      app = await startApp(withoutDemo);
    }, 40_000);
    afterAll(async () => {
      await app?.stop();
    });

    it('is off unless DEMO_SESSION=1: nobody is signed in', async () => {
      expect((await request(app, '/api/oauth/google/start')).status).toBe(401);
    });
  });

  const databaseUrl = requireService('DATABASE_URL', 'Next.js example on PostgreSQL');
  describe.skipIf(!databaseUrl)('with DATABASE_URL (PostgreSQL store)', () => {
    const schema = `om_next_${randomBytes(4).toString('hex')}`;
    let app: RunningApp;
    let pool: pg.Pool;
    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
      app = await startApp({ ...CONFIGURED, DATABASE_URL: databaseUrl ?? '', DATABASE_SCHEMA: schema });
    }, 40_000);
    afterAll(async () => {
      await app?.stop();
      await pool?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool?.end();
    });

    it('migrates, stores the pending authorization in PostgreSQL, and lists from it', async () => {
      const page = await request(app, '/accounts');
      expect(page.status).toBe(200);
      expect(await html(page)).toContain('storage: postgres');
      const start = await request(app, '/api/oauth/google/start', {
        headers: { cookie: 'demo-user=pg-user' },
      });
      expect(start.status).toBe(302);
      const { rows } = await pool.query(`SELECT owner, provider FROM ${schema}.oauth_mailbox_states`);
      expect(rows).toEqual([{ owner: 'pg-user', provider: 'google' }]);
    });
  });
});
