import { definePreset, type OpenIdClientProvider } from './base.js';
import type { ProviderOptions } from './types.js';

/**
 * Yahoo Mail (and AOL, with `mail` overridden). Static metadata: Yahoo's discovery names another issuer
 * than the one its id_tokens carry. IMAP uses OAUTHBEARER.
 *
 * @example
 * ```ts
 * import { yahoo } from 'oauth-mailbox';
 * const provider = yahoo({ clientId, clientSecret, redirectUri: 'https://app.example.com/oauth/yahoo/callback' });
 * ```
 */
export function yahoo(options: ProviderOptions): OpenIdClientProvider {
  return definePreset(
    {
      id: 'yahoo',
      displayName: 'Yahoo',
      openid: true,
      server: {
        metadata: {
          issuer: 'https://api.login.yahoo.com',
          authorization_endpoint: 'https://api.login.yahoo.com/oauth2/request_auth',
          token_endpoint: 'https://api.login.yahoo.com/oauth2/get_token',
          userinfo_endpoint: 'https://api.login.yahoo.com/openid/v1/userinfo',
          jwks_uri: 'https://api.login.yahoo.com/openid/v1/certs',
        },
      },
      scopes: ['openid', 'email', 'mail-w'],
      userinfo: true,
      mail: {
        imap: { host: 'imap.mail.yahoo.com', port: 993, secure: true },
        smtp: { host: 'smtp.mail.yahoo.com', port: 465, secure: true },
        sasl: 'OAUTHBEARER',
      },
    },
    options,
  );
}
