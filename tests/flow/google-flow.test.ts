import { inspect } from 'node:util';
import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import {
  AuthorizationDeniedError,
  AuthorizationResponseError,
  ConfigurationError,
  InvalidArgumentError,
  InvalidStateError,
  isMailboxAuthError,
  TokenExchangeError,
  UnknownProviderError,
} from '../../src/index.js';
import { GOOGLE_REDIRECT, mswServer, setupAuth } from '../support/flow.js';

const server = mswServer();
const OWNER = { owner: 'user-1' };

/** {@link setupAuth}, with Ada's Google account connected through the flow. */
async function connectAda() {
  const setup = setupAuth(server);
  const { url } = await setup.auth.startAuthorization('google', OWNER);
  const callback = setup.googleFake.approve(url, { email: 'ada@example.com' });
  const { account } = await setup.auth.completeAuthorization('google', callback, OWNER);
  return { ...setup, account };
}

async function expectNothingStored(store: { listAccounts(): Promise<{ records: readonly unknown[] }> }) {
  expect((await store.listAccounts()).records).toHaveLength(0);
}

describe('Google authorization flow', () => {
  it('builds an authorization URL with state, PKCE S256, nonce and offline access', async () => {
    const { auth } = setupAuth(server);
    const before = Date.now();
    const { url, state, expiresAt } = await auth.startAuthorization('google', {
      ...OWNER,
      loginHint: 'ada@example.com',
    });
    expect(url.origin + url.pathname).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    const q = url.searchParams;
    expect(q.get('client_id')).toBe('test-client-id');
    expect(q.get('redirect_uri')).toBe(GOOGLE_REDIRECT);
    expect(q.get('response_type')).toBe('code');
    expect(q.get('scope')?.split(' ')).toEqual(['openid', 'email', 'https://mail.google.com/']);
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('state')).toBe(state);
    expect(state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('access_type')).toBe('offline');
    expect(q.get('prompt')).toBe('consent');
    expect(q.get('login_hint')).toBe('ada@example.com');
    expect(expiresAt.getTime() - before).toBeGreaterThanOrEqual(600_000 - 50);
    expect(expiresAt.getTime() - before).toBeLessThanOrEqual(600_000 + 1000);
  });

  it('completes: exchanges the code, reads the email, stores the account encrypted', async () => {
    const { auth, store, googleFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('google', {
      ...OWNER,
      metadata: { team: 'sales' },
      returnTo: '/settings/mail',
    });
    const callback = googleFake.approve(url, { email: 'ada@example.com' });
    const done = await auth.completeAuthorization('google', callback, OWNER);
    expect(done.created).toBe(true);
    expect(done.returnTo).toBe('/settings/mail');
    expect(done.account).toMatchObject({
      provider: 'google',
      owner: 'user-1',
      email: 'ada@example.com',
      status: 'active',
      metadata: { team: 'sales' },
    });
    expect(done.account.scopes).toEqual(['openid', 'email', 'https://mail.google.com/']);
    const { tokens } = await auth.persistence.load(done.account.id);
    expect(tokens?.accessToken).toMatch(/^ya29\./);
    expect(tokens?.refreshToken).toMatch(/^1\/\//);
    const raw = JSON.stringify(await store.getAccount(done.account.id));
    expect(raw).not.toContain(tokens?.accessToken);
    expect(raw).not.toContain(tokens?.refreshToken);
    expect(googleFake.stats.codeExchanges).toBe(1);
  });

  it('accepts the callback as URL, string, URLSearchParams, GET Request and form_post Request', async () => {
    const { auth, googleFake } = setupAuth(server);
    const variants = [
      (u: URL) => u,
      (u: URL) => u.href,
      (u: URL) => u.searchParams,
      (u: URL) => new Request(u.href.replace('https://app.example.com', 'http://internal:3000')),
      (u: URL) =>
        new Request('http://internal:3000/oauth/google/callback', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: u.searchParams.toString(),
        }),
    ];
    for (const [i, toInput] of variants.entries()) {
      const { url } = await auth.startAuthorization('google', OWNER);
      const callback = googleFake.approve(url, { email: `user${i}@example.com` });
      const { account } = await auth.completeAuthorization('google', toInput(callback), OWNER);
      expect(account.email).toBe(`user${i}@example.com`);
    }
  });

  it('takes a state exactly once: a replayed callback is refused and stores nothing new', async () => {
    const { auth, store, googleFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('google', OWNER);
    const callback = googleFake.approve(url, { email: 'ada@example.com' });
    await auth.completeAuthorization('google', callback, OWNER);
    const before = await store.listAccounts();
    await expect(auth.completeAuthorization('google', callback, OWNER)).rejects.toMatchObject({
      code: 'ERR_INVALID_STATE',
      reason: 'not_found',
    });
    expect(await store.listAccounts()).toEqual(before);
    expect(googleFake.stats.codeExchanges).toBe(1);
  });

  it('refuses a missing, malformed, forged or expired state', async () => {
    let now = Date.now();
    const { auth, store, googleFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('google', OWNER);
    const callback = googleFake.approve(url, { email: 'ada@example.com' });
    const withState = (state: string | null) => {
      const u = new URL(callback);
      if (state === null) u.searchParams.delete('state');
      else u.searchParams.set('state', state);
      return u;
    };
    const cases: [URL, string][] = [
      [withState(null), 'missing'],
      [withState(''), 'missing'],
      [withState('short'), 'malformed'],
      [withState(`${'x'.repeat(42)}!`), 'malformed'],
      [withState('A'.repeat(43)), 'not_found'],
    ];
    for (const [input, reason] of cases) {
      const err = await auth.completeAuthorization('google', input, OWNER).catch((e) => e);
      expect(err).toBeInstanceOf(InvalidStateError);
      expect(err.reason).toBe(reason);
    }
    await expectNothingStored(store);
    // Expiry: a flow whose clock is 11 minutes later.
    const later = setupAuth(server);
    const started = await later.auth.startAuthorization('google', OWNER);
    const cb = later.googleFake.approve(started.url, { email: 'ada@example.com' });
    now = started.expiresAt.getTime() + 1;
    const { createMailboxAuth } = await import('../../src/index.js');
    const expiredAuth = createMailboxAuth({
      providers: later.auth.registry,
      store: later.store,
      cipher: later.cipher,
      now: () => now,
    });
    await expect(expiredAuth.completeAuthorization('google', cb, OWNER)).rejects.toMatchObject({
      reason: 'not_found',
    });
  });

  it("refuses another owner's or another provider's state", async () => {
    const { auth, store, googleFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('google', OWNER);
    const callback = googleFake.approve(url, { email: 'ada@example.com' });
    await expect(auth.completeAuthorization('google', callback, { owner: 'attacker' })).rejects.toMatchObject(
      {
        reason: 'owner_mismatch',
      },
    );
    const second = await auth.startAuthorization('google', OWNER);
    const cb2 = googleFake.approve(second.url, { email: 'ada@example.com' });
    await expect(auth.completeAuthorization('microsoft', cb2, OWNER)).rejects.toMatchObject({
      reason: 'provider_mismatch',
    });
    await expectNothingStored(store);
    expect(googleFake.stats.codeExchanges).toBe(0);
  });

  it('maps provider errors in the callback', async () => {
    const { auth, store, googleFake } = setupAuth(server);
    const denied = await auth.startAuthorization('google', OWNER);
    await expect(
      auth.completeAuthorization('google', googleFake.deny(denied.url), OWNER),
    ).rejects.toBeInstanceOf(AuthorizationDeniedError);
    for (const error of ['invalid_scope', 'server_error']) {
      const started = await auth.startAuthorization('google', OWNER);
      const err = await auth
        .completeAuthorization('google', googleFake.deny(started.url, error), OWNER)
        .catch((e) => e);
      expect(err).toBeInstanceOf(AuthorizationResponseError);
      expect(err.oauthError).toBe(error);
    }
    const noCode = await auth.startAuthorization('google', OWNER);
    const cb = googleFake.approve(noCode.url, { email: 'ada@example.com' });
    cb.searchParams.delete('code');
    await expect(auth.completeAuthorization('google', cb, OWNER)).rejects.toBeInstanceOf(
      AuthorizationResponseError,
    );
    await expectNothingStored(store);
  });

  it('refuses a mismatched iss, oversized or repeated parameters', async () => {
    const { auth, store, googleFake } = setupAuth(server);
    const started = await auth.startAuthorization('google', OWNER);
    const wrongIss = googleFake.approve(started.url, {
      email: 'ada@example.com',
      callbackIss: 'https://evil.example.com',
    });
    await expect(auth.completeAuthorization('google', wrongIss, OWNER)).rejects.toBeInstanceOf(
      AuthorizationResponseError,
    );
    const another = await auth.startAuthorization('google', OWNER);
    const big = googleFake.approve(another.url, { email: 'ada@example.com' });
    big.searchParams.set('code', 'x'.repeat(5000));
    await expect(auth.completeAuthorization('google', big, OWNER)).rejects.toBeInstanceOf(
      AuthorizationResponseError,
    );
    const huge = new URL(big);
    huge.searchParams.set('code', 'c');
    for (let i = 0; i < 10; i++) huge.searchParams.set(`junk${i}`, 'y'.repeat(4000));
    await expect(auth.completeAuthorization('google', huge, OWNER)).rejects.toBeInstanceOf(
      AuthorizationResponseError,
    );
    const repeated = new URL(big);
    repeated.searchParams.set('code', 'c');
    repeated.searchParams.append('code', 'd');
    await expect(auth.completeAuthorization('google', repeated, OWNER)).rejects.toBeInstanceOf(
      AuthorizationResponseError,
    );
    // The oversized callbacks did not consume the state: the real callback still works.
    const good = googleFake.approve(another.url, { email: 'ada@example.com' });
    expect((await auth.completeAuthorization('google', good, OWNER)).account.email).toBe('ada@example.com');
    expect((await store.listAccounts()).records).toHaveLength(1);
  });

  it.each([
    [
      '4xx invalid_grant',
      { status: 400, body: { error: 'invalid_grant', error_description: 'Bad Request' } },
      'invalid_grant',
    ],
    ['5xx', { status: 500, body: { error: 'internal_failure' } }, undefined],
    ['an HTML page', { status: 502, body: '<html><body>Bad Gateway</body></html>' }, undefined],
    ['HTML with 200', { status: 200, body: '<html>login</html>' }, undefined],
    ['truncated JSON', { status: 200, body: { truncated: true } }, undefined],
    ['no access_token', { status: 200, body: { token_type: 'Bearer', expires_in: 3600 } }, undefined],
  ] as const)(
    'turns a token endpoint answering %s into TokenExchangeError and stores nothing',
    async (_name, fault, oauthError) => {
      const { auth, store, googleFake } = setupAuth(server);
      const { url } = await auth.startAuthorization('google', OWNER);
      const callback = googleFake.approve(url, { email: 'ada@example.com' });
      if (_name === 'truncated JSON') {
        server.use(
          http.post(
            'https://oauth2.googleapis.com/token',
            () =>
              new HttpResponse('{"access_token":"ya29.abc","expires_in":35', {
                status: 200,
                headers: { 'content-type': 'application/json' },
              }),
          ),
        );
      } else {
        googleFake.failNext(fault);
      }
      const err = await auth.completeAuthorization('google', callback, OWNER).catch((e) => e);
      expect(err).toBeInstanceOf(TokenExchangeError);
      expect(err.oauthError).toBe(oauthError);
      expect(inspect(err)).not.toContain(callback.searchParams.get('code'));
      expect(JSON.stringify(err)).not.toContain(callback.searchParams.get('code'));
      await expectNothingStored(store);
    },
  );

  it('reports a rejected client as a ConfigurationError', async () => {
    const { auth, googleFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('google', OWNER);
    googleFake.failNext({
      status: 401,
      body: { error: 'invalid_client', error_description: 'The OAuth client was not found.' },
    });
    await expect(
      auth.completeAuthorization('google', googleFake.approve(url, { email: 'a@example.com' }), OWNER),
    ).rejects.toBeInstanceOf(ConfigurationError);
  });

  it.each([
    ['a bad signature', { badSignature: true }],
    ['a wrong audience', { aud: 'someone-else' }],
    ['a wrong nonce', { nonce: 'not-the-nonce' }],
    ['an expiry in the past', { expiresInS: -600 }],
    ['a wrong issuer', { iss: 'https://accounts.evil.example' }],
  ])('refuses an id_token with %s', async (_name, tweaks) => {
    const { auth, store, googleFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('google', OWNER);
    const err = await auth
      .completeAuthorization(
        'google',
        googleFake.approve(url, { email: 'ada@example.com', ...tweaks }),
        OWNER,
      )
      .catch((e) => e);
    expect(err).toBeInstanceOf(TokenExchangeError);
    await expectNothingStored(store);
  });

  it('reads the email from userinfo when the id_token has none', async () => {
    const { auth, googleFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('google', OWNER);
    const done = await auth.completeAuthorization(
      'google',
      googleFake.approve(url, { email: 'hidden@example.com', omitEmail: true }),
      OWNER,
    );
    expect(done.account.email).toBe('hidden@example.com');
  });

  it('explains a missing refresh token on first connect, and keeps the stored one on reconnect', async () => {
    const { auth, store, googleFake } = setupAuth(server);
    const first = await auth.startAuthorization('google', OWNER);
    const err = await auth
      .completeAuthorization(
        'google',
        googleFake.approve(first.url, { email: 'ada@example.com', withoutRefreshToken: true }),
        OWNER,
      )
      .catch((e) => e);
    expect(err).toBeInstanceOf(TokenExchangeError);
    expect(err.message).toMatch(/offline access/);
    await expectNothingStored(store);

    const second = await auth.startAuthorization('google', OWNER);
    const connected = await auth.completeAuthorization(
      'google',
      googleFake.approve(second.url, { email: 'ada@example.com' }),
      OWNER,
    );
    const refresh = (await auth.persistence.load(connected.account.id)).tokens?.refreshToken;
    const third = await auth.startAuthorization('google', OWNER);
    const again = await auth.completeAuthorization(
      'google',
      googleFake.approve(third.url, { email: 'ADA@example.com', withoutRefreshToken: true }),
      OWNER,
    );
    expect(again.created).toBe(false);
    expect(again.account.id).toBe(connected.account.id);
    expect((await auth.persistence.load(connected.account.id)).tokens?.refreshToken).toBe(refresh);
  });

  it('reconnecting the same mailbox updates the same account', async () => {
    const { auth, store, googleFake } = setupAuth(server);
    const a = await auth.startAuthorization('google', OWNER);
    const first = await auth.completeAuthorization(
      'google',
      googleFake.approve(a.url, { email: 'ada@example.com' }),
      OWNER,
    );
    await auth.persistence.recordFailure(
      first.account.id,
      { code: 'ERR_REAUTHORIZATION_REQUIRED', message: 'revoked' },
      { status: 'reauth_required' },
    );
    const b = await auth.startAuthorization('google', OWNER);
    const second = await auth.completeAuthorization(
      'google',
      googleFake.approve(b.url, { email: 'ada@example.com' }),
      OWNER,
    );
    expect(second.created).toBe(false);
    expect(second.account.id).toBe(first.account.id);
    expect(second.account.status).toBe('active');
    expect((await store.listAccounts()).records).toHaveLength(1);
    // Another owner connecting the same address gets an account of their own.
    const c = await auth.startAuthorization('google', { owner: 'user-2' });
    const other = await auth.completeAuthorization(
      'google',
      googleFake.approve(c.url, { email: 'ada@example.com' }),
      { owner: 'user-2' },
    );
    expect(other.account.id).not.toBe(first.account.id);
  });

  it('bounds pending authorizations per owner (a flood drops the oldest)', async () => {
    const { auth, googleFake } = setupAuth(server, { maxPendingPerOwner: 3 });
    const started = [];
    for (let i = 0; i < 50; i++) started.push(await auth.startAuthorization('google', OWNER));
    const oldest = started[0];
    const newest = started[49];
    if (!oldest || !newest) throw new Error('setup');
    await expect(
      auth.completeAuthorization('google', googleFake.approve(oldest.url, { email: 'a@example.com' }), OWNER),
    ).rejects.toMatchObject({ reason: 'not_found' });
    const ok = await auth.completeAuthorization(
      'google',
      googleFake.approve(newest.url, { email: 'a@example.com' }),
      OWNER,
    );
    expect(ok.account.email).toBe('a@example.com');
  });

  it('validates start arguments', async () => {
    const { auth } = setupAuth(server);
    await expect(auth.startAuthorization('gmail', OWNER)).rejects.toBeInstanceOf(UnknownProviderError);
    for (const bad of [
      { owner: '' },
      { owner: 'u', scopes: ['a b'] },
      { owner: 'u', loginHint: '' },
      { owner: 'u', metadata: [] as never },
      { owner: 'u', returnTo: '//evil.example.com/x' },
      { owner: 'u', returnTo: 'https://evil.example.com/x' },
      { owner: 'u', returnTo: 'javascript:alert(1)' },
      // URL parsers drop tabs and newlines and read `\` as `/`: each of these resolves to evil.example.com.
      { owner: 'u', returnTo: '/\t/evil.example.com/x' },
      { owner: 'u', returnTo: '/\n/evil.example.com/x' },
      { owner: 'u', returnTo: '/\\evil.example.com/x' },
      { owner: 'u', returnTo: '\\\\evil.example.com/x' },
      { owner: 'u', returnTo: '/ok\u0000' },
    ]) {
      if (bad.returnTo?.startsWith('/') && bad.returnTo.length > 2 && bad.returnTo !== '/ok\u0000')
        expect(new URL(bad.returnTo, 'https://app.example.com').origin).toBe('https://evil.example.com');
      await expect(auth.startAuthorization('google', bad)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    const ok = await auth.startAuthorization('google', {
      owner: 'u',
      returnTo: 'https://app.example.com/done',
    });
    await expect(
      auth.startAuthorization('google', { owner: 'u', returnTo: '/settings/mail?tab=1#top' }),
    ).resolves.toMatchObject({ state: expect.any(String) });
    expect(ok.state).toHaveLength(43);
    await expect(auth.completeAuthorization('google', 'not a url', OWNER)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(auth.completeAuthorization('google', 42 as never, OWNER)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it('disconnects: revokes at Google and deletes locally', async () => {
    const { auth, store, googleFake, account } = await connectAda();
    const refresh = (await auth.persistence.load(account.id)).tokens?.refreshToken as string;
    expect(googleFake.isRefreshTokenValid(refresh)).toBe(true);
    const result = await auth.disconnect(account.id);
    expect(result).toEqual({
      accountId: account.id,
      revoked: true,
      revocationError: undefined,
      deleted: true,
    });
    expect(googleFake.isRefreshTokenValid(refresh)).toBe(false);
    expect(await store.getAccount(account.id)).toBeNull();
    await expect(auth.disconnect(account.id)).rejects.toMatchObject({ code: 'ERR_ACCOUNT_NOT_FOUND' });
  });

  it('still deletes locally when revocation fails, and reports it', async () => {
    const { auth, store, account } = await connectAda();
    server.use(
      http.post(
        'https://oauth2.googleapis.com/revoke',
        () => new HttpResponse('<html>503</html>', { status: 503 }),
      ),
    );
    const result = await auth.disconnect(account.id);
    expect(result.revoked).toBe(false);
    expect(result.deleted).toBe(true);
    expect(result.revocationError?.code).toBe('ERR_PROVIDER_UNAVAILABLE');
    expect(await store.getAccount(account.id)).toBeNull();
  });

  it('turns state store failures into StorageError and a tampered stored state into InvalidStateError', async () => {
    const { auth, store, googleFake, cipher } = setupAuth(server);
    const { createMailboxAuth } = await import('../../src/index.js');
    const failing = Object.assign(Object.create(store), {
      putState: async () => {
        throw new Error('connection reset');
      },
      takeState: async () => {
        throw new Error('connection reset');
      },
    });
    const broken = createMailboxAuth({ providers: auth.registry, store: failing, cipher });
    await expect(broken.startAuthorization('google', OWNER)).rejects.toMatchObject({
      code: 'ERR_STORAGE',
      operation: 'putState',
    });
    const { url } = await auth.startAuthorization('google', OWNER);
    const callback = googleFake.approve(url, { email: 'ada@example.com' });
    await expect(broken.completeAuthorization('google', callback, OWNER)).rejects.toMatchObject({
      code: 'ERR_STORAGE',
      operation: 'takeState',
    });
    // A stored payload that does not decrypt (tampered, or another key) is refused, not trusted.
    const tampering = Object.assign(Object.create(store), {
      takeState: async (key: string) => {
        const state = await store.takeState(key);
        return state === null ? null : { ...state, payload: `${state.payload.slice(0, -4)}AAAA` };
      },
    });
    const second = await auth.startAuthorization('google', OWNER);
    const tampered = createMailboxAuth({ providers: auth.registry, store: tampering, cipher });
    await expect(
      tampered.completeAuthorization(
        'google',
        googleFake.approve(second.url, { email: 'ada@example.com' }),
        OWNER,
      ),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_STATE', reason: 'malformed' });
    await expectNothingStored(store);
  });

  it('disconnect still deletes an account whose provider is no longer configured', async () => {
    const { store, cipher, account } = await connectAda();
    const { createMailboxAuth, microsoft } = await import('../../src/index.js');
    const withoutGoogle = createMailboxAuth({
      providers: [microsoft({ clientId: 'x', redirectUri: 'https://app.example.com/cb' })],
      store,
      cipher,
    });
    const result = await withoutGoogle.disconnect(account.id);
    expect(result.deleted).toBe(true);
    expect(result.revoked).toBe(false);
    expect(result.revocationError?.code).toBe('ERR_UNKNOWN_PROVIDER');
  });
});

describe('email_verified', () => {
  it('an id_token that says email_verified: false is not taken as the mailbox identity', async () => {
    const { auth, store, googleFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('google', OWNER);
    const callback = googleFake.approve(url, { email: 'victim@example.com', emailVerified: false });
    const err = await auth.completeAuthorization('google', callback, OWNER).catch((e: unknown) => e);
    expect(isMailboxAuthError(err, 'ERR_TOKEN_EXCHANGE_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/not verified/);
    expect((await store.listAccounts()).records).toHaveLength(0);
  });

  it('Microsoft: an unverified email claim gives way to the sign-in name (preferred_username)', async () => {
    const { auth, microsoftFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('microsoft', OWNER);
    const callback = microsoftFake.approve(url, { email: 'grace@contoso.com', emailVerified: false });
    const { account } = await auth.completeAuthorization('microsoft', callback, OWNER);
    expect(account.email).toBe('grace@contoso.com');
  });
});

describe('maxPendingTotal', () => {
  it('bounds pending authorizations across owners: the oldest start is dropped, later ones complete', async () => {
    const { auth, googleFake } = setupAuth(server, { maxPendingPerOwner: 2, maxPendingTotal: 3 });
    const started = [];
    for (let i = 0; i < 4; i++)
      started.push(await auth.startAuthorization('google', { owner: `owner-${i}` }));
    const first = googleFake.approve((started[0] as { url: URL }).url, { email: 'a0@example.com' });
    const dropped = await auth
      .completeAuthorization('google', first, { owner: 'owner-0' })
      .catch((e: unknown) => e);
    expect(isMailboxAuthError(dropped, 'ERR_INVALID_STATE')).toBe(true);
    const last = googleFake.approve((started[3] as { url: URL }).url, { email: 'a3@example.com' });
    const { account } = await auth.completeAuthorization('google', last, { owner: 'owner-3' });
    expect(account.email).toBe('a3@example.com');
  });

  it('is refused at construction when below maxPendingPerOwner or not an integer', () => {
    for (const maxPendingTotal of [1, 2.5, 10_000_001]) {
      expect(() => setupAuth(server, { maxPendingPerOwner: 2, maxPendingTotal })).toThrow(ConfigurationError);
    }
  });
});
