/**
 * The provider contract: what the authorization flow, the refresher and the mail connectors need to know
 * about an OAuth mail provider.
 *
 * @module
 */
import type { TokenSet } from '../tokens/token-set.js';
import type { MailTransport } from '../transport-names.js';

/**
 * SASL mechanism for IMAP/SMTP.
 *
 * @example
 * ```ts
 * const sasl: SaslMechanism = provider.mail.sasl; // 'XOAUTH2' or 'OAUTHBEARER'
 * ```
 */
export type SaslMechanism = 'XOAUTH2' | 'OAUTHBEARER';

/**
 * Where and how to reach one mail server.
 *
 * @example
 * ```ts
 * const imap: MailServerSettings = { host: 'imap.example.com', port: 993, secure: true };
 * ```
 */
export interface MailServerSettings {
  /** The server's host name. */
  readonly host: string;
  /** The server's port. */
  readonly port: number;
  /** `true`: TLS from the first byte (993, 465). `false`: plain connect, then STARTTLS is required. */
  readonly secure: boolean;
}

/**
 * A provider's mail servers and preferred SASL mechanism.
 *
 * @example
 * ```ts
 * const mail: MailSettings = { imap: { host: 'imap.example.com', port: 993, secure: true }, smtp: { host: 'smtp.example.com', port: 587, secure: false }, sasl: 'XOAUTH2' };
 * ```
 */
export interface MailSettings {
  /** The IMAP server. */
  readonly imap: MailServerSettings;
  /** The SMTP (submission) server. */
  readonly smtp: MailServerSettings;
  /** The SASL mechanism the provider expects. */
  readonly sasl: SaslMechanism;
}

/**
 * An extra resource of a provider whose access token comes from the account's refresh token with its own
 * scopes (Microsoft issues one access token per resource: Graph beside Outlook's IMAP and SMTP).
 *
 * @example
 * ```ts
 * const graph: ProviderResource = { scopes: ['https://graph.microsoft.com/Mail.ReadWrite', 'offline_access'] };
 * ```
 */
export interface ProviderResource {
  /** The scopes a refresh for this resource asks for (the first one names the resource). */
  readonly scopes: readonly string[];
}

/**
 * Who the mailbox belongs to, as read from the token response.
 *
 * @example
 * ```ts
 * const { email }: MailboxIdentity = await provider.identify(result);
 * ```
 */
export interface MailboxIdentity {
  /** The mailbox address. */
  readonly email: string;
  /** The provider's stable subject id, when known. */
  readonly subject?: string;
  /** A display name, when known. */
  readonly name?: string;
}

/**
 * What a token endpoint returned. `tokens` never serializes a secret.
 *
 * @example
 * ```ts
 * const { tokens, scopes }: ProviderTokenResult = await provider.refresh(refreshToken);
 * ```
 */
