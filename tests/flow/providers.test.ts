import { randomBytes } from 'node:crypto';
import { delay, HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import {
  aesGcmCipher,
  buildReturnUrl,
  ConfigurationError,
  createMailboxAuth,
  definePreset,
  google,
  memoryStore,
  microsoft,
  type OAuth2Options,
  oauth2,
  oidc,
  ProviderRegistry,
  parseRetryAfter,
  StorageError,
  TokenExchangeError,
  UnknownProviderError,
  validateRedirectUris,
  yahoo,
} from '../../src/index.js';
import { CLIENT, mswServer } from '../support/flow.js';

const server = mswServer();
const MAIL = {
  imap: { host: 'imap.example.com', port: 993, secure: true },
  smtp: { host: 'smtp.example.com', port: 465, secure: true },
  sasl: 'XOAUTH2' as const,
};
const cipher = aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' });

describe('presets', () => {
  it('carry minimal mail scopes and the right mail servers', () => {
    const g = google({ ...CLIENT, redirectUri: 'https://a.example/cb' });
    expect(g.scopes).toEqual(['openid', 'email', 'https://mail.google.com/']);
    expect(g.mail).toEqual({
      imap: { host: 'imap.gmail.com', port: 993, secure: true },
      smtp: { host: 'smtp.gmail.com', port: 465, secure: true },
      sasl: 'XOAUTH2',
    });
    const m = microsoft({ ...CLIENT, redirectUri: 'https://a.example/cb', extraScopes: ['User.Read'] });
    expect(m.scopes).toContain('User.Read');
    expect(m.mail.smtp).toEqual({ host: 'smtp.office365.com', port: 587, secure: false });
    const y = yahoo({ ...CLIENT, redirectUri: 'https://a.example/cb' });
    expect(y.mail.sasl).toBe('OAUTHBEARER');
    const custom = google({
      ...CLIENT,
      redirectUri: 'https://a.example/cb',
      id: 'gmail-eu',
      displayName: 'Gmail (EU)',
      mail: { imap: { host: '127.0.0.1', port: 1993, secure: false } },
    });
    expect(custom.id).toBe('gmail-eu');
    expect(custom.mail.imap).toEqual({ host: '127.0.0.1', port: 1993, secure: false });
    expect(custom.mail.smtp.host).toBe('smtp.gmail.com');
  });

  it('build a Yahoo authorization URL from static metadata', async () => {
    const y = yahoo({ ...CLIENT, redirectUri: 'https://a.example/cb' });
    const url = await y.authorizationUrl({
      state: 's',
      codeChallenge: 'c',
      nonce: 'n',
      parameters: { prompt: 'login' },
    });
    expect(url.origin + url.pathname).toBe('https://api.login.yahoo.com/oauth2/request_auth');
    expect(url.searchParams.get('scope')).toBe('openid email mail-w');
    expect(url.searchParams.get('nonce')).toBe('n');
    expect(url.searchParams.get('prompt')).toBe('login');
  });

  it('validate their options with exact messages', async () => {
    const ok = { ...CLIENT, redirectUri: 'https://a.example/cb' };
    expect(() => google(undefined as never)).toThrow(
      'google: options must be an object with clientId and redirectUri',
    );
    expect(() => google({ ...ok, clientId: '' })).toThrow('google: clientId must be a non-empty string');
    expect(() => google({ ...ok, clientSecret: '' })).toThrow(
      'google: clientSecret must be a non-empty string when given',
    );
    expect(() => google({ ...ok, redirectUri: '/cb' })).toThrow(
      'google: redirectUri must be an absolute URL (got "/cb")',
    );
    expect(() => google({ ...ok, redirectUri: 'ftp://a/cb' })).toThrow(
      'google: redirectUri must use https: or http: (got ftp:)',
    );
    expect(() => google({ ...ok, redirectUri: 5 as never })).toThrow(ConfigurationError);
    expect(() => google({ ...ok, timeoutMs: 0 })).toThrow(
      'google: timeoutMs must be a positive number of milliseconds',
    );
    expect(() => google({ ...ok, extraScopes: ['a b'] })).toThrow(ConfigurationError);
    expect(() => google({ ...ok, fetch: 'no' as never })).toThrow('google: fetch must be a function');
    for (const name of [
      'code_challenge_method',
      'state',
      'nonce',
      'redirect_uri',
      'response_type',
      'scope',
      'request',
      'request_uri',
      'response_mode',
    ]) {
      expect(() => google({ ...ok, authorizationParameters: { [name]: 'x' } })).toThrow(
        `google: authorizationParameters cannot set ${name}`,
      );
    }
    expect(
      new URL(
        await google({ ...ok, authorizationParameters: { hd: 'contoso.com', prompt: 'select_account' } })
          .authorizationUrl({ state: 's', codeChallenge: 'c', nonce: 'n' })
          .then((u) => u.href),
      ).searchParams.get('hd'),
    ).toBe('contoso.com');
    await expect(
      google(ok).authorizationUrl({ state: 's', codeChallenge: 'c', parameters: { client_id: 'other' } }),
    ).rejects.toThrow('authorization parameters cannot set client_id (the library sets it)');
    expect(() =>
      definePreset(
        {
          id: 'custom',
          displayName: 'Custom',
          openid: false,
          server: {
            metadata: { issuer: 'https://c.example', authorization_endpoint: 'https://c.example/a' },
          },
          scopes: ['mail'],
          mail: MAIL,
          authorizationParameters: { request_uri: 'urn:x' },
        },
        ok,
      ),
    ).toThrow('custom: authorizationParameters cannot set request_uri');
    expect(() => microsoft({ ...ok, tenant: 'bad/tenant' })).toThrow(ConfigurationError);
    expect(() => oidc({ ...ok, issuer: 5 as never, mail: MAIL })).toThrow(
      'oidc: issuer must be a URL string',
    );
    expect(() => oidc({ ...ok, issuer: 'https://id.example', mail: {} as never })).toThrow(
      ConfigurationError,
    );
    /** A plain OAuth 2.0 server with static endpoints and no scopes, changed by `extra`. */
    const plain = (extra: Partial<OAuth2Options>) => () =>
      oauth2({
        ...ok,
        authorizationEndpoint: 'https://x/a',
        tokenEndpoint: 'https://x/t',
        scopes: [],
        mail: MAIL,
        ...extra,
      });
    expect(plain({})).toThrow(
      'oauth2: give identify() or userinfoEndpoint so the mailbox address can be read',
    );
    expect(() => oauth2({ ...ok, tokenEndpoint: 'https://x/t', scopes: [], mail: MAIL } as never)).toThrow(
      ConfigurationError,
    );
    expect(plain({ scopes: 'x' as never, userinfoEndpoint: 'https://x/me' })).toThrow(ConfigurationError);
  });

  it('never show the client secret', async () => {
    const { inspect } = await import('node:util');
    const g = google({ ...CLIENT, redirectUri: 'https://a.example/cb' });
    expect(inspect(g)).not.toContain(CLIENT.clientSecret);
    expect(JSON.stringify(g)).not.toContain(CLIENT.clientSecret);
  });
});

describe('oauth2 (plain OAuth 2.0, no id_token)', () => {
  it('connects with a userinfo endpoint, and revokes', async () => {
    let revoked = '';
    server.use(
      http.post('https://auth.corp.example/token', async ({ request }) => {
        const body = new URLSearchParams(await request.text());
        if (body.get('grant_type') !== 'authorization_code' || !body.get('code_verifier'))
          return HttpResponse.json({ error: 'invalid_request' }, { status: 400 });
        return HttpResponse.json({
          access_token: 'corp-at',
          refresh_token: 'corp-rt',
          token_type: 'bearer',
          expires_in: 600,
          scope: 'mail',
        });
      }),
      http.get('https://auth.corp.example/me', ({ request }) =>
        request.headers.get('authorization') === 'Bearer corp-at'
          ? HttpResponse.json({ email: 'joe@corp.example' })
          : HttpResponse.json({}, { status: 401 }),
      ),
      http.post('https://auth.corp.example/revoke', async ({ request }) => {
        revoked = new URLSearchParams(await request.text()).get('token') ?? '';
        return new HttpResponse(null, { status: 200 });
      }),
    );
    const provider = oauth2({
      ...CLIENT,
      id: 'corp',
      redirectUri: 'https://app.example.com/oauth/corp/callback',
      authorizationEndpoint: 'https://auth.corp.example/authorize',
      tokenEndpoint: 'https://auth.corp.example/token',
      revocationEndpoint: 'https://auth.corp.example/revoke',
      userinfoEndpoint: 'https://auth.corp.example/me',
      scopes: ['mail'],
      mail: MAIL,
    });
    const auth = createMailboxAuth({ providers: [provider], store: memoryStore(), cipher });
    const { url, state } = await auth.startAuthorization('corp', { owner: 'u' });
    expect(url.searchParams.get('nonce')).toBeNull();
    const cb = new URL(provider.redirectUri);
    cb.searchParams.set('code', 'the-code');
    cb.searchParams.set('state', state);
    const { account } = await auth.completeAuthorization('corp', cb, { owner: 'u' });
    expect(account.email).toBe('joe@corp.example');
    expect(account.scopes).toEqual(['mail']);
    const result = await auth.disconnect(account.id);
    expect(result.revoked).toBe(true);
    expect(revoked).toBe('corp-rt');
  });

  it('bounds the userinfo request by timeoutMs and refuses a plain-http userinfo endpoint', async () => {
    const corp = {
      ...CLIENT,
      id: 'corp',
      redirectUri: 'https://app.example.com/oauth/corp/callback',
      authorizationEndpoint: 'https://auth.corp.example/authorize',
      tokenEndpoint: 'https://auth.corp.example/token',
      scopes: ['mail'],
      mail: MAIL,
    };
    // The bearer token would travel in clear: refused at creation unless explicitly allowed (local tests).
    expect(() => oauth2({ ...corp, userinfoEndpoint: 'http://auth.corp.example/me' })).toThrow(
      'oauth2: userinfoEndpoint must be an https URL (http only with allowInsecureRequests, for local tests)',
    );
    expect(() =>
      oauth2({ ...corp, userinfoEndpoint: 'http://127.0.0.1:1/me', allowInsecureRequests: true }),
    ).not.toThrow();
    // A custom identify gets a fetch that refuses http too.
    const leaky = oauth2({
      ...corp,
      identify: async (result, { fetch }) => {
        await fetch('http://auth.corp.example/me', {
          headers: { authorization: `Bearer ${result.tokens.accessToken}` },
        });
        return { email: 'x@corp.example' };
      },
    });
    const hanging = oauth2({ ...corp, userinfoEndpoint: 'https://auth.corp.example/me', timeoutMs: 500 });
    server.use(
      http.post('https://auth.corp.example/token', () =>
        HttpResponse.json({ access_token: 'corp-at', token_type: 'bearer', expires_in: 600 }),
      ),
      http.get('https://auth.corp.example/me', async () => {
        await delay('infinite'); // accepts the request, never answers
        return HttpResponse.json({});
      }),
    );
    for (const [provider, expected] of [
      [leaky, 'ERR_CONFIGURATION'],
      [hanging, 'ERR_PROVIDER_UNAVAILABLE'], // transient: the user can try again
    ] as const) {
      const auth = createMailboxAuth({ providers: [provider], store: memoryStore(), cipher });
      const { state } = await auth.startAuthorization('corp', { owner: 'u' });
      const cb = new URL(provider.redirectUri);
      cb.searchParams.set('code', 'the-code');
      cb.searchParams.set('state', state);
      const started = Date.now();
      await expect(auth.completeAuthorization('corp', cb, { owner: 'u' })).rejects.toMatchObject({
        code: expected,
      });
      expect(Date.now() - started).toBeLessThan(5_000);
    }
  });

  it('fails clearly when the identity has no email', async () => {
    server.use(
      http.post('https://auth.corp.example/token', () =>
        HttpResponse.json({ access_token: 'a', refresh_token: 'r', token_type: 'bearer' }),
      ),
    );
    const provider = oauth2({
      ...CLIENT,
      redirectUri: 'https://app.example.com/cb',
      authorizationEndpoint: 'https://auth.corp.example/authorize',
      tokenEndpoint: 'https://auth.corp.example/token',
      scopes: ['mail'],
      mail: MAIL,
      identify: async () => ({ email: '' }),
    });
    const auth = createMailboxAuth({ providers: [provider], store: memoryStore(), cipher });
    const { state } = await auth.startAuthorization('oauth2', { owner: 'u' });
    const cb = new URL(provider.redirectUri);
    cb.search = new URLSearchParams({ code: 'c', state }).toString();
    await expect(auth.completeAuthorization('oauth2', cb, { owner: 'u' })).rejects.toBeInstanceOf(
      TokenExchangeError,
    );
    // No revocation endpoint: revoke says so.
    expect(await provider.revoke('r')).toBe(false);
  });
});

describe('ProviderRegistry', () => {
  it('registers instances and lazy factories, lists them, refuses duplicates and unknown keys', () => {
    let built = 0;
    const registry = new ProviderRegistry([google({ ...CLIENT, redirectUri: 'https://a.example/cb' })]);
    registry.register(
      'microsoft',
      () => {
        built++;
        return microsoft({ ...CLIENT, redirectUri: 'https://a.example/cb' });
      },
      { displayName: 'Microsoft 365' },
    );
    expect(registry.list()).toEqual([
      { id: 'google', displayName: 'Google' },
      { id: 'microsoft', displayName: 'Microsoft 365' },
    ]);
    expect(built).toBe(0);
    expect(registry.get('microsoft').id).toBe('microsoft');
    registry.get('microsoft');
    expect(built).toBe(1);
    expect(registry.has('google')).toBe(true);
    expect(() => registry.get('gmail')).toThrow(UnknownProviderError);
    expect(() => registry.register(google({ ...CLIENT, redirectUri: 'https://a.example/cb' }))).toThrow(
      'ProviderRegistry: a provider is already registered as "google"',
    );
    expect(() =>
      registry.register('bad id', () => google({ ...CLIENT, redirectUri: 'https://a.example/cb' })),
    ).toThrow(ConfigurationError);
    expect(() => registry.register('x', 'nope' as never)).toThrow(ConfigurationError);
    registry.register('wrong', () => google({ ...CLIENT, redirectUri: 'https://a.example/cb' }));
    expect(() => registry.get('wrong')).toThrow(
      'ProviderRegistry: the factory of "wrong" returned a provider with another id',
    );
  });
});

describe('redirect helpers', () => {
  const providers = (uri: string) => [google({ ...CLIENT, redirectUri: uri })];

  it('accept https on an allowed origin, and http on localhost outside production', () => {
    expect(() =>
      validateRedirectUris(providers('https://app.example.com/cb'), {
        allowedOrigins: ['https://app.example.com'],
      }),
    ).not.toThrow();
    expect(() =>
      validateRedirectUris(providers('http://localhost:3000/cb'), {
        allowedOrigins: ['http://localhost:3000'],
        production: false,
      }),
    ).not.toThrow();
  });

  it.each([
    [
      'an origin not allowed',
      'https://other.example.com/cb',
      ['https://app.example.com'],
      false,
      /not on an allowed origin/,
    ],
    [
      'plain http outside localhost',
      'http://app.example.com/cb',
      ['http://app.example.com'],
      false,
      /must use https outside localhost/,
    ],
    [
      'localhost in production',
      'http://localhost:3000/cb',
      ['http://localhost:3000'],
      true,
      /points at this machine in production/,
    ],
    [
      'a fragment',
      'https://app.example.com/cb#x',
      ['https://app.example.com'],
      false,
      /must not have a fragment/,
    ],
  ])('refuse %s at start-up', (_name, uri, origins, production, message) => {
    expect(() => validateRedirectUris(providers(uri), { allowedOrigins: origins, production })).toThrow(
      message,
    );
    expect(() =>
      createMailboxAuth({
        providers: providers(uri),
        store: memoryStore(),
        cipher,
        allowedOrigins: origins,
        production,
      }),
    ).toThrow(ConfigurationError);
  });

  it('refuse bad allowedOrigins', () => {
    expect(() => validateRedirectUris(providers('https://a.example/cb'), { allowedOrigins: [] })).toThrow(
      ConfigurationError,
    );
    expect(() =>
      validateRedirectUris(providers('https://a.example/cb'), { allowedOrigins: ['not a url'] }),
    ).toThrow(ConfigurationError);
  });

  it('build the frontend redirect with the outcome and only a stable code', () => {
    const ok = buildReturnUrl(
      '/settings/mail?tab=1',
      { status: 'success', provider: 'google', accountId: 'acc-1' },
      'https://app.example.com',
    );
    expect(ok.href).toBe(
      'https://app.example.com/settings/mail?tab=1&status=success&provider=google&account=acc-1',
    );
    const err = buildReturnUrl('https://app.example.com/s', {
      status: 'error',
      provider: 'google',
      error: new StorageError('db down with secret-ish detail'),
    });
    expect(err.searchParams.get('error')).toBe('ERR_STORAGE');
    expect(err.href).not.toContain('secret');
    const unknown = buildReturnUrl('https://app.example.com/s', {
      status: 'error',
      provider: 'google',
      error: new Error('boom'),
    });
    expect(unknown.searchParams.get('error')).toBe('ERR_UNEXPECTED');
  });
});

describe('createMailboxAuth', () => {
  it('validates its options', () => {
    expect(() => createMailboxAuth(undefined as never)).toThrow(ConfigurationError);
    expect(() => createMailboxAuth({ providers: 'google' as never, store: memoryStore(), cipher })).toThrow(
      'createMailboxAuth: providers must be an array of providers or a ProviderRegistry',
    );
    expect(() => createMailboxAuth({ providers: [], store: {} as never, cipher })).toThrow(
      ConfigurationError,
    );
    expect(() => createMailboxAuth({ providers: [], store: memoryStore(), cipher, stateTtlMs: 10 })).toThrow(
      ConfigurationError,
    );
    expect(() =>
      createMailboxAuth({ providers: [], store: memoryStore(), cipher, maxPendingPerOwner: 0 }),
    ).toThrow(ConfigurationError);
    const auth = createMailboxAuth({
      providers: [google({ ...CLIENT, redirectUri: 'https://a.example/cb' })],
      store: memoryStore(),
      cipher,
    });
    expect(auth.listProviders()).toEqual([{ id: 'google', displayName: 'Google' }]);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    expect(
      parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1)),
    ).toBe(30_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
  });
});
