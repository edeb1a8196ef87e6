import { ConfigurationError } from '../errors.js';
import { definePreset, type OpenIdClientProvider } from './base.js';
import type { ProviderDefinition } from './definition.js';
import type { MailSettings, ProviderOptions } from './types.js';

/**
 * Options of {@link oauth2}.
 *
 * @example
 * ```ts
 * oauth2({ clientId, redirectUri, authorizationEndpoint, tokenEndpoint, userinfoEndpoint, scopes: ['mail'], mail });
 * ```
 */
export interface OAuth2Options extends ProviderOptions {
  /** An identifier for the server (its URL), used as the metadata issuer. @default the token endpoint's origin */
  readonly issuer?: string;
  /** The authorization endpoint URL. */
  readonly authorizationEndpoint: string;
  /** The token endpoint URL. */
  readonly tokenEndpoint: string;
  /** RFC 7009 revocation endpoint, when there is one. */
  readonly revocationEndpoint?: string;
  /** An endpoint answering a bearer GET with JSON holding `email` (used when `identify` is not given). */
  readonly userinfoEndpoint?: string;
  /** Scopes to request (plain OAuth 2.0 has no standard mail scope). */
  readonly scopes: readonly string[];
  /** The server's mail servers. */
  readonly mail: MailSettings;
  /** Read the mailbox identity yourself. */
  readonly identify?: ProviderDefinition['identify'];
}

/**
 * A plain OAuth 2.0 authorization server (no OpenID Connect): static endpoints, PKCE S256, no id_token.
 * The mailbox address comes from `identify` or from `userinfoEndpoint`'s `email`.
 *
 * @example
 * ```ts
 * import { oauth2 } from 'oauth-mailbox';
 * const provider = oauth2({
 *   id: 'corp', displayName: 'Corp Mail',
 *   authorizationEndpoint: 'https://auth.corp.example/authorize',
 *   tokenEndpoint: 'https://auth.corp.example/token',
 *   userinfoEndpoint: 'https://auth.corp.example/me',
 *   scopes: ['mail'],
 *   clientId, clientSecret, redirectUri: 'https://app.example.com/oauth/corp/callback',
 *   mail: { imap: { host: 'imap.corp.example', port: 993, secure: true }, smtp: { host: 'smtp.corp.example', port: 587, secure: false }, sasl: 'XOAUTH2' },
 * });
 * ```
 */
export function oauth2(options: OAuth2Options): OpenIdClientProvider {
  for (const key of ['authorizationEndpoint', 'tokenEndpoint'] as const) {
    if (typeof options?.[key] !== 'string' || !URL.canParse(options[key]))
      throw new ConfigurationError(`oauth2: ${key} must be a URL string`);
  }
  if (!Array.isArray(options.scopes))
    throw new ConfigurationError('oauth2: scopes must be an array of strings');
  if (options.identify === undefined && options.userinfoEndpoint === undefined) {
    throw new ConfigurationError(
      'oauth2: give identify() or userinfoEndpoint so the mailbox address can be read',
    );
  }
  if (options.userinfoEndpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(options.userinfoEndpoint);
    } catch {
      url = undefined;
    }
    // The access token travels in this request's header: https only, as openid-client requires for its own.
    if (
      url === undefined ||
      (url.protocol !== 'https:' && !(url.protocol === 'http:' && options.allowInsecureRequests === true))
    ) {
      throw new ConfigurationError(
        'oauth2: userinfoEndpoint must be an https URL (http only with allowInsecureRequests, for local tests)',
      );
    }
  }

  const userinfo = options.userinfoEndpoint;
  return definePreset(
    {
      id: 'oauth2',
      displayName: new URL(options.tokenEndpoint).host,
      openid: false,
      server: {
        metadata: {
          issuer: options.issuer ?? new URL(options.tokenEndpoint).origin,
          authorization_endpoint: options.authorizationEndpoint,
          token_endpoint: options.tokenEndpoint,
          ...(options.revocationEndpoint === undefined
            ? {}
            : { revocation_endpoint: options.revocationEndpoint }),
        },
      },
      scopes: options.scopes,
      mail: options.mail,
      identify:
        options.identify ??
        (async (result, { fetch, signal }) => {
          const response = await fetch(userinfo as string, {
            headers: { authorization: `Bearer ${result.tokens.accessToken}`, accept: 'application/json' },
            ...(signal === undefined ? {} : { signal }),
          });
          if (!response.ok)
            throw Object.assign(new Error(`userinfo answered HTTP ${response.status}`), {
              status: response.status,
            });
          const body = (await response.json()) as { email?: unknown };
          return { email: typeof body.email === 'string' ? body.email : '' };
        }),
    },
    options,
  );
}
