/**
 * The Express example (examples/express) end to end over HTTP, in dev mode: its page, the start and callback
 * routes against the local OpenID provider (login and consent walked with `completeDevLogin`), "send a test
 * message" through the SMTP server that checks the token with the provider, disconnect with revocation, and
 * the error paths (denied consent, replayed callback, unknown provider, CSRF, another owner's account,
 * a revoked grant). No token may ever appear in a page or a log line.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeDevLogin } from '../../examples/dev/dev-login.js';
import { AppConfigurationError, configFromEnv } from '../../examples/express/config.js';
import { startDevServices } from '../../examples/express/dev.js';
import { waitFor } from '../support/async.js';
import { dovecotAvailable } from '../support/dovecot-server.js';
import { type RunningExample, startExample, Visitor } from '../support/express-app.js';
import { listening } from '../support/loopback.js';

let running: RunningExample;
let ada: Visitor;
/** Values that must never reach a page or a log. */
const secrets = new Set<string>();

beforeAll(async () => {
  running = await startExample();
  ada = new Visitor(running.origin);
  const dev = running.example.dev;
  if (dev === undefined) throw new Error('dev mode expected');
  secrets.add(dev.op.clientSecret);
});

afterAll(async () => {
  await running?.close();
});

const callbackUri = () => `${running.origin}/oauth/local/callback`;

/** Start, sign in and consent at the local provider; return the callback URL (not yet visited). */
async function authorize(visitor: Visitor, login: string, denyConsent = false): Promise<URL> {
  const start = await visitor.request('/oauth/local/start');
  expect(start.status).toBe(302);
  const callback = await completeDevLogin(new URL(start.location ?? ''), {
    login,
    redirectUri: callbackUri(),
    denyConsent,
  });
  const code = callback.searchParams.get('code');
  if (code !== null) secrets.add(code);
  return callback;
}

/** Remember the account's current tokens as secrets. */
async function rememberTokens(accountId: string): Promise<void> {
  const { tokens } = await running.example.auth.persistence.load(accountId);
  if (tokens === null) return;
  secrets.add(tokens.accessToken);
  if (tokens.refreshToken) secrets.add(tokens.refreshToken);
}

/** Connect `login`'s mailbox for `visitor`; returns the account id. */
async function connect(visitor: Visitor, login: string): Promise<string> {
  const callback = await visitor.request(await authorize(visitor, login));
  expect(callback.status).toBe(302);
  const back = new URL(callback.location ?? '');
  const accountId = back.searchParams.get('account') ?? '';
  await rememberTokens(accountId);
  return accountId;
}

