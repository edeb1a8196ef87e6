/**
 * The one implementation of {@link OAuthProvider} behind every preset, on openid-client v6.
 * @module
 */
import { inspect } from 'node:util';
import * as client from 'openid-client';
import {
  AuthorizationResponseError,
  ConfigurationError,
  InvalidArgumentError,
  TokenExchangeError,
} from '../errors.js';
import { bufferedResponse, nodeFetch } from '../http/node-fetch.js';
import { linkSignals, raceAbort } from '../internal/abort.js';
import { TokenSet } from '../tokens/token-set.js';
import type { MailTransport } from '../transport-names.js';
import { classifyProviderError, type ProviderPhase } from './classify.js';
import {
  checkTokenEndpoint,
  checkUrl,
  type ProviderDefinition,
  RESERVED_PARAMETERS,
  TENANT_PLACEHOLDER,
  tenantIssuerPattern,
} from './definition.js';
import { identityFromClaims, marksEmailUnverified } from './identity.js';
import { attachRescuedRefreshToken, normalizeTokenResponse, refreshTokenOf } from './token-response.js';
import type {
  AuthorizationUrlParams,
  CodeExchangeChecks,
  MailboxIdentity,
  MailSettings,
  OAuthProvider,
  ProviderOptions,
  ProviderResource,
  ProviderTokenResult,
  RefreshOptions,
} from './types.js';

const SECONDS = 1000;

function unique(values: Iterable<string>): string[] {
  return [...new Set(values)];
}

/**
 * An {@link OAuthProvider} on openid-client. Discovery is lazy, shared by concurrent first callers, and
 * retried on the next use after a failure.
 *
 * Construct through a preset (`google()`, `oidc()`, ...) or {@link definePreset}.
 *
 * @example
 * ```ts
 * const provider: OpenIdClientProvider = google({ clientId, clientSecret, redirectUri });
 * await provider.serverMetadata();
 * ```
 */
export class OpenIdClientProvider implements OAuthProvider {
  readonly id: string;
  readonly displayName: string;
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  readonly mail: MailSettings;
  readonly openid: boolean;
  readonly mailTransport: MailTransport;
  readonly mailTransports: readonly MailTransport[];
  readonly resources: Readonly<Record<string, ProviderResource>>;
  readonly #definition: ProviderDefinition;
  readonly #clientId: string;
  readonly #clientSecret: string | undefined;
  readonly #parameters: Readonly<Record<string, string>>;
  readonly #fetch: typeof fetch | undefined;
  readonly #timeoutS: number;
  readonly #insecure: boolean;
  #config: Promise<client.Configuration> | undefined;

