/**
 * Turns openid-client / fetch failures into typed errors, with causes scrubbed of anything secret.
 * @internal
 */
import * as client from 'openid-client';
import {
  AuthorizationDeniedError,
  AuthorizationResponseError,
  ConfigurationError,
  MailboxAuthError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  TokenExchangeError,
  TokenRefreshError,
} from '../errors.js';
import { parseRetryAfter } from '../http/retry-after.js';

/** Which call failed. */
export type ProviderPhase = 'discovery' | 'exchange' | 'refresh' | 'revoke' | 'userinfo';

/** A cause safe to keep: the name, code, message, HTTP status and OAuth error, nothing else. */
export class ProviderErrorCause extends Error {
  readonly code: string | undefined;
  readonly status: number | undefined;
  readonly error: string | undefined;
  constructor(source: Error, fields: { code?: string; status?: number; error?: string }) {
    super(source.message);
    this.name = source.name;
    this.code = fields.code;
    this.status = fields.status;
    this.error = fields.error;
    this.stack = source.stack;
  }
}

const CONFIG_ERRORS = new Set([
  'invalid_client',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
]);
const TRANSIENT_ERRORS = new Set(['temporarily_unavailable', 'server_error', 'slow_down']);
const NETWORK_CODES = new Set([
  // The library's HTTP client (src/http/node-fetch.ts): an oversized answer (an error page from a proxy,
  // say) or a broken TLS / HTTP exchange is the provider side misbehaving, not a misconfiguration.
  'ERR_RESPONSE_TOO_LARGE',
  'EPROTO',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

interface Facts {
  status: number | undefined;
  oauthError: string | undefined;
  retryAfterMs: number | undefined;
  network: boolean;
  timeout: boolean;
  malformed: boolean;
  idToken: boolean;
  /** Microsoft's `invalid_grant` for scopes the user never consented to (AADSTS65001, `consent_required`). */
  consentRequired: boolean;
  cause: ProviderErrorCause;
}

function facts(err: unknown): Facts {
  const e = err instanceof Error ? err : new Error(String(err));
  let status: number | undefined;
  let oauthError: string | undefined;
  let retryAfter: string | null | undefined;
  let network = false;
  let timeout = false;
  let malformed = false;
  let idToken = false;
  const code = (e as { code?: unknown }).code;
  let consentRequired = false;
  if (err instanceof client.ResponseBodyError) {
    status = err.status;
    oauthError = err.error;
    retryAfter = err.response.headers.get('retry-after');
    const body = err.cause as { suberror?: unknown; error_codes?: unknown } | undefined;
    consentRequired =
      body?.suberror === 'consent_required' ||
      (Array.isArray(body?.error_codes) && body.error_codes.includes(65001)) ||
      /^AADSTS65001\b/.test(err.error_description ?? '');
  } else if (err instanceof client.AuthorizationResponseError) {
    oauthError = err.error;
  } else if (err instanceof client.ClientError) {
    const inner = (err as { cause?: unknown }).cause;
    if (inner instanceof Response) {
      status = inner.status;
      retryAfter = inner.headers.get('retry-after');
    }
    if (code === 'OAUTH_TIMEOUT') timeout = true;
    if (
      code === 'OAUTH_RESPONSE_IS_NOT_JSON' ||
      code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' ||
      code === 'OAUTH_PARSE_ERROR' ||
      code === 'OAUTH_INVALID_RESPONSE'
    ) {
      malformed = true;
    }
    if (
      code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' ||
      code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED' ||
      code === 'OAUTH_KEY_SELECTION_FAILED' ||
      /JWS|JWT|signature|id_token/i.test(e.message)
    ) {
      idToken = !malformed || /id_token|JWT|JWS/i.test(e.message);
    }
  } else if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    timeout = true;
  } else if (e instanceof TypeError) {
    const causeCode = (e as { cause?: { code?: unknown } }).cause?.code;
    network =
      typeof causeCode === 'string'
        ? NETWORK_CODES.has(causeCode) || causeCode.startsWith('UND_ERR') || causeCode.startsWith('HPE_')
        : true;
  } else if (e instanceof SyntaxError) {
    malformed = true;
  }
  const causeFields: { code?: string; status?: number; error?: string } = {};
  if (typeof code === 'string') causeFields.code = code;
  if (status !== undefined) causeFields.status = status;
  if (oauthError !== undefined) causeFields.error = oauthError;
  return {
    status,
    oauthError,
    retryAfterMs: parseRetryAfter(retryAfter),
    network,
    timeout,
    malformed,
    idToken,
    consentRequired,
    cause: new ProviderErrorCause(e, causeFields),
  };
}

/** Map any failure of a provider call to a typed error. Already typed errors pass through. */
export function classifyProviderError(
  err: unknown,
  phase: ProviderPhase,
  context: { readonly providerId: string; readonly signal?: AbortSignal | undefined },
): unknown {
  if (err instanceof MailboxAuthError) return err;
  if (context.signal?.aborted) return context.signal.reason;
  const f = facts(err);
  const base = { providerId: context.providerId, cause: f.cause };
  const where = `${context.providerId} ${phase}`;
  const transient =
    f.network ||
    f.timeout ||
    (f.status !== undefined && (f.status >= 500 || f.status === 429 || f.status === 408)) ||
    (f.oauthError !== undefined && TRANSIENT_ERRORS.has(f.oauthError));
  const detail = [
    f.oauthError,
    f.status === undefined ? undefined : `HTTP ${f.status}`,
    f.network ? 'network error' : undefined,
    f.timeout ? 'timeout' : undefined,
    f.malformed && f.status === undefined && !f.oauthError ? 'malformed response' : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  const suffix = detail ? ` (${detail})` : '';

  if (f.oauthError !== undefined && CONFIG_ERRORS.has(f.oauthError) && phase !== 'revoke') {
    return new ConfigurationError(
      `The provider rejected the OAuth client configuration during ${where}${suffix}`,
      base,
    );
  }
  switch (phase) {
    case 'discovery':
      return transient || f.malformed
        ? new ProviderUnavailableError(
            `Discovery failed for ${context.providerId}${suffix}; it is retried on next use`,
            base,
          )
        : new ConfigurationError(`Discovery failed for ${context.providerId}${suffix}`, base);
    case 'exchange':
      if (f.oauthError === 'access_denied')
        return new AuthorizationDeniedError('The user declined the authorization', base);
      if (err instanceof client.AuthorizationResponseError) {
        return new AuthorizationResponseError(`The provider returned an error${suffix}`, {
          ...base,
          ...(f.oauthError === undefined ? {} : { oauthError: f.oauthError }),
        });
      }
      return new TokenExchangeError(
        f.idToken && !transient
          ? `The id_token from ${context.providerId} is invalid: ${f.cause.message}`
          : `The code exchange with ${context.providerId} failed${suffix}`,
        {
          ...base,
          ...(f.oauthError === undefined ? {} : { oauthError: f.oauthError }),
          ...(f.status === undefined ? {} : { status: f.status }),
        },
      );
    case 'refresh':
      if (f.oauthError === 'invalid_grant' && f.consentRequired) {
        return new ReauthorizationRequiredError(
          `The user has not consented to the requested scopes (consent_required): connect the mailbox again asking for them`,
          { ...base, consentRequired: true },
        );
      }
      if (f.oauthError === 'invalid_grant') {
        return new ReauthorizationRequiredError(
          `The refresh token was revoked or has expired (invalid_grant); the mailbox must be connected again`,
          base,
        );
      }
      if (transient || f.malformed) {
        return new TokenRefreshError(`Token refresh with ${context.providerId} failed${suffix}`, {
          ...base,
          ...(f.retryAfterMs === undefined ? {} : { retryAfterMs: f.retryAfterMs }),
          ...(f.status === undefined ? {} : { status: f.status }),
        });
      }
      return new ConfigurationError(`Token refresh with ${context.providerId} was refused${suffix}`, base);
    default:
      return transient
        ? new ProviderUnavailableError(`${where} failed${suffix}`, base)
        : new TokenExchangeError(`${where} failed${suffix}`, {
            ...base,
            ...(f.status === undefined ? {} : { status: f.status }),
          });
  }
}
