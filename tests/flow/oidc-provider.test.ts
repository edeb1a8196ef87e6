/**
 * The whole authorization flow against a real, certified OpenID Provider (`oidc-provider`) on loopback:
 * start → its login and consent pages (followed like a browser would) → callback → account stored
 * encrypted → refresh with rotation (the old refresh token is then invalid_grant) → revocation.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthorizationDeniedError,
  aesGcmCipher,
  createMailboxAuth,
  InvalidStateError,
  memoryStore,
  oidc,
  ReauthorizationRequiredError,
} from '../../src/index.js';

const CLIENT = { clientId: 'mail-app', clientSecret: 'mail-app-secret-that-is-long-enough' };
let server: Server;
let issuer: string;
let redirectUri: string;

beforeAll(async () => {
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  issuer = `http://127.0.0.1:${port}`;
  redirectUri = 'http://127.0.0.1:3999/oauth/local/callback';
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT.clientId,
        client_secret: CLIENT.clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    async findAccount(_ctx: unknown, id: string) {
      return {
        accountId: id,
        claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true }),
      };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    features: { devInteractions: { enabled: true }, revocation: { enabled: true } },
    rotateRefreshToken: true,
    cookies: { keys: [randomBytes(16).toString('hex')] },
  });
  (provider as unknown as { on(e: string, f: () => void): void }).on('server_error', () => {});
  server.on('request', provider.callback());
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Follow the provider's redirects and dev login/consent pages like a browser, until the callback. */
async function browse(url: URL, login: string, options: { abort?: boolean } = {}): Promise<URL> {
  const cookies = new Map<string, string>();
  const header = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  let next: { url: string; method: 'GET' | 'POST'; body?: string } = { url: url.href, method: 'GET' };
  for (let step = 0; step < 20; step++) {
    const res = await fetch(next.url, {
      method: next.method,
      redirect: 'manual',
      headers: {
        cookie: header(),
        ...(next.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(next.body ? { body: next.body } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [k, ...v] = (pair as string).split('=');
      cookies.set(k as string, v.join('='));
    }
    const location = res.headers.get('location');
    if (location) {
      const target = new URL(location, next.url);
      if (target.href.startsWith(redirectUri)) return target;
      next = { url: target.href, method: 'GET' };
      continue;
    }
    const html = await res.text();
    const action = /action="([^"]+)"/.exec(html)?.[1];
    if (res.status !== 200 || action === undefined)
      throw new Error(`unexpected page (${res.status}): ${html.slice(0, 300)}`);
    const submit = new URL(action.replace(/&amp;/g, '&'), next.url).href;
    if (html.includes('name="prompt" value="login"')) {
      if (options.abort) {
        next = { url: `${submit.replace(/\/$/, '')}/abort`, method: 'GET' };
        continue;
      }
      next = {
        url: submit,
        method: 'POST',
        body: new URLSearchParams({ prompt: 'login', login, password: 'any' }).toString(),
      };
    } else if (html.includes('name="prompt" value="consent"')) {
      next = { url: submit, method: 'POST', body: new URLSearchParams({ prompt: 'consent' }).toString() };
    } else {
      throw new Error(`unknown interaction page: ${html.slice(0, 300)}`);
    }
  }
  throw new Error('too many steps');
}

function setup() {
  const store = memoryStore();
  const auth = createMailboxAuth({
    providers: [
      oidc({
        id: 'local',
        issuer,
        ...CLIENT,
        redirectUri,
        allowInsecureRequests: true,
        mail: {
          imap: { host: '127.0.0.1', port: 143, secure: false },
          smtp: { host: '127.0.0.1', port: 587, secure: false },
          sasl: 'OAUTHBEARER',
        },
      }),
    ],
    store,
    cipher: aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' }),
  });
  return { auth, store };
}

describe('the full flow against oidc-provider', () => {
  it('connects a mailbox, stores it encrypted, refreshes with rotation, refuses a replay, and revokes', async () => {
    const { auth, store } = setup();
    const { url } = await auth.startAuthorization('local', { owner: 'user-1', metadata: { source: 'e2e' } });
    expect(url.origin).toBe(issuer);
    const callback = await browse(url, 'alice');
    expect(callback.searchParams.get('iss')).toBe(issuer); // RFC 9207, checked by the library
    const { account, created } = await auth.completeAuthorization('local', callback, { owner: 'user-1' });
    expect(created).toBe(true);
    expect(account).toMatchObject({
      provider: 'local',
      email: 'alice@example.com',
      status: 'active',
      metadata: { source: 'e2e' },
    });

    const { tokens } = await auth.persistence.load(account.id);
    expect(tokens?.refreshToken).toBeTruthy();
    expect(tokens?.idToken).toBeTruthy();
    const raw = JSON.stringify(await store.getAccount(account.id));
    expect((await store.getAccount(account.id))?.secret).toMatch(/^om1\./);
    for (const secret of [tokens?.accessToken, tokens?.refreshToken, tokens?.idToken])
      expect(raw).not.toContain(secret);

    // The same callback again: the state was spent.
    await expect(auth.completeAuthorization('local', callback, { owner: 'user-1' })).rejects.toBeInstanceOf(
      InvalidStateError,
    );
    expect((await store.listAccounts()).records).toHaveLength(1);

    // Refresh with rotation through the refresher; the old refresh token is then dead at the provider.
    const old = tokens?.refreshToken as string;
    const fresh = await auth.getAccessToken(account.id, { forceRefresh: true });
    expect(fresh.accessToken).not.toBe(tokens?.accessToken);
    const rotated = (await auth.persistence.load(account.id)).tokens?.refreshToken as string;
    expect(rotated).not.toBe(old);
    await expect(auth.registry.get('local').refresh(old)).rejects.toBeInstanceOf(
      ReauthorizationRequiredError,
    );

    // Reconnecting the same mailbox updates the same account.
    const again = await auth.startAuthorization('local', { owner: 'user-1' });
    const second = await auth.completeAuthorization('local', await browse(again.url, 'alice'), {
      owner: 'user-1',
    });
    expect(second.created).toBe(false);
    expect(second.account.id).toBe(account.id);

    // Disconnect revokes at the provider and deletes locally.
    const current = (await auth.persistence.load(account.id)).tokens?.refreshToken as string;
    const result = await auth.disconnect(account.id);
    expect(result).toMatchObject({ revoked: true, deleted: true });
    await expect(auth.registry.get('local').refresh(current)).rejects.toBeInstanceOf(
      ReauthorizationRequiredError,
    );
  });

  it('maps an aborted login to AuthorizationDeniedError and stores nothing', async () => {
    const { auth, store } = setup();
    const { url } = await auth.startAuthorization('local', { owner: 'user-1' });
    const callback = await browse(url, 'bob', { abort: true });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    await expect(auth.completeAuthorization('local', callback, { owner: 'user-1' })).rejects.toBeInstanceOf(
      AuthorizationDeniedError,
    );
    expect((await store.listAccounts()).records).toHaveLength(0);
  });
});
