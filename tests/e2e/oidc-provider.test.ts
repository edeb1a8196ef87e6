/**
 * End to end against a real OpenID Provider: `oidc-provider` v9 on a loopback port, its development
 * login and consent pages driven with plain `fetch` and a cookie jar, the library's whole authorization
 * flow on top (start → login → consent → callback → encrypted account), then refresh-token rotation,
 * replay of a spent callback, reconnect, a denied consent and disconnect with revocation.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Configuration } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AccountNotFoundError,
  AuthorizationDeniedError,
  aesGcmCipher,
  createMailboxAuth,
  InvalidStateError,
  type MailboxAuth,
  type MemoryStore,
  memoryStore,
  oidc,
  ReauthorizationRequiredError,
} from '../../src/index.js';

const CLIENT_ID = 'mailbox-e2e';
const CLIENT_SECRET = randomBytes(32).toString('base64url');
const REDIRECT_URI = 'http://127.0.0.1:53682/oauth/local/callback';
const OWNER = 'user-1';

let server: Server | undefined;
let issuer = '';
let restoreConsole: (() => void) | undefined;

/** Drop oidc-provider's development notices (console.warn / console.info); let anything else through. */
function muteOidcProviderNotices(): () => void {
  const quiet =
    (original: (...args: unknown[]) => void) =>
    (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider ')) return;
      original(...args);
    };
  const warn = vi.spyOn(console, 'warn').mockImplementation(quiet(console.warn.bind(console)));
  const info = vi.spyOn(console, 'info').mockImplementation(quiet(console.info.bind(console)));
  return () => {
    warn.mockRestore();
    info.mockRestore();
  };
}

