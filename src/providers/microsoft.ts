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
  /**
   * How `auth.mailbox()` reaches the mailbox: `imap` (IMAP and SMTP; Outlook scopes) or `graph` (Microsoft
   * Graph; the consent asks for `Mail.ReadWrite` and `Mail.Send` on Graph instead, and the primary access token
   * is a Graph token, which the Graph transport uses as it is). Either way the account can get a Graph token
   * (`getAccessToken(id, { resource: 'graph' })`) when its consent covers Graph.
   * @default 'imap'
   */
  readonly mailTransport?: 'imap' | 'graph';
}

/**
 * Microsoft Graph mail scopes: the `graph` resource's token is refreshed with these, and
 * `mailTransport: 'graph'` asks for them at consent.
 *
 * @example
 * ```ts
 * microsoft({ clientId, clientSecret, redirectUri, extraScopes: [...MICROSOFT_GRAPH_SCOPES] }); // IMAP by default, Graph too
 * ```
 */
export const MICROSOFT_GRAPH_SCOPES: readonly string[] = Object.freeze([
  'https://graph.microsoft.com/Mail.ReadWrite',
  'https://graph.microsoft.com/Mail.Send',
]);

const OUTLOOK_SCOPES = [
  'https://outlook.office.com/IMAP.AccessAsUser.All',
  'https://outlook.office.com/SMTP.Send',
];

const TENANT = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;
const ISSUER = /^https:\/\/login\.microsoftonline\.com\/(\{tenantid\}|[0-9a-fA-F-]{36})\/v2\.0$/;

/**
 * Microsoft 365 / Outlook.com (Entra ID v2.0). Endpoints come from discovery on
 * `https://login.microsoftonline.com/<tenant>/v2.0`, so the multi-tenant `{tenantid}` issuer is accepted and
 * each id_token's `iss` is checked against its `tid`. The identity is read from the id_token (`email`, else
 * `preferred_username`). There is no revocation endpoint: disconnecting deletes the local tokens.
 *
 * One access token is for one resource: the primary token is Outlook's (IMAP, SMTP), or Graph's with
 * `mailTransport: 'graph'`; the `graph` resource (`getAccessToken(id, { resource: 'graph' })`) is a separate
 * token from the same refresh token, stored beside the primary one. The Graph transport uses the primary token
 * when the account's granted scopes say it is a Graph token (the first scope naming a resource is Graph's: an
 * account connected with `mailTransport: 'graph'`), else the `graph` resource token.
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
  const transport = options?.mailTransport ?? 'imap';
  if (transport !== 'imap' && transport !== 'graph') {
    throw new ConfigurationError(
      `microsoft: mailTransport must be "imap" or "graph" (got ${JSON.stringify(transport)?.slice(0, 40)})`,
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
      // The first scope decides the primary access token's resource: Outlook's IMAP and SMTP, or Graph.
      scopes: [
        ...(transport === 'graph' ? MICROSOFT_GRAPH_SCOPES : OUTLOOK_SCOPES),
        'offline_access',
        'openid',
        'email',
      ],
      mailTransport: transport,
      mailTransports: ['imap', 'graph'],
      resources: { graph: { scopes: [...MICROSOFT_GRAPH_SCOPES, 'offline_access'] } },
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
