import { ConfigurationError } from '../errors.js';
import { definePreset, type OpenIdClientProvider } from './base.js';
import type { ProviderOptions } from './types.js';

/**
 * Options of {@link microsoft}.
 *
 * @example
 * ```ts
 * microsoft({ clientId, clientSecret, redirectUri, tenant: 'organizations' });
 * ```
 */
export interface MicrosoftOptions extends ProviderOptions {
  /**
   * Who may sign in: `common` (work, school and personal accounts), `organizations`, `consumers`, or one
   * tenant's id or domain.
   * @default 'common'
   */
  readonly tenant?: string;
}

const TENANT = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;
const ISSUER = /^https:\/\/login\.microsoftonline\.com\/(\{tenantid\}|[0-9a-fA-F-]{36})\/v2\.0$/;

/**
 * Microsoft 365 / Outlook.com (Entra ID v2.0). Endpoints come from discovery on
 * `https://login.microsoftonline.com/<tenant>/v2.0`, so the multi-tenant `{tenantid}` issuer is accepted and
 * each id_token's `iss` is checked against its `tid`. The identity is read from the id_token (`email`, else
 * `preferred_username`). There is no revocation endpoint: disconnecting deletes the local tokens.
 *
 * @example
 * ```ts
 * import { microsoft } from 'oauth-mailbox';
 * const provider = microsoft({
 *   clientId: process.env.MS_CLIENT_ID!,
 *   clientSecret: process.env.MS_CLIENT_SECRET!,
 *   redirectUri: 'https://app.example.com/oauth/microsoft/callback',
 *   tenant: 'common',
 * });
 * ```
 */
export function microsoft(options: MicrosoftOptions): OpenIdClientProvider {
  const tenant = options?.tenant ?? 'common';
  if (typeof tenant !== 'string' || !TENANT.test(tenant)) {
    throw new ConfigurationError(
      'microsoft: tenant must be "common", "organizations", "consumers", a tenant id or a tenant domain',
    );
  }
  return definePreset(
    {
      id: 'microsoft',
      displayName: 'Microsoft',
      openid: true,
      server: { discovery: `https://login.microsoftonline.com/${tenant}/v2.0` },
      // openid-client relaxes its issuer check for Entra's multi-tenant `{tenantid}` issuer: keep it on
      // Microsoft's authority.
      acceptIssuer: (issuer) => ISSUER.test(issuer),
      // The first scope decides the access token's resource: Outlook's IMAP and SMTP.
      scopes: [
        'https://outlook.office.com/IMAP.AccessAsUser.All',
        'https://outlook.office.com/SMTP.Send',
        'offline_access',
        'openid',
        'email',
      ],
      emailClaims: ['email', 'preferred_username'],
      mail: {
        imap: { host: 'outlook.office365.com', port: 993, secure: true },
        smtp: { host: 'smtp.office365.com', port: 587, secure: false },
        sasl: 'XOAUTH2',
      },
    },
    options,
  );
}
