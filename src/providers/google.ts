import { definePreset, type OpenIdClientProvider, type ProviderDefinition } from './base.js';
import type { ProviderOptions } from './types.js';

/**
 * The Google preset's fixed data: static metadata (no discovery round trip), Gmail's servers.
 *
 * @example
 * ```ts
 * const gmailEu = definePreset({ ...GOOGLE, id: 'google-eu', displayName: 'Gmail (EU)' }, options);
 * ```
 */
export const GOOGLE: ProviderDefinition = {
  id: 'google',
  displayName: 'Google',
  openid: true,
  server: {
    metadata: {
      issuer: 'https://accounts.google.com',
      authorization_endpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
      token_endpoint: 'https://oauth2.googleapis.com/token',
      revocation_endpoint: 'https://oauth2.googleapis.com/revoke',
      userinfo_endpoint: 'https://openidconnect.googleapis.com/v1/userinfo',
      jwks_uri: 'https://www.googleapis.com/oauth2/v3/certs',
    },
  },
  // Full IMAP/SMTP access needs https://mail.google.com/; openid + email identify the mailbox.
  scopes: ['openid', 'email', 'https://mail.google.com/'],
  // A refresh token is only issued with offline access; prompt=consent gets one on every connect.
  authorizationParameters: { access_type: 'offline', prompt: 'consent' },
  emailClaims: ['email'],
  userinfo: true,
  mail: {
    imap: { host: 'imap.gmail.com', port: 993, secure: true },
    smtp: { host: 'smtp.gmail.com', port: 465, secure: true },
    sasl: 'XOAUTH2',
  },
};

/**
 * Gmail and Google Workspace. Requests `openid email https://mail.google.com/` with offline access.
 *
 * @example
 * ```ts
 * import { google } from 'oauth-mailbox';
 * const provider = google({
 *   clientId: process.env.GOOGLE_CLIENT_ID!,
 *   clientSecret: process.env.GOOGLE_CLIENT_SECRET!,
 *   redirectUri: 'https://app.example.com/oauth/google/callback',
 * });
 * ```
 */
export function google(options: ProviderOptions): OpenIdClientProvider {
  return definePreset(GOOGLE, options);
}
