/**
 * Emulated Google and Microsoft OAuth endpoints for msw, so hosts (and this library) can test routes that
 * connect mailboxes without network: discovery, JWKS, authorize (by calling `approve`), token (code and
 * refresh grants, PKCE checked, rotation), userinfo and revoke, with the providers' real error shapes and
 * faults on demand.
 * @module
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { HttpResponse, http, type RequestHandler } from 'msw';
import { answerFault, type HttpFault } from './faults.js';

/**
 * A fault the next token request answers with: an {@link HttpFault}, or a rewrite of the normal answer.
 *
 * @example
 * ```ts
 * fake.failNext({ status: 503, headers: { 'retry-after': '5' } }, 'network', { delayMs: 2_000 });
 * ```
 */
export type TokenFault =
  | HttpFault
  | {
      /**
       * Answer normally (a refresh token is rotated as usual), then replace a 200's JSON body with what this
       * returns: for the answers real providers send that do not validate (`token_type` missing, a string
       * `expires_in`, a garbled `id_token`).
       */
      readonly rewrite: (body: Record<string, unknown>) => Record<string, unknown>;
    };

/**
 * How `approve` builds the id_token (for negative tests).
 *
 * @example
 * ```ts
 * fake.approve(url, { email: 'a@example.com', badSignature: true }); // the flow must refuse it
 * ```
 */
export interface IdTokenTweaks {
  /** Use this audience instead of the client id. */
  readonly aud?: string;
  /** Use this nonce instead of the one in the authorization URL. */
  readonly nonce?: string;
  /** Use this issuer instead of the provider's. */
  readonly iss?: string;
  /** Seconds from now; negative for an expired token. */
  readonly expiresInS?: number;
  /** Sign with a key that is not in the JWKS. */
  readonly badSignature?: boolean;
  /** Leave out the email claims. */
  readonly omitEmail?: boolean;
  /** Send `email_verified` with this value (Google's and Yahoo's id_tokens say `true` by default). */
  readonly emailVerified?: boolean;
  /** Microsoft: the user's tenant id (`tid`, and `iss` for multi-tenant). */
  readonly tenantId?: string;
}

/**
 * Options of `approve`.
 *
 * @example
 * ```ts
 * fake.approve(url, { email: 'ada@example.com', withoutRefreshToken: true });
 * ```
 */
export interface ApproveOptions extends IdTokenTweaks {
  /** The signed-in user's address. */
  readonly email: string;
  /** Add `iss` to the callback (RFC 9207). */
  readonly callbackIss?: string;
  /** Issue no refresh token for this code. */
  readonly withoutRefreshToken?: boolean;
}

interface Grant {
  email: string;
  sub: string;
  scope: string;
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string | undefined;
  tweaks: IdTokenTweaks;
  withoutRefreshToken: boolean;
}

interface Profile {
  readonly kind: 'google' | 'microsoft';
  readonly issuer: string;
  readonly authorize: string;
  readonly token: string;
  readonly jwks: string;
  readonly revoke?: string;
  readonly userinfo?: string;
  readonly discovery?: string;
  readonly rotateRefreshTokens: boolean;
}

/**
 * Options of {@link fakeGoogle} and {@link fakeMicrosoft}.
 *
 * @example
 * ```ts
 * fakeMicrosoft({ clientId: 'c', clientSecret: 's', accessTokenTtlS: 60, rotateRefreshTokens: true });
 * ```
 */
export interface FakeProviderOptions {
  /** The client id the fake accepts. */
  readonly clientId: string;
  /** The client secret the fake accepts (omit to accept any). */
  readonly clientSecret?: string;
  /** Access token lifetime, in seconds. @default 3599 */
  readonly accessTokenTtlS?: number;
  /** Issue a new refresh token on every refresh and refuse reuse (Microsoft's default: true). */
  readonly rotateRefreshTokens?: boolean;
}

/**
 * Counters of what the fake saw.
 *
 * @example
 * ```ts
 * expect(fake.stats.refreshes).toBe(1);
 * ```
 */
export interface FakeProviderStats {
  /** Requests to the token endpoint (any grant, faults included). */
  tokenRequests: number;
  /** `authorization_code` grants. */
  codeExchanges: number;
  /** `refresh_token` grants. */
  refreshes: number;
  /** Requests to the revocation endpoint. */
  revocations: number;
  /** Requests for the discovery document. */
  discoveryRequests: number;
}