  constructor(definition: ProviderDefinition, options: ProviderOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigurationError(
        `${definition.id}: options must be an object with clientId and redirectUri`,
      );
    }
    if (typeof options.clientId !== 'string' || options.clientId.length === 0) {
      throw new ConfigurationError(`${definition.id}: clientId must be a non-empty string`);
    }
    if (
      options.clientSecret !== undefined &&
      (typeof options.clientSecret !== 'string' || options.clientSecret.length === 0)
    ) {
      throw new ConfigurationError(`${definition.id}: clientSecret must be a non-empty string when given`);
    }
    checkUrl(options.redirectUri, `${definition.id}: redirectUri`);
    if (options.timeoutMs !== undefined && (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0)) {
      throw new ConfigurationError(`${definition.id}: timeoutMs must be a positive number of milliseconds`);
    }
    if (
      options.extraScopes !== undefined &&
      !(
        Array.isArray(options.extraScopes) &&
        options.extraScopes.every((s) => typeof s === 'string' && s.length > 0 && !/\s/.test(s))
      )
    ) {
      throw new ConfigurationError(
        `${definition.id}: extraScopes must be an array of scope strings without spaces`,
      );
    }
    if (options.fetch !== undefined && typeof options.fetch !== 'function') {
      throw new ConfigurationError(`${definition.id}: fetch must be a function`);
    }
    this.#definition = definition;
    this.id = options.id ?? definition.id;
    this.displayName = options.displayName ?? definition.displayName;
    this.redirectUri = options.redirectUri;
    this.scopes = Object.freeze(unique([...definition.scopes, ...(options.extraScopes ?? [])]));
    this.mail = Object.freeze({
      imap: { ...definition.mail.imap, ...options.mail?.imap },
      smtp: { ...definition.mail.smtp, ...options.mail?.smtp },
      sasl: options.mail?.sasl ?? definition.mail.sasl,
    });
    this.openid = definition.openid;
    this.mailTransport = definition.mailTransport ?? 'imap';
    this.mailTransports = Object.freeze([...(definition.mailTransports ?? [this.mailTransport])]);
    if (!this.mailTransports.includes(this.mailTransport)) {
      throw new ConfigurationError(
        `${definition.id}: mailTransport "${this.mailTransport}" is not among mailTransports (${this.mailTransports.join(', ')})`,
      );
    }
    this.resources = Object.freeze({ ...definition.resources });
    this.#clientId = options.clientId;
    this.#clientSecret = options.clientSecret;
    for (const name of Object.keys({
      ...definition.authorizationParameters,
      ...options.authorizationParameters,
    })) {
      if (RESERVED_PARAMETERS.has(name)) {
        throw new ConfigurationError(
          `${definition.id}: authorizationParameters cannot set ${name} (the library sets it; use scopes for scope)`,
        );
      }
    }
    this.#parameters = { ...definition.authorizationParameters, ...options.authorizationParameters };
    this.#fetch = options.fetch;
    this.#timeoutS = Math.max(1, Math.ceil((options.timeoutMs ?? 30 * SECONDS) / SECONDS));
    this.#insecure = options.allowInsecureRequests === true;
    if ('metadata' in definition.server) {
      // Refused now, not at the first refresh: the client secret and refresh tokens go to this endpoint.
      checkTokenEndpoint(definition.server.metadata.token_endpoint, definition.id, this.#insecure);
      const config = this.#configure(definition.server.metadata);
      this.#config = Promise.resolve(config);
    } else {
      checkUrl(definition.server.discovery, `${definition.id}: issuer`);
    }
  }

