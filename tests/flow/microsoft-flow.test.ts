import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import {
  AuthorizationResponseError,
  ConfigurationError,
  microsoft,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  TokenExchangeError,
  TokenRefreshError,
} from '../../src/index.js';
import { fakeMicrosoft } from '../../src/testing/index.js';
import { CLIENT, MS_REDIRECT, mswServer, setupAuth } from '../support/flow.js';

const server = mswServer();
const OWNER = { owner: 'user-1' };
const CONTOSO = '72f988bf-86f1-41af-91ab-2d7cd011db47';

describe('Microsoft authorization flow', () => {
  it('discovers the multi-tenant authority once, even under concurrent first use', async () => {
    const { auth, microsoftFake } = setupAuth(server);
    const started = await Promise.all(
      Array.from({ length: 8 }, () => auth.startAuthorization('microsoft', OWNER)),
    );
    expect(microsoftFake.stats.discoveryRequests).toBe(1);
    const url = started[0]?.url as URL;
    expect(url.origin + url.pathname).toBe('https://login.microsoftonline.com/common/oauth2/v2.0/authorize');
    expect(url.searchParams.get('scope')?.split(' ')[0]).toBe(
      'https://outlook.office.com/IMAP.AccessAsUser.All',
    );
    expect(url.searchParams.get('scope')).toContain('offline_access');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
  });

  it("accepts an id_token whose iss carries the user's tenant", async () => {
    const { auth, microsoftFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('microsoft', OWNER);
    const callback = microsoftFake.approve(url, { email: 'grace@contoso.com', tenantId: CONTOSO });
    const { account } = await auth.completeAuthorization('microsoft', callback, OWNER);
    expect(account.email).toBe('grace@contoso.com');
    expect(account.provider).toBe('microsoft');
  });

  it.each(['common', 'organizations'])(
    "%s authority: a callback's iss for the user's own tenant is accepted, any other refused as ERR_AUTHORIZATION_RESPONSE_INVALID",
    async (tenant) => {
      const { auth, store, microsoftFake } = setupAuth(server, { tenant });
      const tenantIss = `https://login.microsoftonline.com/${CONTOSO}/v2.0`;
      const start = () => auth.startAuthorization('microsoft', OWNER);
      // The tenant's own, correct iss (RFC 9207, as Entra sends it).
      const ok = microsoftFake.approve((await start()).url, {
        email: 'grace@contoso.com',
        tenantId: CONTOSO,
        callbackIss: tenantIss,
      });
      const { account } = await auth.completeAuthorization('microsoft', ok, OWNER);
      expect(account.email).toBe('grace@contoso.com');
      // Another tenant's issuer than the id_token's tid, a foreign issuer, the template itself, a non-GUID.
      for (const callbackIss of [
        'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0',
        'https://evil.example.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
        'https://login.microsoftonline.com/{tenantid}/v2.0',
        'https://login.microsoftonline.com/contoso.com/v2.0',
        `${tenantIss}/extra`,
      ]) {
        const bad = microsoftFake.approve((await start()).url, {
          email: 'mallory@contoso.com',
          tenantId: CONTOSO,
          callbackIss,
        });
        const err = await auth.completeAuthorization('microsoft', bad, OWNER).catch((e: unknown) => e);
        expect(err, callbackIss).toBeInstanceOf(AuthorizationResponseError);
        expect((err as AuthorizationResponseError).code).toBe('ERR_AUTHORIZATION_RESPONSE_INVALID');
      }
      expect((await store.listAccounts()).records.map((r) => r.email)).toEqual(['grace@contoso.com']);
    },
  );

  it('a single-tenant authority takes only its own issuer in the callback', async () => {
    const { auth, microsoftFake } = setupAuth(server, { tenant: CONTOSO });
    const issuer = `https://login.microsoftonline.com/${CONTOSO}/v2.0`;
    const ok = microsoftFake.approve((await auth.startAuthorization('microsoft', OWNER)).url, {
      email: 'grace@contoso.com',
      tenantId: CONTOSO,
      callbackIss: issuer,
    });
    await expect(auth.completeAuthorization('microsoft', ok, OWNER)).resolves.toBeDefined();
    const bad = microsoftFake.approve((await auth.startAuthorization('microsoft', OWNER)).url, {
      email: 'grace@contoso.com',
      tenantId: CONTOSO,
      callbackIss: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0',
    });
    await expect(auth.completeAuthorization('microsoft', bad, OWNER)).rejects.toBeInstanceOf(
      AuthorizationResponseError,
    );
  });

  it('refuses an id_token whose iss names another tenant than its tid', async () => {
    const { auth, store, microsoftFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('microsoft', OWNER);
    const callback = microsoftFake.approve(url, {
      email: 'grace@contoso.com',
      tenantId: CONTOSO,
      iss: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0',
    });
    await expect(auth.completeAuthorization('microsoft', callback, OWNER)).rejects.toBeInstanceOf(
      TokenExchangeError,
    );
    expect((await store.listAccounts()).records).toHaveLength(0);
  });

  it('reads preferred_username when there is no email claim, and fails clearly with neither', async () => {
    const { auth, microsoftFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('microsoft', OWNER);
    const err = await auth
      .completeAuthorization(
        'microsoft',
        microsoftFake.approve(url, { email: 'x@contoso.com', omitEmail: true }),
        OWNER,
      )
      .catch((e) => e);
    expect(err).toBeInstanceOf(TokenExchangeError);
    expect(err.message).toMatch(/no email address/);
  });

  it('works with a single-tenant authority', async () => {
    const { auth, microsoftFake } = setupAuth(server, { tenant: CONTOSO });
    const { url } = await auth.startAuthorization('microsoft', OWNER);
    expect(url.pathname).toBe(`/${CONTOSO}/oauth2/v2.0/authorize`);
    const { account } = await auth.completeAuthorization(
      'microsoft',
      microsoftFake.approve(url, { email: 'grace@contoso.com', tenantId: CONTOSO }),
      OWNER,
    );
    expect(account.email).toBe('grace@contoso.com');
  });

  it('does not cache a failed discovery: the next use retries', async () => {
    const { auth, microsoftFake } = setupAuth(server);
    server.use(
      http.get(
        'https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration',
        () => HttpResponse.json({ error: 'temporarily_unavailable' }, { status: 503 }),
        { once: true },
      ),
    );
    await expect(auth.startAuthorization('microsoft', OWNER)).rejects.toBeInstanceOf(
      ProviderUnavailableError,
    );
    const { url } = await auth.startAuthorization('microsoft', OWNER);
    expect(url.hostname).toBe('login.microsoftonline.com');
    expect(microsoftFake.stats.discoveryRequests).toBe(1);
  });

  it('reports discovery of a wrong issuer as a ConfigurationError', async () => {
    setupAuth(server);
    server.use(
      http.get('https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration', () =>
        HttpResponse.json({
          issuer: 'https://evil.example.com',
          authorization_endpoint: 'https://evil.example.com/a',
          token_endpoint: 'https://evil.example.com/t',
        }),
      ),
    );
    const provider = microsoft({ ...CLIENT, redirectUri: MS_REDIRECT, tenant: 'organizations' });
    await expect(provider.authorizationUrl({ state: 's', codeChallenge: 'c' })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
  });

  it('rotates refresh tokens; the old one is then invalid_grant → ReauthorizationRequiredError', async () => {
    const { auth, microsoftFake } = setupAuth(server);
    const { url } = await auth.startAuthorization('microsoft', OWNER);
    const { account } = await auth.completeAuthorization(
      'microsoft',
      microsoftFake.approve(url, { email: 'grace@contoso.com' }),
      OWNER,
    );
    const provider = auth.registry.get('microsoft');
    const old = (await auth.persistence.load(account.id)).tokens?.refreshToken as string;
    const refreshed = await provider.refresh(old);
    expect(refreshed.tokens.refreshToken).not.toBeNull();
    expect(refreshed.tokens.refreshToken).not.toBe(old);
    expect(refreshed.tokens.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 3000_000);
    const err = await provider.refresh(old).catch((e) => e);
    expect(err).toBeInstanceOf(ReauthorizationRequiredError);
    expect(err.providerId).toBe('microsoft');
    expect(JSON.stringify(err)).not.toContain(old);
  });

  it('asks for another resource with a scoped refresh', async () => {
    const { auth, microsoftFake } = setupAuth(server);
    // The consent must cover the other resource (else Microsoft answers invalid_grant, AADSTS65001).
    const { url } = await auth.startAuthorization('microsoft', {
      ...OWNER,
      scopes: ['https://graph.microsoft.com/Mail.Read'],
    });
    const { account } = await auth.completeAuthorization(
      'microsoft',
      microsoftFake.approve(url, { email: 'g@contoso.com' }),
      OWNER,
    );
    const rt = (await auth.persistence.load(account.id)).tokens?.refreshToken as string;
    const graph = await auth.registry
      .get('microsoft')
      .refresh(rt, { scopes: ['https://graph.microsoft.com/Mail.Read'] });
    expect(graph.scopes).toEqual(['https://graph.microsoft.com/Mail.Read']);
    const other = await auth.registry
      .get('microsoft')
      .refresh(graph.tokens.refreshToken as string, {
        scopes: ['https://graph.microsoft.com/Calendars.Read'],
      })
      .catch((e: unknown) => e);
    expect(other).toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED' });
  });
});

describe('refresh error classification', () => {
  function connected() {
    const fake = fakeMicrosoft({ ...CLIENT, rotateRefreshTokens: false });
    server.use(...fake.handlers());
    const provider = microsoft({ ...CLIENT, redirectUri: MS_REDIRECT, timeoutMs: 1000 });
    return { fake, provider };
  }

  it.each([
    [
      '503 with Retry-After seconds',
      { status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '7' } },
      TokenRefreshError,
      7000,
    ],
    [
      '429 without Retry-After',
      { status: 429, body: { error: 'too_many_requests' } },
      TokenRefreshError,
      undefined,
    ],
    ['502 HTML', { status: 502, body: '<html>Bad gateway</html>' }, TokenRefreshError, undefined],
    ['500 JSON', { status: 500, body: { error: 'server_error' } }, TokenRefreshError, undefined],
    ['200 HTML', { status: 200, body: '<html>captive portal</html>' }, TokenRefreshError, undefined],
    [
      '400 invalid_grant',
      { status: 400, body: { error: 'invalid_grant', error_description: 'AADSTS70008' } },
      ReauthorizationRequiredError,
      undefined,
    ],
    ['401 invalid_client', { status: 401, body: { error: 'invalid_client' } }, ConfigurationError, undefined],
    [
      '400 unauthorized_client',
      { status: 400, body: { error: 'unauthorized_client' } },
      ConfigurationError,
      undefined,
    ],
  ] as const)('%s', async (_name, fault, type, retryAfterMs) => {
    const { fake, provider } = connected();
    fake.failNext(fault);
    const err = await provider.refresh('M.C-any-refresh-token').catch((e) => e);
    expect(err).toBeInstanceOf(type);
    if (type === TokenRefreshError) {
      expect(err.retryable).toBe(true);
      expect(err.retryAfterMs).toBe(retryAfterMs);
    }
    expect(JSON.stringify(err)).not.toContain('M.C-any-refresh-token');
  });

  it('a network failure is transient', async () => {
    const { fake, provider } = connected();
    fake.failNext('network');
    await expect(provider.refresh('M.C-x')).rejects.toBeInstanceOf(TokenRefreshError);
  });

  it('a timeout is transient', async () => {
    const { fake, provider } = connected();
    fake.failNext({ delayMs: 1500 });
    const err = await provider.refresh('M.C-x').catch((e) => e);
    expect(err).toBeInstanceOf(TokenRefreshError);
    expect(err.message).toMatch(/timeout/);
  });

  it('honours an AbortSignal', async () => {
    const { fake, provider } = connected();
    fake.failNext({ delayMs: 2000 });
    const controller = new AbortController();
    const reason = new Error('shutting down');
    setTimeout(() => controller.abort(reason), 50);
    await expect(provider.refresh('M.C-x', { signal: controller.signal })).rejects.toBe(reason);
    await expect(provider.refresh('M.C-x', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });
});