/** The scopes of the first resource named in `scope` (plus the unqualified ones, such as `openid`). */
function firstResource(scope: string): string {
  const scopes = scope.split(' ').filter(Boolean);
  const origin = /^(https?:\/\/[^/]+\/)/.exec(scopes.find((s) => /^https?:\/\//.test(s)) ?? '')?.[1];
  if (origin === undefined) return scopes.join(' ');
  return scopes.filter((s) => !/^https?:\/\//.test(s) || s.startsWith(origin)).join(' ');
}

function form(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return HttpResponse.json(body, { status, headers: { 'cache-control': 'no-store', ...headers } });
}

/**
 * An emulated OAuth provider for msw. Get one with {@link fakeGoogle} or {@link fakeMicrosoft}.
 *
 * @example
 * ```ts
 * const fake: FakeOAuthProvider = fakeGoogle({ clientId: 'c' });
 * server.use(...fake.handlers());
 * ```
 */
export class FakeOAuthProvider {
  /** The endpoints the fake serves. @internal */
  readonly profile: Profile;
  /** What the fake has seen so far. */
  readonly stats: FakeProviderStats = {
    tokenRequests: 0,
    codeExchanges: 0,
    refreshes: 0,
    revocations: 0,
    discoveryRequests: 0,
  };
  readonly #options: FakeProviderOptions;
  readonly #codes = new Map<string, Grant>();
  readonly #refreshTokens = new Map<string, Grant>();
  readonly #accessTokens = new Map<string, Grant>();
  readonly #faults: TokenFault[] = [];
  #keys: Promise<{ privateKey: CryptoKey; jwk: JWK; rogue: CryptoKey }> | undefined;

  /** @internal Get one from {@link fakeGoogle} or {@link fakeMicrosoft}. */
  constructor(profile: Profile, options: FakeProviderOptions) {
    this.profile = profile;
    this.#options = options;
  }

  /** The msw handlers: `setupServer(...fake.handlers())`. */
  handlers(): RequestHandler[] {
    const p = this.profile;
    const list: RequestHandler[] = [
      http.get(p.jwks, async () => HttpResponse.json({ keys: [(await this.#keyMaterial()).jwk] })),
      http.post(p.token, async ({ request }) => this.#token(request)),
    ];
    if (p.discovery !== undefined) {
      list.push(
        http.get(p.discovery, () => {
          this.stats.discoveryRequests++;
          return HttpResponse.json(this.metadata());
        }),
      );
    }
    if (p.revoke !== undefined) list.push(http.post(p.revoke, async ({ request }) => this.#revoke(request)));
    if (p.userinfo !== undefined) {
      list.push(
        http.get(p.userinfo, ({ request }) => {
          const token = request.headers.get('authorization')?.replace(/^Bearer /, '') ?? '';
          const grant = this.#accessTokens.get(token);
          if (grant === undefined) return form(401, { error: 'invalid_token' });
          return HttpResponse.json({
            sub: grant.sub,
            email: grant.email,
            email_verified: grant.tweaks.emailVerified ?? true,
          });
        }),
      );
    }
    return list;
  }

  /** The discovery document the fake serves. */
  metadata(): Record<string, unknown> {
    const p = this.profile;
    return {
      issuer: p.issuer,
      authorization_endpoint: p.authorize,
      token_endpoint: p.token,
      jwks_uri: p.jwks,
      ...(p.userinfo === undefined ? {} : { userinfo_endpoint: p.userinfo }),
      ...(p.revoke === undefined ? {} : { revocation_endpoint: p.revoke }),
      response_types_supported: ['code', 'id_token', 'code id_token'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    };
  }

  /** Make the next token requests fail, in order. */
  failNext(...faults: TokenFault[]): this {
    this.#faults.push(...faults);
    return this;
  }

  /**
   * Play the user who signs in and consents: read the authorization URL and return the callback URL with
   * a fresh code (and the state).
   */
  approve(authorizationUrl: URL | string, options: ApproveOptions): URL {
    const url = new URL(authorizationUrl);
    const q = url.searchParams;
    const redirectUri = q.get('redirect_uri');
    const challenge = q.get('code_challenge');
    if (redirectUri === null || challenge === null || q.get('code_challenge_method') !== 'S256') {
      throw new Error('fake provider: the authorization URL lacks redirect_uri or an S256 code_challenge');
    }
    if (q.get('client_id') !== this.#options.clientId) throw new Error('fake provider: unknown client_id');
    const code = `code-${randomBytes(16).toString('base64url')}`;
    this.#codes.set(code, {
      email: options.email,
      sub: createHash('sha256').update(options.email).digest('hex').slice(0, 21),
      scope: q.get('scope') ?? '',
      clientId: this.#options.clientId,
      redirectUri,
      challenge,
      nonce: q.get('nonce') ?? undefined,
      tweaks: options,
      withoutRefreshToken: options.withoutRefreshToken === true,
    });
    const callback = new URL(redirectUri);
    callback.searchParams.set('code', code);
    const state = q.get('state');
    if (state !== null) callback.searchParams.set('state', state);
    if (options.callbackIss !== undefined) callback.searchParams.set('iss', options.callbackIss);
    return callback;
  }

  /** Play the user who declines (or a provider error): the callback URL with `error`. */
  deny(authorizationUrl: URL | string, error = 'access_denied'): URL {
    const url = new URL(authorizationUrl);
    const callback = new URL(url.searchParams.get('redirect_uri') ?? 'http://invalid/');
    callback.searchParams.set('error', error);
    callback.searchParams.set('error_description', `The user or the server said ${error}`);
    const state = url.searchParams.get('state');
    if (state !== null) callback.searchParams.set('state', state);
    return callback;
  }

  /** Revoke every token of a user, as a password change or an admin would: later refreshes get `invalid_grant`. */
  revokeUser(email: string): void {
    for (const map of [this.#refreshTokens, this.#accessTokens]) {
      for (const [token, grant] of map) if (grant.email === email) map.delete(token);
    }
  }

  /** Whether a refresh token is currently valid. */
  isRefreshTokenValid(token: string): boolean {
    return this.#refreshTokens.has(token);
  }

  /**
   * Who an access token this fake issued belongs to and its scopes, or `undefined` when it is unknown or
   * revoked: what {@link fakeGmailApi} and {@link fakeGraph} check bearer tokens with.
   *
   * @example
   * ```ts
   * const info = fake.accessTokenInfo(token); // { email: 'ada@example.com', scopes: ['openid', ...] }
   * ```
   */
  accessTokenInfo(token: string):
    | {
        /** The address of the user the token was issued to. */
        readonly email: string;
        /** The token's scopes. */
        readonly scopes: readonly string[];
      }
    | undefined {
    const grant = this.#accessTokens.get(token);
    return grant === undefined
      ? undefined
      : { email: grant.email, scopes: grant.scope.split(' ').filter(Boolean) };
  }

  #keyMaterial() {
    this.#keys ??= (async () => {
      const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
      const rogue = (await generateKeyPair('RS256')).privateKey;
      const jwk = { ...(await exportJWK(publicKey)), kid: 'fake-key-1', alg: 'RS256', use: 'sig' };
      return { privateKey, jwk, rogue };
    })();
    return this.#keys;
  }

  async #idToken(grant: Grant): Promise<string> {
    const { privateKey, rogue } = await this.#keyMaterial();
    const t = grant.tweaks;
    const now = Math.floor(Date.now() / 1000);
    const tid = t.tenantId ?? '9188040d-6c67-4c5b-b112-36a304b66dad';
    const iss =
      t.iss ??
      (this.profile.kind === 'microsoft'
        ? this.profile.issuer.replace('{tenantid}', tid)
        : this.profile.issuer);
    const claims: Record<string, unknown> = { sub: grant.sub };
    if (grant.nonce !== undefined || t.nonce !== undefined) claims.nonce = t.nonce ?? grant.nonce;
    if (!t.omitEmail) {
      claims.email = grant.email;
      if (this.profile.kind === 'microsoft') claims.preferred_username = grant.email;
      else claims.email_verified = true;
      if (t.emailVerified !== undefined) claims.email_verified = t.emailVerified;
    }
    if (this.profile.kind === 'microsoft') claims.tid = tid;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'fake-key-1', typ: 'JWT' })
      .setIssuer(iss)
      .setAudience(t.aud ?? grant.clientId)
      .setIssuedAt(now)
      .setExpirationTime(now + (t.expiresInS ?? 3600))
      .sign(t.badSignature ? rogue : privateKey);
  }

  async #token(request: Request): Promise<Response> {
    this.stats.tokenRequests++;
    const fault = this.#faults.shift();
    if (fault !== undefined && typeof fault === 'object' && 'rewrite' in fault) {
      const answer = await this.#answer(request);
      if (answer.status !== 200) return answer;
      return form(200, fault.rewrite((await answer.json()) as Record<string, unknown>));
    }
    return (fault === undefined ? undefined : await answerFault(fault, 'text/html')) ?? this.#answer(request);
  }

  async #answer(request: Request): Promise<Response> {
    const params = new URLSearchParams(await request.text());
    const basic = request.headers.get('authorization');
    let clientId = params.get('client_id');
    let clientSecret = params.get('client_secret');
    if (basic?.startsWith('Basic ')) {
      const [id, secret] = Buffer.from(basic.slice(6), 'base64')
        .toString()
        .split(':')
        .map(decodeURIComponent);
      clientId = id ?? null;
      clientSecret = secret ?? null;
    }
    if (
      clientId !== this.#options.clientId ||
      (this.#options.clientSecret !== undefined && clientSecret !== this.#options.clientSecret)
    ) {
      return this.#error(401, 'invalid_client', 'The OAuth client was not found.', 7000215);
    }
    const grantType = params.get('grant_type');
    if (grantType === 'authorization_code') return this.#exchange(params);
    if (grantType === 'refresh_token') return this.#refresh(params);
    return this.#error(400, 'unsupported_grant_type', `grant_type ${grantType} is not supported`, 70003);
  }

  async #exchange(params: URLSearchParams): Promise<Response> {
    this.stats.codeExchanges++;
    const code = params.get('code') ?? '';
    const grant = this.#codes.get(code);
    this.#codes.delete(code);
    if (grant === undefined) return this.#error(400, 'invalid_grant', 'Malformed auth code.', 70000);
    if (params.get('redirect_uri') !== grant.redirectUri)
      return this.#error(400, 'redirect_uri_mismatch', 'Bad Request', 50011);
    const verifier = params.get('code_verifier') ?? '';
    if (createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) {
      return this.#error(400, 'invalid_grant', 'Missing code verifier.', 501481);
    }
    return this.#issue(grant, true);
  }

  async #refresh(params: URLSearchParams): Promise<Response> {
    this.stats.refreshes++;
    const token = params.get('refresh_token') ?? '';
    const grant = this.#refreshTokens.get(token);
    if (grant === undefined)
      return this.#error(400, 'invalid_grant', 'Token has been expired or revoked.', 70008);
    const scope = params.get('scope');
    if (scope !== null && this.profile.kind === 'microsoft') {
      const consented = grant.scope.split(' ');
      const missing = scope.split(' ').filter((s) => /^https?:\/\//.test(s) && !consented.includes(s));
      if (missing.length > 0) {
        return this.#error(
          400,
          'invalid_grant',
          `The user or administrator has not consented to use the application with ID '${grant.clientId}'. Send an interactive authorization request for this user and resource.`,
          65001,
        );
      }
    }
    if (this.#rotates()) this.#refreshTokens.delete(token);
    // A `scope` narrows the access token to that resource (Microsoft: one resource per access token); the new
    // refresh token keeps the whole consent, as the real one does.
    return this.#issue(grant, this.#rotates(), false, scope ?? undefined);
  }

  #rotates(): boolean {
    return this.#options.rotateRefreshTokens ?? this.profile.rotateRefreshTokens;
  }

  async #issue(grant: Grant, withRefresh: boolean, withIdToken = true, scope?: string): Promise<Response> {
    const accessToken = `${this.profile.kind === 'google' ? 'ya29.' : 'EwB'}${randomBytes(24).toString('base64url')}`;
    const requested = scope ?? grant.scope;
    // At Microsoft an access token is for one resource: the first resource-qualified scope's.
    const granted = this.profile.kind === 'microsoft' ? firstResource(requested) : requested;
    this.#accessTokens.set(accessToken, { ...grant, scope: granted });
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: this.#options.accessTokenTtlS ?? 3599,
      scope: granted,
    };
    if (withRefresh && !grant.withoutRefreshToken) {
      const refreshToken = `${this.profile.kind === 'google' ? '1//' : 'M.C'}${randomBytes(24).toString('base64url')}`;
      this.#refreshTokens.set(refreshToken, grant);
      body.refresh_token = refreshToken;
    }
    if (withIdToken && grant.scope.split(' ').includes('openid')) body.id_token = await this.#idToken(grant);
    return form(200, body);
  }

  async #revoke(request: Request): Promise<Response> {
    this.stats.revocations++;
    const token = new URLSearchParams(await request.text()).get('token') ?? '';
    const grant = this.#refreshTokens.get(token) ?? this.#accessTokens.get(token);
    if (grant === undefined)
      return form(400, { error: 'invalid_token', error_description: 'Token expired or revoked' });
    this.revokeUser(grant.email);
    return new HttpResponse(null, { status: 200 });
  }

  #error(status: number, error: string, description: string, code: number): Response {
    if (this.profile.kind === 'microsoft') {
      return form(status, {
        error,
        error_description: `AADSTS${code}: ${description} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
        error_codes: [code],
        timestamp: new Date().toISOString(),
        trace_id: randomUUID(),
        correlation_id: randomUUID(),
      });
    }
    return form(status, { error, error_description: description });
  }
}

/**
 * Emulated Google endpoints (token, JWKS, userinfo, revoke) at Google's real URLs, for the `google()`
 * preset. Refresh responses carry no new refresh token, as at Google.
 *
 * @example
 * ```ts
 * import { setupServer } from 'msw/node';
 * import { fakeGoogle } from 'oauth-mailbox/testing';
 * const fake = fakeGoogle({ clientId: 'test-client', clientSecret: 'test-secret' });
 * const server = setupServer(...fake.handlers());
 * server.listen({ onUnhandledRequest: 'error' });
 * const { url } = await auth.startAuthorization('google', { owner: 'u1' });
 * const callback = fake.approve(url, { email: 'ada@example.com' });
 * const { account } = await auth.completeAuthorization('google', callback, { owner: 'u1' });
 * ```
 */
export function fakeGoogle(options: FakeProviderOptions): FakeOAuthProvider {
  return new FakeOAuthProvider(
    {
      kind: 'google',
      issuer: 'https://accounts.google.com',
      authorize: 'https://accounts.google.com/o/oauth2/v2/auth',
      token: 'https://oauth2.googleapis.com/token',
      jwks: 'https://www.googleapis.com/oauth2/v3/certs',
      revoke: 'https://oauth2.googleapis.com/revoke',
      userinfo: 'https://openidconnect.googleapis.com/v1/userinfo',
      discovery: 'https://accounts.google.com/.well-known/openid-configuration',
      rotateRefreshTokens: false,
    },
    options,
  );
}

/**
 * Emulated Microsoft Entra ID v2.0 endpoints (discovery, JWKS, token) for the `microsoft()` preset and a
 * tenant (`common` by default: the multi-tenant `{tenantid}` issuer). Refresh tokens rotate and reuse is
 * `invalid_grant`, as at Microsoft; errors carry AADSTS codes.
 *
 * @example
 * ```ts
 * const fake = fakeMicrosoft({ clientId: 'test-client', tenant: 'common' });
 * const callback = fake.approve(url, { email: 'grace@contoso.com', tenantId: 'contoso-tenant-id' });
 * ```
 */
export function fakeMicrosoft(
  options: FakeProviderOptions & { readonly tenant?: string },
): FakeOAuthProvider {
  const tenant = options.tenant ?? 'common';
  const base = `https://login.microsoftonline.com/${tenant}`;
  const multi = ['common', 'organizations', 'consumers'].includes(tenant);
  return new FakeOAuthProvider(
    {
      kind: 'microsoft',
      issuer: multi ? 'https://login.microsoftonline.com/{tenantid}/v2.0' : `${base}/v2.0`,
      authorize: `${base}/oauth2/v2.0/authorize`,
      token: `${base}/oauth2/v2.0/token`,
      jwks: `${base}/discovery/v2.0/keys`,
      discovery: `${base}/v2.0/.well-known/openid-configuration`,
      rotateRefreshTokens: true,
    },
    options,
  );
}
