import { ConfigurationError } from '../errors.js';
import { definePreset, type OpenIdClientProvider } from './base.js';
import type { MailSettings, ProviderOptions } from './types.js';

/**
 * Options of {@link oidc}.
 *
 * @example
 * ```ts
 * oidc({ issuer: 'https://id.example.com', clientId, clientSecret, redirectUri, mail });
 * ```
 */
export interface OidcOptions extends ProviderOptions {
  /** The issuer URL; its `/.well-known/openid-configuration` is discovered on first use. */
  readonly issuer: string;
  /** The provider's mail servers. */
  readonly mail: MailSettings;
  /**
   * Scopes requested besides `openid email offline_access`.
   * @default []
   */
  readonly extraScopes?: readonly string[];
}

/**
 * Any OpenID Connect provider, by discovery. Requests `openid email offline_access` (plus `extraScopes`)
 * with `prompt=consent`, verifies the id_token and its nonce, and reads the email from the id_token or the
 * userinfo endpoint.
 *
 * @example
 * ```ts
 * import { oidc } from 'oauth-mailbox';
 * const provider = oidc({
 *   id: 'acme', displayName: 'Acme Mail',
 *   issuer: 'https://login.acme.example',
 *   clientId, clientSecret, redirectUri: 'https://app.example.com/oauth/acme/callback',
 *   mail: { imap: { host: 'imap.acme.example', port: 993, secure: true }, smtp: { host: 'smtp.acme.example', port: 465, secure: true }, sasl: 'XOAUTH2' },
 * });
 * ```
 */
export function oidc(options: OidcOptions): OpenIdClientProvider {
  if (typeof options?.issuer !== 'string') throw new ConfigurationError('oidc: issuer must be a URL string');
  if (typeof options.mail?.imap !== 'object' || typeof options.mail.smtp !== 'object') {
    throw new ConfigurationError('oidc: mail must give the imap and smtp servers and the sasl mechanism');
  }
  return definePreset(
    {
      id: 'oidc',
      displayName: new URL(options.issuer).host,
      openid: true,
      server: { discovery: options.issuer },
      scopes: ['openid', 'email', 'offline_access'],
      authorizationParameters: { prompt: 'consent' },
      userinfo: true,
      mail: options.mail,
    },
    options,
  );
}
