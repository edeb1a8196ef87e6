/**
 * The NestJS example (examples/nestjs) end to end over HTTP, in dev mode: the app on a loopback port, the
 * authorization URL, login and consent at the local OpenID provider (walked with `completeDevLogin`), the
 * callback, the accounts list, sync (a forced refresh), disconnect with revocation; the guard (401 without a
 * user, 404 for another user's account), the error paths, and the throttler's 429 on the URL and callback
 * routes with a small limit. No token, code or client secret may appear in a response or a log line.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeDevLogin } from '../../examples/dev/dev-login.js';
import { createApp, type NestAppConfig, type NestMailboxApp } from '../../examples/nestjs/app.js';

interface Running {
  readonly origin: string;
  readonly example: NestMailboxApp;
  readonly logs: string[];
  close(): Promise<void>;
}

/** The example in-process on a free loopback port, in dev mode, with its log lines captured. */
async function start(config: Partial<NestAppConfig> = {}): Promise<Running> {
  // Listen first: the dev provider registers the redirect URI with the real port.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const logs: string[] = [];
  const example = await createApp({
    dev: true,
    nestLogger: false,
    ...config,
    origin,
    log: (line) => logs.push(line),
  });
  server.on('request', example.http);
  return {
    origin,
    example,
    logs,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await example.close();
    },
  };
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly location: string | null;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies, checked field by field
  readonly json: any;
}

/** A front end without a browser: fetch with a cookie jar, redirects not followed, every body kept. */
class Client {
  readonly #jar = new Map<string, string>();
  /** Every body received, to check what ever reached the client. */
  static readonly bodies: string[] = [];

  constructor(readonly origin: string) {}

