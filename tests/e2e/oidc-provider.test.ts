/**
 * End to end against a real OpenID Provider: `oidc-provider` v9 on a loopback port
 * (`examples/dev/local-provider.ts`, the quickstart's), its development login and consent pages driven with
 * plain `fetch` and a cookie jar (`examples/dev/dev-login.ts`), the library's whole authorization
 * flow on top (start → login → consent → callback → encrypted account), then refresh-token rotation,
 * replay of a spent callback, reconnect, a denied consent and disconnect with revocation.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeDevLogin } from '../../examples/dev/dev-login.js';
import { type LocalProvider, startLocalProvider } from '../../examples/dev/local-provider.js';
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

let op: LocalProvider | undefined;
let issuer = '';

beforeAll(async () => {
  op = await startLocalProvider({
    redirectUris: [REDIRECT_URI],
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    accessTokenTtlSeconds: 60,
  });
  issuer = op.issuer;
});

afterAll(async () => {
  await op?.close();
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

/** One whole authorization for `login`, returning the completion and the callback URL. */
async function connect(auth: MailboxAuth, login: string) {
  const { url, state } = await auth.startAuthorization('local', { owner: OWNER });
  const callback = await completeDevLogin(url, { login, redirectUri: REDIRECT_URI });
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
    const callback = await completeDevLogin(url, {
      login: 'grace',
      redirectUri: REDIRECT_URI,
      denyConsent: true,
    });
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