beforeAll(async () => {
  restoreConsole = muteOidcProviderNotices();
  // Imported here, after the console filter, so its "unsupported runtime" warning on Node 20 is muted too.
  const { default: Provider } = await import('oidc-provider');
  const listening = createServer();
  await new Promise<void>((resolve, reject) => {
    listening.once('error', reject);
    listening.listen(0, '127.0.0.1', () => resolve());
  });
  server = listening;
  const { port } = listening.address() as AddressInfo;
  issuer = `http://127.0.0.1:${port}`;

  const configuration: Configuration = {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    findAccount: (_ctx, sub) => ({
      accountId: sub,
      claims: () => ({ sub, email: `${sub}@example.com`, email_verified: true }),
    }),
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    features: {
      devInteractions: { enabled: true },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
    },
    // PKCE on every request, confidential client or not: the library must send S256 itself.
    pkce: { required: () => true },
    // Rotate on every use (the default only rotates confidential clients' tokens late in their life).
    rotateRefreshToken: true,
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: {
      AccessToken: 60,
      AuthorizationCode: 60,
      IdToken: 60,
      RefreshToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
  };
  const provider = new Provider(issuer, configuration);
  listening.on('request', provider.callback());
});

afterAll(async () => {
  const listening = server;
  if (listening !== undefined) {
    listening.closeAllConnections();
    await new Promise<void>((resolve, reject) =>
      listening.close((err) => (err === undefined ? resolve() : reject(err))),
    );
  }
  restoreConsole?.();
});

function setup(): { auth: MailboxAuth; store: MemoryStore } {
  const store = memoryStore();
  const auth = createMailboxAuth({
    providers: [
      oidc({
        id: 'local',
        issuer,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        redirectUri: REDIRECT_URI,
        allowInsecureRequests: true,
        mail: {
          imap: { host: '127.0.0.1', port: 1143, secure: false },
          smtp: { host: '127.0.0.1', port: 1587, secure: false },
          sasl: 'XOAUTH2',
        },
      }),
    ],
    store,
    cipher: aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' }),
  });
  return { auth, store };
}

interface BrowseOptions {
  /** Click the dev pages' "abort" link instead of consenting. */
  readonly denyConsent?: boolean;
}

/**
 * Be the user's browser: follow the authorization URL's redirects with a cookie jar, sign in on the dev
 * login page, consent (or abort) on the dev consent page, and stop at the redirect to the client's
 * redirect_uri, which is returned.
 */
async function browse(start: URL, login: string, options: BrowseOptions = {}): Promise<URL> {
  const jar = new Map<string, string>();
  let request: { url: URL; body?: URLSearchParams } = { url: start };
  const pages: string[] = [];
  for (let hop = 0; hop < 15; hop++) {
    const res = await fetch(request.url, {
      method: request.body === undefined ? 'GET' : 'POST',
      redirect: 'manual',
      headers: {
        ...(jar.size === 0 ? {} : { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') }),
        ...(request.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      ...(request.body === undefined ? {} : { body: request.body.toString() }),
    });
    for (const cookie of res.headers.getSetCookie()) {
      const pair = cookie.split(';', 1)[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /;\s*expires=Thu, 01 Jan 1970/i.test(cookie)) jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      await res.body?.cancel();
      const next = new URL(location, request.url);
      if (next.origin + next.pathname === REDIRECT_URI) return next;
      expect(next.origin, `redirected off the provider to ${next.href}`).toBe(issuer);
      request = { url: next };
      continue;
    }
    const html = await res.text();
    expect(res.status, html.slice(0, 500)).toBe(200);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1];
    if (action === undefined || prompt === undefined) throw new Error(`not an interaction page: ${html}`);
    pages.push(prompt);
    const submit = new URL(action.replaceAll('&amp;', '&'), request.url);
    const uid = /^\/interaction\/([^/]+)$/.exec(submit.pathname)?.[1];
    expect(uid, `unexpected form action ${submit.href}`).toBeDefined();
    if (prompt === 'login') {
      request = { url: submit, body: new URLSearchParams({ prompt: 'login', login, password: 'anything' }) };
    } else if (prompt === 'consent' && options.denyConsent === true) {
      request = { url: new URL(`/interaction/${uid}/abort`, issuer) };
    } else if (prompt === 'consent') {
      request = { url: submit, body: new URLSearchParams({ prompt: 'consent' }) };
    } else {
      throw new Error(`unknown prompt ${prompt}`);
    }
  }
  throw new Error(`no redirect to the client after 15 hops (pages: ${pages.join(', ')})`);
}

/** One whole authorization for `login`, returning the completion and the callback URL. */
async function connect(auth: MailboxAuth, login: string) {
  const { url, state } = await auth.startAuthorization('local', { owner: OWNER });
  const callback = await browse(url, login);
  expect(callback.searchParams.get('state')).toBe(state);
  expect(callback.searchParams.get('code')).toBeTruthy();
  const completed = await auth.completeAuthorization('local', callback, { owner: OWNER });
  return { ...completed, callback };
}

describe('oauth-mailbox against a real oidc-provider', () => {
  it('sends an S256 PKCE, nonce, offline_access and prompt=consent authorization request', async () => {
    const { auth } = setup();
    const { url, state } = await auth.startAuthorization('local', { owner: OWNER });
    expect(url.origin).toBe(issuer);
    expect(url.pathname).toBe('/auth');
    const q = url.searchParams;
    expect(q.get('client_id')).toBe(CLIENT_ID);
    expect(q.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(q.get('response_type')).toBe('code');
    expect(q.get('state')).toBe(state);
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('nonce')).toBeTruthy();
    expect(q.get('prompt')).toBe('consent');
    expect(q.get('scope')?.split(' ').sort()).toEqual(['email', 'offline_access', 'openid']);
  });

  it('connects a mailbox: the account is stored with the email, its tokens only inside an om1. envelope', async () => {
    const { auth, store } = setup();
    const { account, created, callback } = await connect(auth, 'alice');
    expect(callback.searchParams.get('iss')).toBe(issuer);
    expect(created).toBe(true);
    expect(account.email).toBe('alice@example.com');
    expect(account.status).toBe('active');
    expect(account.provider).toBe('local');
    expect(account.owner).toBe(OWNER);
    expect([...account.scopes].sort()).toEqual(['email', 'offline_access', 'openid']);

    const { tokens } = await auth.persistence.load(account.id);
    expect(tokens).not.toBeNull();
    const accessToken = tokens?.accessToken ?? '';
    const refreshToken = tokens?.refreshToken ?? null;
    const idToken = tokens?.idToken ?? null;
    expect(accessToken).not.toBe('');
    expect(refreshToken).not.toBeNull();
    expect(idToken).not.toBeNull();
    expect(tokens?.expiresAt?.getTime()).toBeGreaterThan(Date.now());
    expect(tokens?.expiresAt?.getTime()).toBeLessThanOrEqual(Date.now() + 61_000);

    const record = await store.getAccount(account.id);
    expect(record?.secret).toMatch(/^om1\./);
    const raw = JSON.stringify(record);
    for (const secret of [accessToken, refreshToken, idToken]) {
      expect(secret).toBeTruthy();
      expect(raw).not.toContain(secret);
    }
    expect(JSON.stringify(account)).not.toContain(accessToken);
  });

  it('refreshes through the refresher with rotation: the new refresh token is stored, the old one is then ERR_REAUTHORIZATION_REQUIRED', async () => {
    const { auth } = setup();
    const { account } = await connect(auth, 'carol');
    const before = (await auth.persistence.load(account.id)).tokens;
    const oldRefresh = before?.refreshToken;
    if (oldRefresh == null) throw new Error('no refresh token stored');

    // Through the library's own path: the refresher refreshes, persists the rotated token, then returns.
    const fresh = await auth.getAccessToken(account.id, { forceRefresh: true });
    expect(fresh.accessToken).not.toBe(before?.accessToken);
    const after = (await auth.persistence.load(account.id)).tokens;
    expect(after?.refreshToken).not.toBeNull();
    expect(after?.refreshToken).not.toBe(oldRefresh);
    expect(after?.accessToken).toBe(fresh.accessToken);

    const provider = auth.registry.get('local');
    const reuse = provider.refresh(oldRefresh);
    await expect(reuse).rejects.toBeInstanceOf(ReauthorizationRequiredError);
    await expect(reuse).rejects.toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED' });
  });

  it('refuses to replay a spent callback URL with ERR_INVALID_STATE and creates no second account', async () => {
    const { auth, store } = setup();
    const { account, callback } = await connect(auth, 'dave');
    const replay = auth.completeAuthorization('local', callback, { owner: OWNER });
    await expect(replay).rejects.toBeInstanceOf(InvalidStateError);
    await expect(replay).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
    const { records } = await store.listAccounts();
    expect(records.map((r) => r.id)).toEqual([account.id]);
  });

  it('reconnecting the same mailbox updates the same account (created: false) with the new tokens', async () => {
    const { auth, store } = setup();
    const first = await connect(auth, 'erin');
    const firstTokens = (await auth.persistence.load(first.account.id)).tokens;
    const second = await connect(auth, 'erin');
    expect(second.created).toBe(false);
    expect(second.account.id).toBe(first.account.id);
    expect(second.account.email).toBe('erin@example.com');
    const secondTokens = (await auth.persistence.load(first.account.id)).tokens;
    expect(secondTokens?.refreshToken).not.toBeNull();
    expect(secondTokens?.refreshToken).not.toBe(firstTokens?.refreshToken);
    expect((await store.listAccounts()).records).toHaveLength(1);

    // Another user at the same provider is another account.
    const other = await connect(auth, 'frank');
    expect(other.created).toBe(true);
    expect(other.account.id).not.toBe(first.account.id);
  });

  it('maps a denied consent (the dev pages abort link) to ERR_AUTHORIZATION_DENIED and stores nothing', async () => {
    const { auth, store } = setup();
    const { url, state } = await auth.startAuthorization('local', { owner: OWNER });
    const callback = await browse(url, 'grace', { denyConsent: true });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.has('code')).toBe(false);
    const denied = auth.completeAuthorization('local', callback, { owner: OWNER });
    await expect(denied).rejects.toBeInstanceOf(AuthorizationDeniedError);
    await expect(denied).rejects.toMatchObject({ code: 'ERR_AUTHORIZATION_DENIED' });
    expect((await store.listAccounts()).records).toHaveLength(0);
    // The state was spent by the denied attempt too.
    await expect(auth.completeAuthorization('local', callback, { owner: OWNER })).rejects.toBeInstanceOf(
      InvalidStateError,
    );
  });

  it('disconnect revokes the refresh token at the provider and deletes the account', async () => {
    const { auth, store } = setup();
    const { account } = await connect(auth, 'heidi');
    const refreshToken = (await auth.persistence.load(account.id)).tokens?.refreshToken;
    if (refreshToken == null) throw new Error('no refresh token stored');

    const result = await auth.disconnect(account.id);
    expect(result).toMatchObject({ accountId: account.id, revoked: true, deleted: true });
    expect(result.revocationError).toBeUndefined();
    expect(await store.getAccount(account.id)).toBeNull();
    await expect(auth.getAccount(account.id)).rejects.toBeInstanceOf(AccountNotFoundError);

    const refresh = auth.registry.get('local').refresh(refreshToken);
    await expect(refresh).rejects.toBeInstanceOf(ReauthorizationRequiredError);
    await expect(refresh).rejects.toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED' });
  });
});