  async request(path: string | URL, init: { method?: string; json?: unknown } = {}): Promise<Answer> {
    const res = await fetch(new URL(path, this.origin), {
      method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
      redirect: 'manual',
      headers: {
        ...(this.#jar.size === 0 ? {} : { cookie: [...this.#jar].map(([k, v]) => `${k}=${v}`).join('; ') }),
        ...(init.json === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
    });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.#jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const text = await res.text();
    Client.bodies.push(text, res.headers.get('location') ?? '');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, location: res.headers.get('location'), text, json };
  }

  /** Set a cookie by hand (a forged session). */
  cookie(name: string, value: string): this {
    this.#jar.set(name, value);
    return this;
  }

  /** Sign in as `user` with the demo's stand-in login. */
  async signIn(user: string): Promise<this> {
    const res = await this.request('/demo/sign-in', { json: { user } });
    expect(res.status).toBe(204);
    return this;
  }
}

let running: Running;
/** Values that must never reach a response or a log. */
const secrets = new Set<string>();

beforeAll(async () => {
  running = await start();
  const dev = running.example.dev;
  if (dev === undefined) throw new Error('dev mode expected');
  secrets.add(dev.op.clientSecret);
});

afterAll(async () => {
  await running?.close();
});

const callbackUri = () => `${running.origin}/integrations/callback/local`;

/** Get the URL, sign in and consent at the local provider; return the callback URL (not yet visited). */
async function authorize(client: Client, login: string, denyConsent = false): Promise<URL> {
  const res = await client.request('/integrations/oauth-url/local');
  expect(res.status).toBe(200);
  const callback = await completeDevLogin(new URL(res.json.url), {
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

/** Connect `login`'s mailbox for `client`; returns the account id. */
async function connect(client: Client, login: string): Promise<string> {
  const res = await client.request(await authorize(client, login));
  expect(res.status).toBe(302);
  const accountId = new URL(res.location ?? '').searchParams.get('account') ?? '';
  expect(accountId).not.toBe('');
  await rememberTokens(accountId);
  return accountId;
}

describe('examples/nestjs in dev mode', () => {
  let ada: Client;
  let accountId = '';
  let spentCallback: URL;

  beforeAll(async () => {
    ada = await new Client(running.origin).signIn('ada');
  });

  it('the guard answers 401 to every integrations route without a signed-in user', async () => {
    const anonymous = new Client(running.origin);
    const forged = new Client(running.origin).cookie('mailbox_demo_user', `ada.${'A'.repeat(43)}`);
    const routes = [
      ['GET', '/integrations/oauth-url/local'],
      ['GET', '/integrations/callback/local?code=x&state=y'],
      ['GET', '/integrations/accounts'],
      ['DELETE', '/integrations/accounts/some-id'],
      ['POST', '/integrations/sync/some-id'],
    ] as const;
    for (const [method, path] of routes) {
      const res = await anonymous.request(path, { method });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.json).toMatchObject({ statusCode: 401, message: 'Sign in first.' });
      // A cookie the server did not sign is no user either.
      const tampered = await forged.request(path, { method });
      expect(tampered.status).toBe(401);
    }
    expect((await anonymous.request('/demo/sign-in', { json: { user: 'not a name!' } })).status).toBe(401);
  });

  it('oauth-url answers the provider URL with PKCE, state and the registered redirect URI', async () => {
    const res = await ada.request('/integrations/oauth-url/local');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const url = new URL(res.json.url);
    expect(url.origin).toBe(running.example.dev?.op.issuer);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(url.searchParams.get('state')).toMatch(/^[\w-]{43}$/);
    expect(url.searchParams.get('redirect_uri')).toBe(callbackUri());
  });

  it('connects a mailbox: login, consent, callback, redirect to the front end with the account', async () => {
    spentCallback = await authorize(ada, 'ada');
    const res = await ada.request(spentCallback);
    expect(res.status).toBe(302);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const back = new URL(res.location ?? '');
    expect(back.origin + back.pathname).toBe(`${running.origin}/`);
    expect(back.searchParams.get('status')).toBe('success');
    expect(back.searchParams.get('provider')).toBe('local');
    accountId = back.searchParams.get('account') ?? '';
    expect(accountId).not.toBe('');
    await rememberTokens(accountId);
    expect(running.logs).toContain(`connected local account ${accountId}`);
  });

  it('lists the user’s accounts without any token', async () => {
    const res = await ada.request('/integrations/accounts');
    expect(res.status).toBe(200);
    expect(res.json.accounts).toHaveLength(1);
    const [account] = res.json.accounts;
    expect(Object.keys(account).sort()).toEqual(
      ['connectedAt', 'email', 'id', 'lastError', 'lastRefreshedAt', 'provider', 'status'].sort(),
    );
    expect(account).toMatchObject({
      id: accountId,
      provider: 'local',
      email: 'ada@example.com',
      status: 'active',
      lastError: null,
    });
  });

  it('sync refreshes the token at the provider and answers the account', async () => {
    const op = running.example.dev?.op;
    const before = op?.tokenRequests ?? 0;
    const { tokens: old } = await running.example.auth.persistence.load(accountId);
    const res = await ada.request(`/integrations/sync/${accountId}`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.json.account).toMatchObject({ id: accountId, status: 'active' });
    expect(op?.tokenRequests).toBe(before + 1);
    const { tokens } = await running.example.auth.persistence.load(accountId);
    expect(tokens?.accessToken).not.toBe(old?.accessToken);
    await rememberTokens(accountId);
  });

  it('another user’s account is a 404 for delete and sync, and stays connected', async () => {
    const mallory = await new Client(running.origin).signIn('mallory');
    expect((await mallory.request('/integrations/accounts')).json).toEqual({ accounts: [] });
    for (const [method, path] of [
      ['DELETE', `/integrations/accounts/${accountId}`],
      ['POST', `/integrations/sync/${accountId}`],
      ['DELETE', '/integrations/accounts/no-such-account'],
    ] as const) {
      const res = await mallory.request(path, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.json).toEqual({ statusCode: 404, error: 'ERR_ACCOUNT_NOT_FOUND' });
    }
    expect((await running.example.auth.getAccount(accountId)).status).toBe('active');
    // Nor can she finish an authorization Ada started: the callback is bound to the user who asked for it.
    const adas = await authorize(ada, 'ada');
    const stolen = await mallory.request(adas);
    expect(new URL(stolen.location ?? '').searchParams.get('status')).toBe('error');
    expect((await mallory.request('/integrations/accounts')).json).toEqual({ accounts: [] });
  });

  it('a denied consent and a replayed callback come back with only an error code', async () => {
    const denied = await ada.request(await authorize(ada, 'ada', true));
    expect(denied.status).toBe(302);
    expect(new URL(denied.location ?? '').searchParams.get('error')).toBe('ERR_AUTHORIZATION_DENIED');
    const replay = await ada.request(spentCallback);
    expect(new URL(replay.location ?? '').searchParams.get('error')).toBe('ERR_INVALID_STATE');
    expect(running.logs.some((line) => line.includes('ERR_INVALID_STATE'))).toBe(true);
  });

  it('an unknown provider or route is a 404 that repeats nothing of the URL', async () => {
    for (const path of ['/integrations/oauth-url/nope', '/integrations/callback/nope?code=abc&state=def']) {
      const res = await ada.request(path);
      expect(res.status, path).toBe(404);
      expect(res.json).toEqual({ statusCode: 404, error: 'ERR_UNKNOWN_PROVIDER' });
    }
    const unknown = await ada.request('/integrations/callbak/local?code=very-secret-code');
    expect(unknown.status).toBe(404);
    expect(unknown.text).not.toContain('very-secret-code');
    expect(unknown.text).not.toContain('callbak');
  });

  it('a revoked grant: sync answers 409 ERR_REAUTHORIZATION_REQUIRED and the list shows it', async () => {
    const grace = await new Client(running.origin).signIn('grace');
    const graceId = await connect(grace, 'grace');
    const { tokens } = await running.example.auth.persistence.load(graceId);
    const provider = running.example.auth.registry.get('local');
    await provider.revoke(tokens?.accessToken ?? '');
    await provider.revoke(tokens?.refreshToken ?? '');

    const res = await grace.request(`/integrations/sync/${graceId}`, { method: 'POST' });
    expect(res.status).toBe(409);
    expect(res.json).toEqual({ statusCode: 409, error: 'ERR_REAUTHORIZATION_REQUIRED' });
    const list = await grace.request('/integrations/accounts');
    expect(list.json.accounts[0]).toMatchObject({
      id: graceId,
      status: 'reauth_required',
      lastError: 'ERR_REAUTHORIZATION_REQUIRED',
    });
  });

  it('delete revokes at the provider and removes the account', async () => {
    const { tokens } = await running.example.auth.persistence.load(accountId);
    const res = await ada.request(`/integrations/accounts/${accountId}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ disconnected: accountId, revoked: true });
    expect((await ada.request('/integrations/accounts')).json).toEqual({ accounts: [] });
    await expect(running.example.auth.getAccount(accountId)).rejects.toMatchObject({
      code: 'ERR_ACCOUNT_NOT_FOUND',
    });
    await expect(
      running.example.auth.registry.get('local').refresh(tokens?.refreshToken ?? ''),
    ).rejects.toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED' });
    expect((await ada.request(`/integrations/accounts/${accountId}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('no token, code or client secret ever appeared in a response or a log line', () => {
    expect(secrets.size).toBeGreaterThanOrEqual(7);
    const bodies = Client.bodies.join('\n');
    expect(bodies).toContain('ada@example.com');
    for (const secret of secrets) {
      expect(bodies.includes(secret)).toBe(false);
      expect(running.logs.some((line) => line.includes(secret))).toBe(false);
    }
  });
});

describe('examples/nestjs rate limit', () => {
  it('the URL and callback routes answer 429 after the limit; the other routes do not', async () => {
    const limited = await start({ throttle: { limit: 2, ttlMs: 10 * 60_000 } });
    try {
      const ada = await new Client(limited.origin).signIn('ada');
      for (let i = 0; i < 2; i++)
        expect((await ada.request('/integrations/oauth-url/local')).status).toBe(200);
      const refused = await ada.request('/integrations/oauth-url/local');
      expect(refused.status).toBe(429);
      expect(refused.json).toEqual({
        statusCode: 429,
        message: 'Too many requests: wait a minute and try again.',
      });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

      // The callback has its own count, and a refused one never reaches the library.
      const callback = '/integrations/callback/local?code=x&state=y';
      for (let i = 0; i < 2; i++) expect((await ada.request(callback)).status).toBe(302);
      expect((await ada.request(callback)).status).toBe(429);
      expect(limited.logs.filter((line) => line.startsWith('callback local'))).toHaveLength(2);

      // Not limited: the accounts list, sync and delete.
      for (let i = 0; i < 5; i++) expect((await ada.request('/integrations/accounts')).status).toBe(200);
      expect((await ada.request('/integrations/sync/none', { method: 'POST' })).status).toBe(404);
    } finally {
      await limited.close();
    }
  });
});

describe('examples/nestjs from the command line (npm run example:nestjs)', () => {
  it('starts in dev mode, prints its origin and answers 401 without a user', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    // The script as the test runs it; tsx's ESM loader only (its CommonJS hook would load @nestjs/throttler,
    // a CommonJS package, with a second copy of @nestjs/core).
    expect(scripts['example:nestjs']).toBe(
      'TSX_TSCONFIG_PATH=examples/tsconfig.json node --import tsx/esm examples/nestjs/main.ts',
    );
    const inherited = { ...process.env };
    for (const name of Object.keys(inherited))
      if (/^(GOOGLE_|MS_|TOKEN_KEY|APP_ORIGIN|DATABASE_URL|DEV$|NODE_ENV$|HOST$)/.test(name))
        delete inherited[name];
    const child = spawn(process.execPath, ['--import', 'tsx/esm', 'examples/nestjs/main.ts'], {
      cwd: root,
      env: { ...inherited, TSX_TSCONFIG_PATH: 'examples/tsconfig.json', PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let output = '';
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    try {
      // The first line names the origin; wait for it (or for the process to end), no timer.
      const origin = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk) => {
          output += chunk;
          const found = /NestJS example on (http:\/\/\S+)/.exec(output)?.[1];
          if (found !== undefined) resolve(found);
        });
        child.once('exit', (code) => reject(new Error(`the example exited (${code}):\n${output}`)));
      });
      const res = await fetch(`${origin}/integrations/accounts`);
      expect(res.status).toBe(401);
      expect(output).toContain('providers: local');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