  /** The provider's server metadata (runs discovery if needed). */
  async serverMetadata(): Promise<Readonly<client.ServerMetadata>> {
    return (await this.#configuration()).serverMetadata();
  }

  async authorizationUrl(params: AuthorizationUrlParams): Promise<URL> {
    const config = await this.#configuration();
    const scope = unique([...this.scopes, ...(params.scopes ?? [])]).join(' ');
    for (const name of Object.keys(params.parameters ?? {})) {
      if (RESERVED_PARAMETERS.has(name))
        throw new InvalidArgumentError(`authorization parameters cannot set ${name} (the library sets it)`);
    }
    // Extra parameters first: the security-relevant ones (PKCE, state, nonce, redirect) cannot be overridden.
    const query: Record<string, string> = {
      ...this.#parameters,
      ...params.parameters,
      ...(params.loginHint === undefined ? {} : { login_hint: params.loginHint }),
      redirect_uri: this.redirectUri,
      scope,
      state: params.state,
      code_challenge: params.codeChallenge,
      code_challenge_method: 'S256',
      ...(this.openid && params.nonce !== undefined ? { nonce: params.nonce } : {}),
    };
    return client.buildAuthorizationUrl(config, query);
  }

  async exchangeCode(callbackUrl: URL, checks: CodeExchangeChecks): Promise<ProviderTokenResult> {
    const config = await this.#configuration(checks.signal);
    const meta = config.serverMetadata();
    const iss = callbackUrl.searchParams.get('iss');
    const refuse = (message: string) => new AuthorizationResponseError(message, { providerId: this.id });
    // A multi-tenant issuer (Entra's `https://login.microsoftonline.com/{tenantid}/v2.0`): the callback's `iss`
    // is the user's tenant's issuer. openid-client compares it with the template and refuses it, so it is
    // checked here instead: of the template's form now, and of the id_token's own tenant (`tid`) after the
    // exchange.
    const multiTenant = meta.issuer.includes(TENANT_PLACEHOLDER);
    let tenantIssuer: string | undefined;
    let url = callbackUrl;
    if (iss !== null && multiTenant) {
      if (!tenantIssuerPattern(meta.issuer).test(iss))
        throw refuse('The authorization response came from an unexpected issuer (iss)');
      tenantIssuer = iss;
      url = new URL(callbackUrl);
      url.searchParams.delete('iss');
    } else if (iss !== null && iss !== meta.issuer) {
      throw refuse('The authorization response came from an unexpected issuer (iss)');
    }
    const response = await this.#call('exchange', checks.signal, () =>
      client.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        ...(this.openid ? { expectedNonce: checks.nonce, idTokenExpected: true } : {}),
      }),
    );
    const result = this.#result(response, 'exchange');
    if (tenantIssuer !== undefined) {
      const tid = result.claims?.tid;
      if (typeof tid !== 'string' || meta.issuer.replace(TENANT_PLACEHOLDER, tid) !== tenantIssuer) {
        throw refuse(
          "The authorization response's issuer (iss) names another tenant than the id_token (tid)",
        );
      }
    }
    return result;
  }

  async refresh(refreshToken: string, options: RefreshOptions = {}): Promise<ProviderTokenResult> {
    if (typeof refreshToken !== 'string' || refreshToken.length === 0) {
      throw new InvalidArgumentError('refreshToken must be a non-empty string');
    }
    const config = await this.#configuration(options.signal);
    const parameters = options.scopes === undefined ? undefined : { scope: unique(options.scopes).join(' ') };
    // A rotating provider's answer holds the only valid refresh token: if the answer is refused, the new
    // refresh token goes with the error (token-response.ts) so that the refresher can store it first.
    const slot: { refreshToken?: string } = {};
    this.#rescues.set(refreshToken, slot);
    try {
      const response = await this.#call('refresh', options.signal, () =>
        client.refreshTokenGrant(config, refreshToken, parameters),
      );
      return this.#result(response, 'refresh');
    } catch (err) {
      if (slot.refreshToken !== undefined && slot.refreshToken !== refreshToken)
        attachRescuedRefreshToken(err, slot.refreshToken);
      throw err;
    } finally {
      if (this.#rescues.get(refreshToken) === slot) this.#rescues.delete(refreshToken);
    }
  }

  async revoke(token: string, options: { readonly signal?: AbortSignal } = {}): Promise<boolean> {
    const config = await this.#configuration(options.signal);
    if (config.serverMetadata().revocation_endpoint === undefined) return false;
    await this.#call('revoke', options.signal, () => client.tokenRevocation(config, token));
    return true;
  }

  async identify(
    result: ProviderTokenResult,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<MailboxIdentity> {
    const custom = this.#definition.identify;
    if (custom !== undefined) {
      // Bounded like openid-client's own requests (a userinfo server that never answers must not hang the
      // callback), and https only unless allowInsecureRequests: the access token is in these requests.
      const link = linkSignals([options.signal, AbortSignal.timeout(this.#timeoutS * SECONDS)]);
      let identity: MailboxIdentity;
      try {
        identity = await this.#call('userinfo', options.signal, () =>
          custom(result, { fetch: this.#guardedFetch, signal: link.signal }),
        );
      } finally {
        link.dispose();
      }
      if (typeof identity?.email !== 'string' || !identity.email.includes('@')) {
        throw new TokenExchangeError(`${this.id} returned no email address`, { providerId: this.id });
      }
      return identity;
    }
    const claimNames = this.#definition.emailClaims ?? ['email'];
    const pick = (claims: Readonly<Record<string, unknown>> | undefined) =>
      identityFromClaims(claims, claimNames, this.#definition.trustUnverifiedEmail === true);
    const fromIdToken = pick(result.claims);
    if (fromIdToken !== undefined) return fromIdToken;
    if (this.#definition.userinfo === true) {
      const config = await this.#configuration(options.signal);
      const sub = typeof result.claims?.sub === 'string' ? result.claims.sub : client.skipSubjectCheck;
      const info = await this.#call('userinfo', options.signal, () =>
        client.fetchUserInfo(config, result.tokens.accessToken, sub),
      );
      const fromUserinfo = pick(info as Record<string, unknown>);
      if (fromUserinfo !== undefined) return fromUserinfo;
    }
    throw new TokenExchangeError(
      marksEmailUnverified(result.claims) && this.#definition.trustUnverifiedEmail !== true
        ? `${this.id} marked the email address as not verified (email_verified: false); it is not taken as the mailbox identity`
        : `${this.id} returned no email address (looked for ${claimNames.join(', ')}); request the "email" scope`,
      { providerId: this.id },
    );
  }

  #result(
    response: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
    phase: ProviderPhase,
  ): ProviderTokenResult {
    if (typeof response.access_token !== 'string' || response.access_token.length === 0) {
      throw classifyProviderError(new SyntaxError('token response has no access_token'), phase, {
        providerId: this.id,
      });
    }
    const expiresIn = response.expiresIn();
    const claims = response.claims();
    return {
      tokens: new TokenSet({
        accessToken: response.access_token,
        refreshToken: response.refresh_token ?? null,
        idToken: response.id_token ?? null,
        expiresAt: expiresIn === undefined ? null : Date.now() + expiresIn * SECONDS,
        tokenType: typeof response.token_type === 'string' ? response.token_type : 'Bearer',
      }),
      scopes: typeof response.scope === 'string' ? response.scope.split(' ').filter(Boolean) : undefined,
      claims: claims === undefined ? undefined : { ...claims },
    };
  }

  /**
   * Run a provider call. A caller's `signal` rejects the call at once with its reason; the HTTP request itself
   * ends at the provider timeout (openid-client takes no per-call signal, and tracking one through
   * AsyncLocalStorage would slow every promise of the host process on Node 20).
   */
  async #call<T>(phase: ProviderPhase, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    signal?.throwIfAborted();
    try {
      return await raceAbort(fn(), signal);
    } catch (err) {
      throw classifyProviderError(err, phase, { providerId: this.id, signal });
    }
  }

  #configuration(signal?: AbortSignal): Promise<client.Configuration> {
    if (this.#config === undefined) {
      const server = this.#definition.server as { readonly discovery: string };
      const pending = this.#call('discovery', signal, () =>
        client.discovery(
          new URL(server.discovery),
          this.#clientId,
          undefined,
          this.#clientSecret === undefined ? client.None() : client.ClientSecretPost(this.#clientSecret),
          {
            [client.customFetch]: this.#customFetch,
            timeout: this.#timeoutS,
            ...(this.#insecure ? { execute: [client.allowInsecureRequests] } : {}),
          },
        ),
      ).then((discovered) => {
        const issuer = discovered.serverMetadata().issuer;
        if (this.#definition.acceptIssuer !== undefined && !this.#definition.acceptIssuer(issuer)) {
          throw new ConfigurationError(
            `Discovery for ${this.id} returned an unexpected issuer (${issuer.slice(0, 200)})`,
            {
              providerId: this.id,
            },
          );
        }
        return this.#tune(discovered);
      });
      // A failed discovery is not cached: the next caller tries again.
      pending.catch(() => {
        if (this.#config === pending) this.#config = undefined;
      });
      this.#config = pending;
    }
    return this.#config;
  }

  #configure(metadata: Readonly<client.ServerMetadata>): client.Configuration {
    return this.#tune(
      new client.Configuration(
        { ...metadata },
        this.#clientId,
        undefined,
        this.#clientSecret === undefined ? client.None() : client.ClientSecretPost(this.#clientSecret),
      ),
    );
  }

  /** Apply timeout, fetch, insecure-request opt-in and id_token signature checks. */
  #tune(config: client.Configuration): client.Configuration {
    config.timeout = this.#timeoutS;
    config[client.customFetch] = this.#customFetch;
    if (this.#insecure) client.allowInsecureRequests(config);
    // Verify id_token signatures against the provider's JWKS too (openid-client skips it by default for
    // token endpoint responses): a forged id_token is refused, not merely unlikely.
    if (this.openid) client.enableNonRepudiationChecks(config);
    return config;
  }

  /**
   * Calls the configured fetch, else the library's keep-alive `node:http(s)` client (`http/node-fetch.ts`:
   * cheaper than undici's fetch; msw and other `node:http` interceptors still apply).
   */
  readonly #customFetch: client.CustomFetch = async (url, init) => {
    const response = await (this.#fetch ?? nodeFetch)(url, init as RequestInit);
    const form = init.body;
    if (!response.ok || !(form instanceof URLSearchParams) || !form.has('grant_type')) return response;
    return this.#inspectTokenResponse(response, form);
  };

  /** Rescue a rotated refresh token from a token endpoint's 200 and apply the lenient fixes (token-response.ts). */
  async #inspectTokenResponse(response: Response, form: URLSearchParams): Promise<Response> {
    let body: unknown;
    try {
      body = await response.clone().json();
    } catch {
      return response; // not JSON: openid-client refuses it, typed
    }
    const rotated = refreshTokenOf(body);
    const used = form.get('refresh_token');
    if (rotated !== undefined && used !== null) {
      const slot = this.#rescues.get(used);
      if (slot !== undefined) slot.refreshToken = rotated;
    }
    const fixed = normalizeTokenResponse(body);
    return fixed === undefined ? response : bufferedResponse(JSON.stringify(fixed), response);
  }

  /** Refresh calls in flight, by the refresh token they use: where a rescued rotated refresh token lands. */
  readonly #rescues = new Map<string, { refreshToken?: string }>();

  /** The fetch handed to `identify`: https only (unless allowInsecureRequests), bounded by the timeout. */
  readonly #guardedFetch: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol !== 'https:' && !this.#insecure) {
      return Promise.reject(
        new ConfigurationError(
          `${this.id}: provider requests must use https (allowInsecureRequests only for local tests)`,
          { providerId: this.id },
        ),
      );
    }
    const timeout = AbortSignal.timeout(this.#timeoutS * SECONDS);
    const signal = init?.signal == null ? timeout : AbortSignal.any([init.signal, timeout]);
    return (this.#fetch ?? nodeFetch)(input, { ...init, signal });
  };

  /** @internal */
  [inspect.custom](): string {
    return `OAuthProvider { id: '${this.id}', displayName: '${this.displayName}' }`;
  }

  /** @internal */
  toJSON(): Record<string, unknown> {
    return { id: this.id, displayName: this.displayName, redirectUri: this.redirectUri, scopes: this.scopes };
  }
}

/**
 * Turn a preset definition and the host's options into an {@link OAuthProvider}. Presets are one call to
 * this; so is yours (see `docs/providers.md`).
 *
 * @example
 * ```ts
 * import { definePreset } from 'oauth-mailbox';
 * export const fastmail = (options: ProviderOptions) => definePreset({
 *   id: 'fastmail', displayName: 'Fastmail', openid: false,
 *   server: { metadata: { issuer: 'https://www.fastmail.com', authorization_endpoint: '…', token_endpoint: '…' } },
 *   scopes: ['https://www.fastmail.com/dev/protocol-imap', 'https://www.fastmail.com/dev/protocol-smtp'],
 *   mail: { imap: { host: 'imap.fastmail.com', port: 993, secure: true }, smtp: { host: 'smtp.fastmail.com', port: 465, secure: true }, sasl: 'XOAUTH2' },
 * }, options);
 * ```
 */
export function definePreset(definition: ProviderDefinition, options: ProviderOptions): OpenIdClientProvider {
  return new OpenIdClientProvider(definition, options);
}