describe('examples/express in dev mode', () => {
  let accountId = '';
  let spentCallback: URL;

  it('serves a page listing the providers with Connect links, and sets a session cookie', async () => {
    const page = await ada.request('/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('href="/oauth/local/start">Connect Local test provider</a>');
    expect(page.body).not.toContain('Google');
    expect(page.body).toContain('No mailbox connected yet.');
    expect(page.body).toContain('Dev mode');
  });

  it('start redirects to the local provider with PKCE, state and the registered redirect URI', async () => {
    const start = await ada.request('/oauth/local/start');
    expect(start.status).toBe(302);
    const url = new URL(start.location ?? '');
    expect(url.origin).toBe(running.example.dev?.op.issuer);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(url.searchParams.get('state')).toMatch(/^[\w-]{43}$/);
    expect(url.searchParams.get('redirect_uri')).toBe(callbackUri());
  });

  it('connects a mailbox: login, consent, callback, back to the page with the account', async () => {
    spentCallback = await authorize(ada, 'ada');
    const callback = await ada.request(spentCallback);
    expect(callback.status).toBe(302);
    const back = new URL(callback.location ?? '');
    expect(back.origin + back.pathname).toBe(`${running.origin}/`);
    expect(back.searchParams.get('status')).toBe('success');
    expect(back.searchParams.get('provider')).toBe('local');
    accountId = back.searchParams.get('account') ?? '';
    expect(accountId).not.toBe('');
    await rememberTokens(accountId);

    const page = await ada.request(back);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Connected ada@example.com (Local test provider).');
    expect(page.body).toContain(`data-account="${accountId}"`);
    expect(page.body).toMatch(/ada@example\.com<\/span>\s*<span class="status active">active<\/span>/);
    expect(page.body).toContain('Send a test message');
    expect(page.body).toContain('last token refresh 20');
  });

  it('sends a test message to the SMTP server, which checks the token with the provider', async () => {
    const sink = running.example.dev?.sink;
    const csrf = Visitor.csrf((await ada.request('/')).body);
    const sent = await ada.request(`/accounts/${accountId}/send-test`, { form: { _csrf: csrf } });
    expect(sent.status).toBe(303);
    expect(sent.location).toBe(`/?notice=sent&account=${accountId}`);
    expect(sink?.messages).toHaveLength(1);
    expect(sink?.rejectedLogins).toBe(0);
    const [message] = sink?.messages ?? [];
    expect(message?.user).toBe('ada@example.com');
    expect(message?.to).toEqual(['ada@example.com']);
    expect(message?.raw.toString()).toContain('Subject: Test message from oauth-mailbox');

    const page = await ada.request(sent.location ?? '');
    expect(page.body).toContain('Test message sent to ada@example.com.');
    expect(page.body).toContain('Messages received by the local SMTP server: 1');
  });

  it('refuses a POST without this session’s CSRF token', async () => {
    const before = running.example.dev?.sink.messages.length;
    const none = await ada.request(`/accounts/${accountId}/send-test`, { form: {} });
    expect(none.status).toBe(403);
    const forged = await ada.request(`/accounts/${accountId}/disconnect`, {
      form: { _csrf: 'x'.repeat(43) },
    });
    expect(forged.status).toBe(403);
    expect(forged.body).toContain('sent from another site');
    expect(running.example.dev?.sink.messages.length).toBe(before);
    expect((await running.example.auth.getAccount(accountId)).status).toBe('active');
  });

  it('refuses another owner’s account id (as if it did not exist)', async () => {
    const mallory = new Visitor(running.origin);
    await connect(mallory, 'mallory'); // her own mailbox, so her page has forms and a CSRF token
    const own = await mallory.request('/');
    expect(own.body).toContain('mallory@example.com');
    expect(own.body).not.toContain('ada@example.com');
    const csrf = Visitor.csrf(own.body);
    const before = running.example.dev?.sink.messages.length;
    for (const action of ['send-test', 'disconnect']) {
      const res = await mallory.request(`/accounts/${accountId}/${action}`, { form: { _csrf: csrf } });
      expect(res.status, action).toBe(404);
      expect(res.body).toContain('ERR_ACCOUNT_NOT_FOUND');
    }
    expect(running.example.dev?.sink.messages.length).toBe(before);
    expect((await running.example.auth.getAccount(accountId)).status).toBe('active');
    // Nor does a success banner for someone else's account name it.
    const banner = await mallory.request(`/?status=success&provider=local&account=${accountId}`);
    expect(banner.body).not.toContain('ada@example.com');
  });

  it('a denied consent comes back as ?status=error&error=ERR_AUTHORIZATION_DENIED', async () => {
    const callback = await ada.request(await authorize(ada, 'ada', true));
    expect(callback.status).toBe(302);
    const back = new URL(callback.location ?? '');
    expect(back.searchParams.get('status')).toBe('error');
    expect(back.searchParams.get('error')).toBe('ERR_AUTHORIZATION_DENIED');
    const page = await ada.request(back);
    expect(page.body).toContain('You declined access at the provider, so nothing was connected.');
    expect(page.body).toContain('<code>ERR_AUTHORIZATION_DENIED</code>');
  });

  it('a replayed callback is ERR_INVALID_STATE', async () => {
    const replay = await ada.request(spentCallback);
    expect(replay.status).toBe(302);
    expect(new URL(replay.location ?? '').searchParams.get('error')).toBe('ERR_INVALID_STATE');
    expect(running.logs.some((line) => line.includes('ERR_INVALID_STATE'))).toBe(true);
  });

  it('an unknown provider or page is a 404; a crafted error code is not echoed', async () => {
    for (const path of ['/oauth/nope/start', '/oauth/nope/callback?code=x&state=y']) {
      const res = await ada.request(path);
      expect(res.status, path).toBe(404);
      expect(res.body).toContain('ERR_UNKNOWN_PROVIDER');
    }
    expect((await ada.request('/nowhere')).status).toBe(404);
    const crafted = await ada.request(
      '/?status=error&provider=local&error=%3Cscript%3Ealert(1)%3C/script%3E',
    );
    expect(crafted.body).toContain('<code>ERR_UNEXPECTED</code>');
    expect(crafted.body).not.toContain('<script>');
  });

  let revokedSend: { status: number; body: string } | undefined;

  it('a revoked grant: the send fails on the page, and the health shows reauth_required', async () => {
    const grace = new Visitor(running.origin);
    const graceId = await connect(grace, 'grace');
    const { tokens } = await running.example.auth.persistence.load(graceId);
    const provider = running.example.auth.registry.get('local');
    await provider.revoke(tokens?.accessToken ?? '');
    await provider.revoke(tokens?.refreshToken ?? '');

    const csrf = Visitor.csrf((await grace.request('/')).body);
    revokedSend = await grace.request(`/accounts/${graceId}/send-test`, { form: { _csrf: csrf } });
    expect(revokedSend.status).toBeGreaterThanOrEqual(400);
    expect(revokedSend.body).toContain('The test message was not sent');
    expect(running.example.dev?.sink.rejectedLogins).toBe(1); // the SMTP server refused the revoked token

    const page = await grace.request('/');
    expect(page.body).toContain('<span class="status reauth_required">reauth_required</span>');
    expect(page.body).toContain('last error <code>ERR_REAUTHORIZATION_REQUIRED</code>');
  });

  it('a revoked grant: the send answers 409 with ERR_REAUTHORIZATION_REQUIRED', () => {
    expect(revokedSend?.status).toBe(409);
    expect(revokedSend?.body).toContain('<code>ERR_REAUTHORIZATION_REQUIRED</code>');
  });

  it('disconnect revokes at the provider and removes the account from the page', async () => {
    const csrf = Visitor.csrf((await ada.request('/')).body);
    const { tokens } = await running.example.auth.persistence.load(accountId);
    const res = await ada.request(`/accounts/${accountId}/disconnect`, { form: { _csrf: csrf } });
    expect(res.status).toBe(303);
    expect(res.location).toBe('/?notice=disconnected&revoked=1');
    const page = await ada.request(res.location ?? '');
    expect(page.body).toContain('Mailbox disconnected, and access revoked at the provider.');
    expect(page.body).not.toContain(accountId);
    await expect(running.example.auth.getAccount(accountId)).rejects.toMatchObject({
      code: 'ERR_ACCOUNT_NOT_FOUND',
    });
    await expect(
      running.example.auth.registry.get('local').refresh(tokens?.refreshToken ?? ''),
    ).rejects.toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED' });
  });

  it('no token, code or client secret ever appeared in a page or a log line', () => {
    expect(secrets.size).toBeGreaterThanOrEqual(6);
    const pages = ada.pages.join('\n');
    expect(pages.length).toBeGreaterThan(10_000);
    for (const secret of secrets) {
      expect(pages.includes(secret)).toBe(false);
      expect(running.logs.some((line) => line.includes(secret))).toBe(false);
    }
  });
});

describe.skipIf(!dovecotAvailable())('examples/express watching mailboxes (dev mode with Dovecot)', () => {
  it('a connected mailbox gets an initial sync and is watched: the test message is heard of; disconnect stops it', async () => {
    const withDovecot = await startExample({ dev: { dovecot: true } });
    try {
      expect(withDovecot.example.inboxes).toBeDefined();
      const visitor = new Visitor(withDovecot.origin);
      const start = await visitor.request('/oauth/local/start');
      const callback = await completeDevLogin(new URL(start.location ?? ''), {
        login: 'grace',
        redirectUri: `${withDovecot.origin}/oauth/local/callback`,
      });
      const back = new URL((await visitor.request(callback)).location ?? '');
      const id = back.searchParams.get('account') ?? '';
      expect(id).not.toBe('');
      // From the `connected` event: the orchestrator has it, and the initial sync ran.
      await waitFor(() =>
        withDovecot.logs.includes(`initial sync of account ${id}: 0 unread`) ? true : undefined,
      );
      const inboxes = withDovecot.example.inboxes;
      await waitFor(() =>
        inboxes?.orchestrator
          .health()
          .some((h) => h.accountId === id && h.state === 'watching' && h.lastSuccessAt !== null)
          ? true
          : undefined,
      );
      // The test message goes through SMTP into Dovecot; the watcher hears of it.
      const csrf = Visitor.csrf((await visitor.request('/')).body);
      expect((await visitor.request(`/accounts/${id}/send-test`, { form: { _csrf: csrf } })).status).toBe(
        303,
      );
      await waitFor(() =>
        withDovecot.logs.some((l) => l.startsWith(`new message for account ${id}: `)) ? true : undefined,
      );
      // `disconnected`: the orchestrator lets the account go.
      const csrf2 = Visitor.csrf((await visitor.request('/')).body);
      await visitor.request(`/accounts/${id}/disconnect`, { form: { _csrf: csrf2 } });
      await waitFor(() => (inboxes?.orchestrator.health().length === 0 ? true : undefined));
    } finally {
      await withDovecot.close();
    }
  }, 60_000);
});

describe('examples/express configuration', () => {
  it('is dev mode without provider credentials, and needs TOKEN_KEY outside it', () => {
    expect(configFromEnv({}).dev).toBe(true);
    expect(configFromEnv({}).port).toBe(3000);
    expect(() => configFromEnv({ GOOGLE_CLIENT_ID: 'id', GOOGLE_CLIENT_SECRET: 's' })).toThrow(
      AppConfigurationError,
    );
    expect(() => configFromEnv({ GOOGLE_CLIENT_ID: 'id', GOOGLE_CLIENT_SECRET: 's' })).toThrow(/TOKEN_KEY/);
    expect(() => configFromEnv({ MS_CLIENT_ID: 'id' })).toThrow('MS_CLIENT_SECRET is missing');
    expect(() => configFromEnv({ APP_ORIGIN: 'https://x.example/path' })).toThrow(/origin only/);
    const config = configFromEnv(
      { MS_CLIENT_ID: 'id', MS_CLIENT_SECRET: 's', TOKEN_KEY: 'k', DATABASE_URL: 'postgres://h/db' },
      ['--dev'],
    );
    expect(config).toMatchObject({
      dev: true,
      microsoft: { clientId: 'id', tenant: 'common' },
      databaseUrl: 'postgres://h/db',
    });
  });

  it('starts dev mode by itself only for a local run, and listens on loopback in dev mode', () => {
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:3000']) {
      expect(configFromEnv({ APP_ORIGIN: origin }), origin).toMatchObject({ dev: true, host: '127.0.0.1' });
    }
    expect(configFromEnv({}).host).toBe('127.0.0.1');
    expect(configFromEnv({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    const real = { GOOGLE_CLIENT_ID: 'id', GOOGLE_CLIENT_SECRET: 's', TOKEN_KEY: 'k' };
    expect(configFromEnv(real)).toMatchObject({ dev: false, host: undefined });
    expect(configFromEnv({ ...real, HOST: '10.0.0.5' }).host).toBe('10.0.0.5');
    expect(configFromEnv({ ...real, DEV: '1' })).toMatchObject({ dev: true, host: '127.0.0.1' });
  });

  it('refuses implicit dev mode in production or on a public origin, naming the variables', () => {
    const refused = [
      { env: { NODE_ENV: 'production' }, why: 'NODE_ENV=production' },
      {
        env: { APP_ORIGIN: 'https://mail.example.com' },
        why: 'APP_ORIGIN=https://mail.example.com is not a loopback origin',
      },
      // A misnamed variable is no credential: still refused, not a silent dev mode.
      { env: { NODE_ENV: 'production', GOOGLE_ID: 'id', TOKEN_KEY: 'k' }, why: 'NODE_ENV=production' },
      { env: { DEV: '0' }, why: 'DEV=0' },
    ];
    for (const { env, why } of refused) {
      let error: unknown;
      try {
        configFromEnv(env);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(env)).toBeInstanceOf(AppConfigurationError);
      const message = (error as Error).message;
      for (const name of [
        'GOOGLE_CLIENT_ID',
        'GOOGLE_CLIENT_SECRET',
        'MS_CLIENT_ID',
        'MS_CLIENT_SECRET',
        'DEV=1',
      ])
        expect(message).toContain(name);
      expect(message).toContain(`(${why})`);
    }
    // Asked for explicitly, dev mode runs anywhere.
    expect(configFromEnv({ NODE_ENV: 'production', DEV: '1' }).dev).toBe(true);
    expect(configFromEnv({ NODE_ENV: 'production' }, ['--dev']).dev).toBe(true);
    expect(configFromEnv({ APP_ORIGIN: 'https://mail.example.com', DEV: 'true' }).dev).toBe(true);
    expect(() => configFromEnv({ DEV: 'maybe' })).toThrow('DEV must be 1 (dev mode) or 0');
    // With credentials, production is not dev mode and needs TOKEN_KEY as before.
    expect(() =>
      configFromEnv({ NODE_ENV: 'production', MS_CLIENT_ID: 'id', MS_CLIENT_SECRET: 's' }),
    ).toThrow(/TOKEN_KEY is required/);
  });

  it('lists only the providers with credentials', async () => {
    const app = await startExample({
      dev: false,
      google: { clientId: 'id.apps.googleusercontent.com', clientSecret: 'not-a-secret' },
      tokenKey: randomBytes(32).toString('base64'),
    });
    try {
      const visitor = new Visitor(app.origin);
      const page = await visitor.request('/');
      expect(page.body).toContain('href="/oauth/google/start">Connect Google</a>');
      expect(page.body).not.toContain('Microsoft');
      expect(page.body).not.toContain('/oauth/local/start');
      expect(page.body).not.toContain('Dev mode');
      expect((await visitor.request('/oauth/local/start')).status).toBe(404);
      const start = await visitor.request('/oauth/google/start');
      expect(start.status).toBe(302);
      expect(new URL(start.location ?? '').searchParams.get('redirect_uri')).toBe(
        `${app.origin}/oauth/google/callback`,
      );
    } finally {
      await app.close();
    }
  });
});

describe('examples/express rate limit', () => {
  it('the /oauth routes answer 429 with a page saying so after the limit; the other routes do not', async () => {
    // A window far longer than the test: every request lands in it.
    const app = await startExample({ rateLimit: { limit: 3, windowMs: 10 * 60_000 } });
    try {
      const visitor = new Visitor(app.origin);
      for (let i = 0; i < 2; i++) expect((await visitor.request('/oauth/local/start')).status).toBe(302);
      // Start and callback share the count (an unknown provider counts too).
      expect((await visitor.request('/oauth/nope/start')).status).toBe(404);
      for (const path of ['/oauth/local/start', '/oauth/local/callback?code=x&state=y']) {
        const refused = await visitor.request(path);
        expect(refused.status, path).toBe(429);
        expect(refused.body).toContain('Too many attempts to connect a mailbox from your network.');
        expect(refused.body).not.toContain('code=x');
      }
      const res = await fetch(`${app.origin}/oauth/local/start`, { redirect: 'manual' });
      expect(res.status).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(res.headers.get('ratelimit-policy')).toContain('q=3');
      await res.body?.cancel();
      // The callbacks that were refused never reached the library.
      expect(app.logs.filter((line) => line.startsWith('callback local'))).toEqual([]);

      // Not limited: the page, the account routes, unknown pages.
      for (let i = 0; i < 5; i++) expect((await visitor.request('/')).status).toBe(200);
      expect((await visitor.request('/accounts/x/send-test', { form: {} })).status).toBe(403);
      expect((await visitor.request('/nowhere')).status).toBe(404);
    } finally {
      await app.close();
    }
  });
});

const portOf = (url: string) => Number(new URL(url).port);

describe('examples/express shutdown', () => {
  it('close() twice is harmless: each service is stopped once', async () => {
    const app = await startExample();
    const dev = app.example.dev;
    if (dev === undefined) throw new Error('dev mode expected');
    const stops: string[] = [];
    for (const [name, service] of [
      ['provider', dev.op],
      ['smtp', dev.sink],
    ] as const) {
      const target = service as { close: () => Promise<void> };
      const close = target.close;
      target.close = () => {
        stops.push(name);
        return close();
      };
    }
    await app.close();
    await expect(app.example.close()).resolves.toBeUndefined();
    await expect(dev.close()).resolves.toBeUndefined();
    expect(stops).toEqual(['smtp', 'provider']);
    expect(await listening(portOf(dev.op.issuer))).toBe(false);
    expect(await listening(dev.sink.port)).toBe(false);
    expect(app.logs.filter((line) => /close|failed to stop/.test(line))).toEqual([]);
  });

  it('a service that fails to stop is logged, and the others are still stopped', async () => {
    const logs: string[] = [];
    const services = await startDevServices({
      origin: 'http://127.0.0.1:9',
      dovecot: false,
      log: (line) => logs.push(line),
    });
    // The SMTP server is stopped first (newest first): make it fail.
    const sink = services.sink as { close: () => Promise<void> };
    const closeSink = sink.close;
    sink.close = async () => {
      throw new Error('sink would not stop');
    };
    try {
      await services.close();
      expect(logs).toEqual(['dev services: a service failed to stop: sink would not stop']);
      expect(await listening(portOf(services.op.issuer))).toBe(false); // the provider was still stopped
    } finally {
      await closeSink();
    }
  });
});

describe('examples/express /metrics', () => {
  it('serves the library metrics in Prometheus text format, without a secret or an email address', async () => {
    const visitor = new Visitor(running.origin);
    const accountId = await connect(visitor, 'metrics-user');
    await running.example.auth.getAccessToken(accountId, { forceRefresh: true });
    await rememberTokens(accountId);
    const scrape = await visitor.request('/metrics');
    expect(scrape.status).toBe(200);
    expect(scrape.body).toMatch(/# TYPE oauth_mailbox_token_refreshes_total counter/);
    expect(scrape.body).toMatch(
      /oauth_mailbox_token_refreshes_total\{[^}]*oauth_mailbox_outcome="success"[^}]*\} [1-9]/,
    );
    expect(scrape.body).toMatch(/oauth_mailbox_token_refresh_duration_count\{/);
    for (const secret of secrets) expect(scrape.body).not.toContain(secret);
    expect(scrape.body).not.toContain('metrics-user');
    expect(scrape.body).not.toContain(accountId); // account ids go on spans only, never on metrics
  });

  it('is absent with metrics: false', async () => {
    const app = await startExample({ metrics: false });
    try {
      expect((await new Visitor(app.origin).request('/metrics')).status).toBe(404);
    } finally {
      await app.close();
    }
  });
});
