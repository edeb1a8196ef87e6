import { ConfigurationError } from '../errors.js';
import { definePreset, type OpenIdClientProvider } from './base.js';
import type { ProviderDefinition } from './definition.js';
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
  userinfo: true,
  mail: {
    imap: { host: 'imap.gmail.com', port: 993, secure: true },
    smtp: { host: 'smtp.gmail.com', port: 465, secure: true },
    sasl: 'XOAUTH2',
  },
  mailTransport: 'imap',
  mailTransports: ['imap', 'gmail-api'],
};

/**
 * The scopes of the Gmail API transport: read and change labels (mark read) with `gmail.modify`, send with
 * `gmail.send`. Narrower than `https://mail.google.com/` (no permanent delete, no IMAP/SMTP).
 *
 * @example
 * ```ts
 * google({ clientId, clientSecret, redirectUri, mailTransport: 'gmail-api' }).scopes; // openid, email, ...GMAIL_API_SCOPES
 * ```
 */
export const GMAIL_API_SCOPES: readonly string[] = Object.freeze([
  'https://www.googleapis.com/auth/gmail.modify',
  'https://www.googleapis.com/auth/gmail.send',
]);

/**
 * Options of {@link google}.
 *
 * @example
 * ```ts
 * google({ clientId, clientSecret, redirectUri, mailTransport: 'gmail-api' });
 * ```
 */
export interface GoogleOptions extends ProviderOptions {
  /**
   * How `auth.mailbox()` reaches the mailbox: `imap` (IMAP and SMTP, scope `https://mail.google.com/`) or
   * `gmail-api` (the Gmail REST API, scopes `gmail.modify` and `gmail.send`: for Workspace domains whose admin
   * blocks IMAP). The default scopes follow the choice.
   * @default 'imap'
   */
  readonly mailTransport?: 'imap' | 'gmail-api';
}

/**
 * Gmail and Google Workspace. Requests `openid email https://mail.google.com/` with offline access, or with
 * `mailTransport: 'gmail-api'` the Gmail API scopes `gmail.modify` and `gmail.send` instead.
 *
 * @example
 * ```ts
 * import { google } from 'oauth-mailbox';
 * const provider = google({
 *   clientId: process.env.GOOGLE_CLIENT_ID!,
 *   clientSecret: process.env.GOOGLE_CLIENT_SECRET!,
 *   redirectUri: 'https://app.example.com/oauth/google/callback',
 *   mailTransport: 'gmail-api', // optional: read and send through the Gmail API instead of IMAP/SMTP
 * });
 * ```
 */
export function google(options: GoogleOptions): OpenIdClientProvider {
  const transport = options?.mailTransport ?? 'imap';
  if (transport !== 'imap' && transport !== 'gmail-api') {
    throw new ConfigurationError(
      `google: mailTransport must be "imap" or "gmail-api" (got ${JSON.stringify(transport)?.slice(0, 40)})`,
    );
  }
  if (transport === 'imap') return definePreset(GOOGLE, options);
  return definePreset(
    { ...GOOGLE, scopes: ['openid', 'email', ...GMAIL_API_SCOPES], mailTransport: 'gmail-api' },
    options,
  );
}