export interface ProviderTokenResult {
  /** The tokens (access, refresh when sent, id_token when sent, expiry). */
  readonly tokens: TokenSet;
  /** Granted scopes, when the provider said. */
  readonly scopes: readonly string[] | undefined;
  /** The verified id_token claims, when there was an id_token. */
  readonly claims: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Parameters for building an authorization URL.
 *
 * @example
 * ```ts
 * const url = await provider.authorizationUrl({ state, codeChallenge, nonce, loginHint: 'ada@example.com' });
 * ```
 */
export interface AuthorizationUrlParams {
  /** The `state` value of this authorization. */
  readonly state: string;
  /** The PKCE S256 challenge. */
  readonly codeChallenge: string;
  /** The OIDC nonce (sent when the provider speaks OpenID Connect). */
  readonly nonce?: string;
  /** Scopes to request (the provider's defaults are added). */
  readonly scopes?: readonly string[];
  /** Sent as `login_hint`, to pre-fill the provider's login form. */
  readonly loginHint?: string;
  /** Extra query parameters (override the provider's defaults). */
  readonly parameters?: Readonly<Record<string, string>>;
}

/**
 * Checks for the code exchange.
 *
 * @example
 * ```ts
 * const result = await provider.exchangeCode(callbackUrl, { state, codeVerifier, nonce });
 * ```
 */
export interface CodeExchangeChecks {
  /** The expected `state` (the callback's must equal it). */
  readonly state: string;
  /** The PKCE code verifier sent with the code. */
  readonly codeVerifier: string;
  /** Expected nonce; when set, an id_token is required. */
  readonly nonce?: string;
  /** Stops waiting for the token endpoint. */
  readonly signal?: AbortSignal;
}

/**
 * Options of a refresh.
 *
 * @example
 * ```ts
 * await provider.refresh(refreshToken, { scopes: ['https://graph.microsoft.com/Mail.Read'], signal });
 * ```
 */
export interface RefreshOptions {
  /** Scopes for the new access token (for example another resource's scope at Microsoft). */
  readonly scopes?: readonly string[];
  /** Stops waiting for the token endpoint. */
  readonly signal?: AbortSignal;
}

/**
 * An OAuth 2.0 / OpenID Connect mail provider. Presets (`google()`, `microsoft()`, `yahoo()`, `oidc()`,
 * `oauth2()`) implement it on openid-client; implement it yourself for anything else.
 *
 * Every method throws typed errors: `TokenExchangeError`, `TokenRefreshError` (transient),
 * `ReauthorizationRequiredError` (`invalid_grant`), `ConfigurationError` (`invalid_client`, discovery).
 *
 * @example
 * ```ts
 * const provider = google({ clientId, clientSecret, redirectUri: 'https://app.example.com/oauth/google/callback' });
 * provider.mail.imap; // { host: 'imap.gmail.com', port: 993, secure: true }
 * ```
 */
export interface OAuthProvider {
  /** Registry key and stored `provider` value, such as `google`. */
  readonly id: string;
  /** Name for a "connect your mailbox" page. */
  readonly displayName: string;
  /** The redirect URI registered with the provider. */
  readonly redirectUri: string;
  /** Scopes requested by default. */
  readonly scopes: readonly string[];
  /** Mail servers and SASL mechanism. */
  readonly mail: MailSettings;
  /** Whether the provider speaks OpenID Connect (nonce, id_token). */
  readonly openid: boolean;
  /** The transport `auth.mailbox()` uses for this provider's accounts. @default 'imap' */
  readonly mailTransport?: MailTransport;
  /** The transports this provider's accounts can use. @default ['imap'] */
  readonly mailTransports?: readonly MailTransport[];
  /**
   * Extra resources whose access tokens the refresher obtains with the account's refresh token
   * (`getAccessToken(id, { resource })`), by name: `graph` at Microsoft.
   */
  readonly resources?: Readonly<Record<string, ProviderResource>>;
  /** Build the URL to send the user to. */
  authorizationUrl(params: AuthorizationUrlParams): Promise<URL>;
  /** Exchange the code of a callback URL (state, PKCE verifier, nonce and `iss` checked). */
  exchangeCode(callbackUrl: URL, checks: CodeExchangeChecks): Promise<ProviderTokenResult>;
  /** Use a refresh token. */
  refresh(refreshToken: string, options?: RefreshOptions): Promise<ProviderTokenResult>;
  /** Revoke a token at the provider; `false` when the provider has no revocation endpoint. */
  revoke(token: string, options?: { readonly signal?: AbortSignal }): Promise<boolean>;
  /** Read the mailbox identity from a code exchange result. */
  identify(
    result: ProviderTokenResult,
    options?: { readonly signal?: AbortSignal },
  ): Promise<MailboxIdentity>;
}

/**
 * Options every preset takes.
 *
 * @example
 * ```ts
 * const options: ProviderOptions = { clientId, clientSecret, redirectUri, extraScopes: ['profile'], timeoutMs: 10_000 };
 * ```
 */
export interface ProviderOptions {
  /** OAuth client id. */
  readonly clientId: string;
  /** OAuth client secret (omit for public clients). */
  readonly clientSecret?: string;
  /** Redirect URI registered with the provider (absolute; https except on localhost). */
  readonly redirectUri: string;
  /** Scopes added to the preset's minimal mail scopes. */
  readonly extraScopes?: readonly string[];
  /**
   * Authorization query parameters added to (or overriding) the preset's, such as `prompt` or `hd`. The
   * ones the library sets are refused with a `ConfigurationError`: `client_id`, `redirect_uri`,
   * `response_type`, `scope` (use `extraScopes`), `state`, `nonce`, `code_challenge`, `code_challenge_method`.
   */
  readonly authorizationParameters?: Readonly<Record<string, string>>;
  /** Registry key. @default the preset's id, such as `google` */
  readonly id?: string;
  /** Display name. @default the preset's, such as `Google` */
  readonly displayName?: string;
  /** Mail server settings overriding the preset's (for tests and custom servers). */
  readonly mail?: Partial<MailSettings>;
  /**
   * The fetch used for every provider request (token, discovery, revocation, userinfo). Pass
   * `globalThis.fetch` to go through undici (a global dispatcher such as a proxy agent), or your own.
   * @default a keep-alive client over `node:http(s)` and its global agents (cheaper than undici's fetch for
   * these small JSON exchanges; `node:http` interceptors such as msw apply)
   */
  readonly fetch?: typeof fetch;
  /**
   * Timeout of each provider HTTP request, in milliseconds.
   * @default 30000
   */
  readonly timeoutMs?: number;
  /**
   * Allow `http:` provider endpoints. Only for tests against a local provider.
   * @default false
   */
  readonly allowInsecureRequests?: boolean;
}
