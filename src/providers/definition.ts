/**
 * What a provider preset declares ({@link ProviderDefinition}: endpoints, scopes, mail servers, identity
 * rules) and the checks its values get when a provider is built from it.
 * @module
 */
import type * as client from 'openid-client';
import { ConfigurationError } from '../errors.js';
import { describeType } from '../internal/text.js';
import type { MailTransport } from '../transport-names.js';
import type { MailboxIdentity, MailSettings, ProviderResource, ProviderTokenResult } from './types.js';

/**
 * Where a provider's endpoints come from.
 *
 * @example
 * ```ts
 * const server: ProviderServer = { discovery: 'https://login.example.com' }; // or { metadata: { issuer, authorization_endpoint, token_endpoint } }
 * ```
 */
export type ProviderServer =
  | {
      /** The issuer or authority URL to run OpenID Connect / RFC 8414 discovery on (lazily, on first use). */
      readonly discovery: string;
    }
  | {
      /** Static server metadata (`issuer`, `authorization_endpoint`, `token_endpoint`, ...): no discovery. */
      readonly metadata: Readonly<client.ServerMetadata>;
    };

/**
 * The data of a preset: everything that makes Google Google. `definePreset` turns it into an
 * {@link OAuthProvider}.
 *
 * @example
 * ```ts
 * const acme: ProviderDefinition = { id: 'acme', displayName: 'Acme', openid: true, server: { discovery: 'https://id.acme.example' }, scopes: ['openid', 'email'], mail };
 * ```
 */
export interface ProviderDefinition {
  /** The default registry key, such as `google`. */
  readonly id: string;
  /** The default display name. */
  readonly displayName: string;
  /** An issuer or authority URL to discover, or static metadata. */
  readonly server: ProviderServer;
  /** Minimal scopes for mail. */
  readonly scopes: readonly string[];
  /** The provider's IMAP and SMTP servers and SASL mechanism. */
  readonly mail: MailSettings;
  /** OpenID Connect: send a nonce, require and verify an id_token. */
  readonly openid: boolean;
  /** Authorization query parameters always sent (such as `access_type=offline`). */
  readonly authorizationParameters?: Readonly<Record<string, string>>;
  /** id_token / userinfo claims that may hold the mailbox address, in order. @default ['email'] */
  readonly emailClaims?: readonly string[];
  /**
   * Take an `email` claim as the mailbox identity even when the provider marks it `email_verified: false`. Only
   * for a provider known never to verify addresses, where the claim is still the mailbox (say so in your preset's
   * documentation). Otherwise such an address could be one the user merely typed. @default false
   */
  readonly trustUnverifiedEmail?: boolean;
  /** Read the identity from the userinfo endpoint when the id_token has no email. @default false */
  readonly userinfo?: boolean;
  /** Check a discovered issuer (for authorities whose issuer differs from the discovery URL). */
  readonly acceptIssuer?: (issuer: string) => boolean;
  /** The transport `auth.mailbox()` uses by default. @default 'imap' */
  readonly mailTransport?: MailTransport;
  /** The transports the provider's accounts can use. @default ['imap'] */
  readonly mailTransports?: readonly MailTransport[];
  /** Extra resources with their own access tokens from the same refresh token (`graph` at Microsoft). */
  readonly resources?: Readonly<Record<string, ProviderResource>>;
  /** Read the identity yourself (plain OAuth 2.0 servers); replaces the claim lookup. */
  readonly identify?: (
    result: ProviderTokenResult,
    context: { readonly fetch: typeof fetch; readonly signal?: AbortSignal | undefined },
  ) => Promise<MailboxIdentity>;
}

/** Authorization request parameters the library owns: extra parameters may not set them. @internal */
export const RESERVED_PARAMETERS = new Set([
  'client_id',
  'redirect_uri',
  'response_type',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  // A request object would carry its own copy of all of the above (RFC 9101); response_mode=fragment would
  // hide the code from the server.
  'request',
  'request_uri',
  'response_mode',
]);

/** An absolute http(s) URL, or a `ConfigurationError` naming `name`. @internal */
export function checkUrl(value: unknown, name: string): URL {
  if (typeof value !== 'string')
    throw new ConfigurationError(`${name} must be an absolute URL string (got ${describeType(value)})`);
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new ConfigurationError(`${name} must be an absolute URL (got "${value.slice(0, 200)}")`, { cause });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigurationError(`${name} must use https: or http: (got ${url.protocol})`);
  }
  return url;
}

/** The tenant placeholder of a multi-tenant issuer (Microsoft Entra's common and organizations authorities). */
export const TENANT_PLACEHOLDER = '{tenantid}';

/** The issuers a multi-tenant template stands for: the placeholder replaced by a tenant id (a GUID). */
export function tenantIssuerPattern(template: string): RegExp {
  const [before = '', after = ''] = template.split(TENANT_PLACEHOLDER);
  const quote = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(
    `^${quote(before)}[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}${quote(after)}$`,
  );
}

/** Loopback hosts: the only ones plain http may reach, and only with `allowInsecureRequests`. */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** A token endpoint must be https; http only to a loopback host with `allowInsecureRequests` (local tests). */
export function checkTokenEndpoint(endpoint: unknown, id: string, insecure: boolean): void {
  let url: URL | undefined;
  try {
    url = typeof endpoint === 'string' ? new URL(endpoint) : undefined;
  } catch {
    url = undefined;
  }
  const ok =
    url !== undefined &&
    (url.protocol === 'https:' || (url.protocol === 'http:' && insecure && LOOPBACK.test(url.hostname)));
  if (!ok) {
    throw new ConfigurationError(
      `${id}: the token endpoint must be an https URL (plain http only to a loopback host with allowInsecureRequests, for local tests)`,
      { providerId: id },
    );
  }
}
