/**
 * Typed errors. Every failure the library reports is a {@link MailboxAuthError} subclass with a stable
 * {@link MailboxAuthErrorCode}, the original `cause` kept (non-enumerable), and a message that never
 * contains a token, refresh token, authorization code, PKCE verifier or key.
 *
 * `JSON.stringify(err)` and `util.inspect(err)` show the code, message and a one-line summary of each
 * cause (name, code, message, HTTP status) but never the cause's own properties, which for third-party
 * errors (an OAuth response body, a driver error) can hold secrets.
 *
 * @module
 */

import { inspect } from 'node:util';
import type { MailTransport } from './transport-names.js';

/**
 * Every stable error code. Group them with {@link errorCategory}:
 * - transient (retry later): `ERR_TOKEN_REFRESH_FAILED`, `ERR_PROVIDER_UNAVAILABLE`, `ERR_STORAGE`,
 *   `ERR_VERSION_CONFLICT`, `ERR_MAIL_CONNECTION_FAILED`
 * - re-authorization (ask the user to reconnect): `ERR_REAUTHORIZATION_REQUIRED`, `ERR_TOKEN_EXPIRED`,
 *   `ERR_MAIL_AUTHENTICATION_FAILED`
 * - configuration (tell the operator): `ERR_CONFIGURATION`, `ERR_UNKNOWN_PROVIDER`, `ERR_CRYPTO`
 * - request (the caller or the end user sent something wrong): `ERR_INVALID_ARGUMENT`, `ERR_INVALID_STATE`,
 *   `ERR_AUTHORIZATION_DENIED`, `ERR_AUTHORIZATION_RESPONSE_INVALID`, `ERR_TOKEN_EXCHANGE_FAILED`,
 *   `ERR_ACCOUNT_NOT_FOUND`, `ERR_MAIL_REQUEST_REJECTED`, `ERR_CLOSED`
 *
 * @example
 * ```ts
 * import { isMailboxAuthError } from 'oauth-mailbox';
 * try { await auth.getAccessToken(id) } catch (err) {
 *   if (isMailboxAuthError(err, 'ERR_REAUTHORIZATION_REQUIRED')) askUserToReconnect();
 * }
 * ```
 */
export type MailboxAuthErrorCode = keyof typeof ERROR_TABLE;

/**
 * What a caller should do about an error, derived from its code.
 *
 * @example
 * ```ts
 * if (err instanceof MailboxAuthError && err.category === 'transient') scheduleRetry(err.retryAfterMs);
 * ```
 */
export type ErrorCategory = 'transient' | 'reauthorization' | 'configuration' | 'request';

/**
 * The category of an error code.
 *
 * @example
 * ```ts
 * errorCategory('ERR_PROVIDER_UNAVAILABLE'); // 'transient'
 * ```
 */
export function errorCategory(code: MailboxAuthErrorCode): ErrorCategory {
  return ERROR_TABLE[code].category;
}

/**
 * Options shared by every error constructor.
 *
 * @example
 * ```ts
 * throw new StorageError('The store failed', { cause: driverError, accountId, operation: 'getAccount' });
 * ```
 */
export interface MailboxAuthErrorOptions {
  /** The underlying error. Kept as a non-enumerable `cause`; only summarized when serialized. */
  readonly cause?: unknown;
  /** The account the failure concerns, when there is one. */
  readonly accountId?: string;
  /** The provider id the failure concerns, when there is one. */
  readonly providerId?: string;
}

/**
 * A summary of a cause that is safe to log: no properties beyond these are ever read.
 *
 * @example
 * ```ts
 * const { causes } = JSON.parse(JSON.stringify(err)) as { causes?: CauseSummary[] };
 * ```
 */
export interface CauseSummary {
  /** The cause's class name, such as `ResponseBodyError`. */
  readonly name?: string;
  /** The cause's `code` when it is a string (`ECONNRESET`, `OAUTH_TIMEOUT`, an error code of this library). */
  readonly code?: string;
  /** The cause's message. */
  readonly message?: string;
  /** The cause's HTTP `status` when it has one. */
  readonly status?: number;
}

function summarizeCause(cause: unknown, depth = 0): CauseSummary[] {
  if (cause === undefined || cause === null || depth > 4) return [];
  if (cause instanceof MailboxAuthError) {
    return [
      { name: cause.name, code: cause.code, message: cause.message },
      ...summarizeCause(cause.cause, depth + 1),
    ];
  }
  if (cause instanceof Error) {
    const rec = cause as Error & { code?: unknown; status?: unknown };
    const summary: { name: string; message: string; code?: string; status?: number } = {
      name: cause.name,
      message: cause.message,
    };
    if (typeof rec.code === 'string') summary.code = rec.code;
    if (typeof rec.status === 'number') summary.status = rec.status;
    return [summary, ...summarizeCause((cause as { cause?: unknown }).cause, depth + 1)];
  }
  return [{ name: typeof cause }];
}

/** Marks errors of this library across copies of it (ESM and CJS builds, a CLI bundle, two versions). */
const BRAND = Symbol.for('oauth-mailbox.MailboxAuthError');

/**
 * A class's error name: its own `errorName` (a string literal that survives minification), else its class
 * name (a host's subclass that declares none is not mistaken for its parent).
 */
function classErrorName(target: { readonly name: string; readonly errorName?: string }): string {
  return Object.hasOwn(target, 'errorName') && target.errorName !== undefined
    ? target.errorName
    : target.name;
}

/**
 * The base class of every error this library throws. Catch it, then switch on `code`.
 *
 * `instanceof` works across copies of the library (its ESM and CJS builds loaded side by side, say): it
 * checks a global brand and the class name, not the prototype chain.
 *
 * @example
 * ```ts
 * import { MailboxAuthError } from 'oauth-mailbox';
 * try { await persistence.load(id) } catch (err) {
 *   if (err instanceof MailboxAuthError) console.error(err.code, err.message); // never a secret
 * }
 * ```
 */
export abstract class MailboxAuthError extends Error {
  /** The stable code of this failure. */
  abstract readonly code: MailboxAuthErrorCode;
  /** Whether repeating the same call later may succeed. */
  readonly retryable: boolean;
  /** The account concerned, if any. */
  readonly accountId: string | undefined;
  /** The provider concerned, if any. */
  readonly providerId: string | undefined;

  /**
   * The class name as a string literal: a bundler that minifies class names (Next.js, esbuild with
   * `minify`) must not change `error.name` or break `instanceof` across copies.
   * @internal
   */
  static readonly errorName: string = 'MailboxAuthError';

  /**
   * The code of every error of this class, to compare without an instance (as jose's errors have it):
   * `StorageError.code === 'ERR_STORAGE'`. `undefined` on this base class.
   */
  static readonly code: MailboxAuthErrorCode | undefined;

  /** @internal */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null || (value as Record<symbol, unknown>)[BRAND] !== true)
      return false;
    // `this` is the class `instanceof` was asked about (a subclass, or the base itself).
    // biome-ignore lint/complexity/noThisInStatic: the subclass is the point
    return this === MailboxAuthError || (value as { name?: unknown }).name === classErrorName(this);
  }

  constructor(message: string, options: MailboxAuthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Object.defineProperty(this, BRAND, { value: true });
    this.name = classErrorName(new.target);
    // The class's static code: set here, where the subclasses' own `code` fields used to be defined (the
    // order of the own keys stays); `retryable` from its row of the table.
    const code = new.target.code;
    if (code !== undefined) (this as { code: MailboxAuthErrorCode }).code = code;
    this.retryable = code !== undefined && ERROR_TABLE[code]?.retryable === true;
    this.accountId = options.accountId;
    this.providerId = options.providerId;
  }

  /** What the caller should do: retry, ask the user to reconnect, fix configuration, or fix the request. */
  get category(): ErrorCategory {
    return errorCategory(this.code);
  }

  /** A JSON view with the code, message and a summary of causes; never a secret. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      name: this.name,
      code: this.code,
      category: this.category,
      message: this.message,
      retryable: this.retryable,
    };
    for (const [key, value] of Object.entries(this)) {
      if (value !== undefined && !(key in out)) out[key] = value;
    }
    const causes = summarizeCause(this.cause);
    if (causes.length > 0) out.causes = causes;
    return out;
  }

  /** @internal */
  [inspect.custom](): string {
    const head = `${this.stack ?? `${this.name}: ${this.message}`}`;
    const fields = { ...this.toJSON() };
    delete fields.name;
    delete fields.message;
    return `${head}\n  ${inspect(fields, { depth: 4, breakLength: 100 }).replace(/\n/g, '\n  ')}`;
  }
}

/**
 * Is `err` a {@link MailboxAuthError}, optionally with the given code? With a code, it narrows to that
 * code's class.
 *
 * @example
 * ```ts
 * if (isMailboxAuthError(err, 'ERR_CRYPTO')) console.error(err.reason, err.keyId);
 * ```
 */
export function isMailboxAuthError<C extends MailboxAuthErrorCode = MailboxAuthErrorCode>(
  err: unknown,
  code?: C,
): err is MailboxAuthErrorByCode[C] {
  return err instanceof MailboxAuthError && (code === undefined || err.code === code);
}

/**
 * The library is configured wrongly (bad key, missing option, invalid redirect URI, OAuth client rejected
 * by the provider). Tell the operator; retrying will not help.
 *
 * @example
 * ```ts
 * aesGcmCipher({ keys: { k1: 'short' }, current: 'k1' }); // throws ConfigurationError
 * ```
 */
export class ConfigurationError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'ConfigurationError';
  static override readonly code = 'ERR_CONFIGURATION' as const;
  declare readonly code: typeof ConfigurationError.code;
}

/**
 * A function was called with an invalid argument. Nothing stored was changed.
 *
 * @example
 * ```ts
 * await store.listAccounts({}, { limit: -1 }); // throws InvalidArgumentError
 * ```
 */
export class InvalidArgumentError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'InvalidArgumentError';
  static override readonly code = 'ERR_INVALID_ARGUMENT' as const;
  declare readonly code: typeof InvalidArgumentError.code;
}

/**
 * No provider is registered under the requested id.
 *
 * @example
 * ```ts
 * throw new UnknownProviderError('No provider is registered as "gmail"', { providerId: 'gmail' });
 * ```
 */
export class UnknownProviderError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'UnknownProviderError';
  static override readonly code = 'ERR_UNKNOWN_PROVIDER' as const;
  declare readonly code: typeof UnknownProviderError.code;
}

/**
 * Why an authorization `state` was refused.
 *
 * @example
 * ```ts
 * if (err instanceof InvalidStateError && err.reason === 'owner_mismatch') logSecurityEvent();
 * ```
 */
export type InvalidStateReason =
  | 'missing'
  | 'malformed'
  | 'not_found'
  | 'expired'
  | 'owner_mismatch'
  | 'provider_mismatch';

/**
 * The `state` of an authorization callback is missing, malformed, unknown, expired, already used, or
 * belongs to another owner or provider. Restart the authorization.
 *
 * @example
 * ```ts
 * throw new InvalidStateError('The state is unknown, expired or already used', { reason: 'not_found' });
 * ```
 */
export class InvalidStateError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'InvalidStateError';
  static override readonly code = 'ERR_INVALID_STATE' as const;
  declare readonly code: typeof InvalidStateError.code;
  /** Why the state was refused. */
  readonly reason: InvalidStateReason;
  constructor(message: string, options: MailboxAuthErrorOptions & { readonly reason: InvalidStateReason }) {
    super(message, options);
    this.reason = options.reason;
  }
}

/**
 * The user declined consent (`error=access_denied`). Show a friendly message; nothing was stored.
 *
 * @example
 * ```ts
 * if (err instanceof AuthorizationDeniedError) redirect('/settings?status=cancelled');
 * ```
 */
export class AuthorizationDeniedError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'AuthorizationDeniedError';
  static override readonly code = 'ERR_AUTHORIZATION_DENIED' as const;
  declare readonly code: typeof AuthorizationDeniedError.code;
}

/**
 * The provider's authorization response is invalid: an OAuth error other than `access_denied`, a
 * missing code, a mismatched `iss`, or oversized parameters.
 *
 * @example
 * ```ts
 * if (err instanceof AuthorizationResponseError) console.warn(err.oauthError); // e.g. 'invalid_scope'
 * ```
 */
export class AuthorizationResponseError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'AuthorizationResponseError';
  static override readonly code = 'ERR_AUTHORIZATION_RESPONSE_INVALID' as const;
  declare readonly code: typeof AuthorizationResponseError.code;
  /** The OAuth `error` parameter, when the provider sent one. */
  readonly oauthError: string | undefined;
  constructor(message: string, options: MailboxAuthErrorOptions & { readonly oauthError?: string } = {}) {
    super(message, options);
    this.oauthError = options.oauthError;
  }
}

/**
 * Exchanging the authorization code for tokens failed (token endpoint error, invalid id_token, missing
 * refresh token or email). Restart the authorization; check configuration if it persists.
 *
 * @example
 * ```ts
 * if (err instanceof TokenExchangeError) console.warn(err.oauthError, err.status);
 * ```
 */
export class TokenExchangeError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'TokenExchangeError';
  static override readonly code = 'ERR_TOKEN_EXCHANGE_FAILED' as const;
  declare readonly code: typeof TokenExchangeError.code;
  /** The OAuth `error` code from the token endpoint, when there was one. */
  readonly oauthError: string | undefined;
  /** The HTTP status of the token endpoint, when there was one. */
  readonly status: number | undefined;
  constructor(
    message: string,
    options: MailboxAuthErrorOptions & { readonly oauthError?: string; readonly status?: number } = {},
  ) {
    super(message, options);
    this.oauthError = options.oauthError;
    this.status = options.status;
  }
}

/**
 * The access token has expired and cannot be renewed here (no refresh token is stored).
 *
 * @example
 * ```ts
 * throw new TokenExpiredError('The access token expired and no refresh token is stored', { accountId });
 * ```
 */
export class TokenExpiredError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'TokenExpiredError';
  static override readonly code = 'ERR_TOKEN_EXPIRED' as const;
  declare readonly code: typeof TokenExpiredError.code;
}

/**
 * A token refresh failed for a transient reason (network, timeout, HTTP 5xx or 429). Retry later, after
 * `retryAfterMs` when it is known.
 *
 * @example
 * ```ts
 * if (err instanceof TokenRefreshError) setTimeout(retry, err.retryAfterMs ?? 30_000);
 * ```
 */
export class TokenRefreshError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'TokenRefreshError';
  static override readonly code = 'ERR_TOKEN_REFRESH_FAILED' as const;
  declare readonly code: typeof TokenRefreshError.code;
  /** How long the provider asked us to wait, in milliseconds, when it said (`Retry-After`). */
  readonly retryAfterMs: number | undefined;
  /** The HTTP status of the token endpoint, when there was one. */
  readonly status: number | undefined;
  constructor(
    message: string,
    options: MailboxAuthErrorOptions & { readonly retryAfterMs?: number; readonly status?: number } = {},
  ) {
    super(message, options);
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
  }
}

/**
 * The refresh token was revoked or expired (`invalid_grant`): the user must connect the mailbox again.
 * Later calls fail fast with this error until the account is reconnected.
 *
 * @example
 * ```ts
 * if (err instanceof ReauthorizationRequiredError) notifyUser(err.accountId);
 * ```
 */
export class ReauthorizationRequiredError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'ReauthorizationRequiredError';
  static override readonly code = 'ERR_REAUTHORIZATION_REQUIRED' as const;
  declare readonly code: typeof ReauthorizationRequiredError.code;
  /**
   * The refresh token is fine but the user never consented to the scopes asked for (Microsoft's
   * `consent_required`, say for a Graph token of an account connected for IMAP): connect the mailbox again
   * asking for them. The account itself stays usable for what it was consented to.
   */
  readonly consentRequired: boolean;

  constructor(
    message: string,
    options: MailboxAuthErrorOptions & { readonly consentRequired?: boolean } = {},
  ) {
    super(message, options);
    this.consentRequired = options.consentRequired === true;
  }
}

/**
 * The provider is considered down (its circuit breaker is open); the call was not attempted.
 *
 * @example
 * ```ts
 * if (err instanceof ProviderUnavailableError) retryIn(err.retryAfterMs);
 * ```
 */
export class ProviderUnavailableError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'ProviderUnavailableError';
  static override readonly code = 'ERR_PROVIDER_UNAVAILABLE' as const;
  declare readonly code: typeof ProviderUnavailableError.code;
  /** Milliseconds until the provider will be tried again, when known. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: MailboxAuthErrorOptions & { readonly retryAfterMs?: number } = {}) {
    super(message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The store failed (connection lost, query error). Never reported as "not found". Usually transient.
 *
 * @example
 * ```ts
 * if (err instanceof StorageError) console.error('store down', err.operation);
 * ```
 */
export class StorageError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'StorageError';
  static override readonly code = 'ERR_STORAGE' as const;
  declare readonly code: typeof StorageError.code;
  /** The store operation that failed, such as `getAccount`. */
  readonly operation: string | undefined;
  constructor(message: string, options: MailboxAuthErrorOptions & { readonly operation?: string } = {}) {
    super(message, options);
    this.operation = options.operation;
  }
}

/**
 * A write lost an optimistic-concurrency race: the record changed since it was read (or a record with the
 * same id or mailbox identity already exists). Re-read and try again.
 *
 * @example
 * ```ts
 * if (err instanceof VersionConflictError) { const fresh = await store.getAccount(id); ... }
 * ```
 */
export class VersionConflictError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'VersionConflictError';
  static override readonly code = 'ERR_VERSION_CONFLICT' as const;
  declare readonly code: typeof VersionConflictError.code;
  /** The version the writer expected (`null`: it expected no record). */
  readonly expectedVersion: number | null | undefined;
  /** The version found in the store (`null`: no record), when known. */
  readonly actualVersion: number | null | undefined;
  constructor(
    message: string,
    options: MailboxAuthErrorOptions & {
      readonly expectedVersion?: number | null;
      readonly actualVersion?: number | null;
    } = {},
  ) {
    super(message, options);
    this.expectedVersion = options.expectedVersion;
    this.actualVersion = options.actualVersion;
  }
}

/**
 * Why a cipher refused a value.
 *
 * @example
 * ```ts
 * if (err instanceof CryptoError && err.reason === 'unknown_key') restoreKey(err.keyId);
 * ```
 */
export type CryptoErrorReason = 'invalid_key' | 'unknown_key' | 'malformed' | 'decrypt_failed' | 'expired';

/**
 * A value could not be decrypted: unknown key id, wrong key, tampered or truncated envelope, or a value
 * bound to another account. Never garbage plaintext.
 *
 * @example
 * ```ts
 * if (err instanceof CryptoError && err.reason === 'unknown_key') alertOperator('a decryption key is missing');
 * ```
 */
export class CryptoError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'CryptoError';
  static override readonly code = 'ERR_CRYPTO' as const;
  declare readonly code: typeof CryptoError.code;
  /** What went wrong. */
  readonly reason: CryptoErrorReason;
  /** The key id named by the envelope, when it could be read. */
  readonly keyId: string | undefined;
  constructor(
    message: string,
    options: MailboxAuthErrorOptions & { readonly reason: CryptoErrorReason; readonly keyId?: string },
  ) {
    super(message, options);
    this.reason = options.reason;
    this.keyId = options.keyId;
  }
}

/**
 * No account exists with this id.
 *
 * @example
 * ```ts
 * if (err instanceof AccountNotFoundError) res.status(404).end();
 * ```
 */
export class AccountNotFoundError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'AccountNotFoundError';
  static override readonly code = 'ERR_ACCOUNT_NOT_FOUND' as const;
  declare readonly code: typeof AccountNotFoundError.code;
}

/**
 * The way a mailbox is reached: a {@link MailTransport} (IMAP, the Gmail API, Microsoft Graph, or a host's
 * transport), or SMTP (the sending half of the `imap` transport).
 *
 * @example
 * ```ts
 * if (err instanceof MailConnectionError && err.protocol === 'graph') metrics.inc('graph_unavailable');
 * ```
 */
export type MailProtocol = MailTransport | 'smtp';

/** Options of the mail errors: which protocol failed, and for the HTTP APIs the status and the API's code. */
type MailErrorOptions = MailboxAuthErrorOptions & {
  readonly protocol?: MailProtocol;
  readonly status?: number;
  readonly apiCode?: string;
};

/**
 * What the three mail errors share: which protocol failed, and for the HTTP APIs the status and the API's
 * own code.
 */
abstract class MailError extends MailboxAuthError {
  /** Which protocol failed or refused (for a {@link MailRequestError}, which API refused the request). */
  readonly protocol: MailProtocol | undefined;
  /** The HTTP status (Gmail API, Graph), when there was one. */
  readonly status: number | undefined;
  /**
   * The API's own error code or reason (`authError`, `InvalidAuthenticationToken`, `notFound`,
   * `ErrorItemNotFound`, `invalidArgument`, ...), when it sent one.
   */
  readonly apiCode: string | undefined;
  constructor(message: string, options: MailErrorOptions = {}) {
    super(message, options);
    this.protocol = options.protocol;
    this.status = options.status;
    this.apiCode = options.apiCode;
  }
}

/**
 * The IMAP or SMTP server, or the Gmail API / Microsoft Graph, rejected the OAuth access token even after a
 * forced refresh, or refused it for lack of a scope (HTTP 403).
 *
 * @example
 * ```ts
 * if (err instanceof MailAuthenticationError) console.warn(err.protocol, err.accountId);
 * ```
 */
export class MailAuthenticationError extends MailError {
  /** @internal */
  static override readonly errorName = 'MailAuthenticationError';
  static override readonly code = 'ERR_MAIL_AUTHENTICATION_FAILED' as const;
  declare readonly code: typeof MailAuthenticationError.code;
}

/**
 * The IMAP or SMTP server could not be reached or the connection failed (refused, timeout, TLS), or the Gmail
 * API / Microsoft Graph stayed throttled or unavailable (429, 5xx) after the bounded retries. Retry later,
 * after `retryAfterMs` when it is known; check host, port and TLS settings if it persists.
 *
 * @example
 * ```ts
 * if (err instanceof MailConnectionError) scheduleReconnect(err.protocol, err.retryAfterMs);
 * ```
 */
export class MailConnectionError extends MailError {
  /** @internal */
  static override readonly errorName = 'MailConnectionError';
  static override readonly code = 'ERR_MAIL_CONNECTION_FAILED' as const;
  declare readonly code: typeof MailConnectionError.code;
  /** How long the API asked us to wait, in milliseconds (`Retry-After`), when it said. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: MailErrorOptions & { readonly retryAfterMs?: number } = {}) {
    super(message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The Gmail API or Microsoft Graph refused a request for a reason other than the token or throttling: an
 * unknown or deleted message id (404), a message the API will not send (400: bad recipient, too large),
 * a conflict. Retrying the same request will not help.
 *
 * @example
 * ```ts
 * try { await mailbox.markAsRead(id) } catch (err) {
 *   if (err instanceof MailRequestError && err.status === 404) return; // the message is gone
 *   throw err;
 * }
 * ```
 */
export class MailRequestError extends MailError {
  /** @internal */
  static override readonly errorName = 'MailRequestError';
  static override readonly code = 'ERR_MAIL_REQUEST_REJECTED' as const;
  declare readonly code: typeof MailRequestError.code;
}

/**
 * The object was closed (`auth.close()`): it starts no new work. Create a new one to go on; retrying the
 * same call on the closed one will not help.
 *
 * @example
 * ```ts
 * await auth.close();
 * await auth.getAccessToken(id); // rejects with ClosedError (ERR_CLOSED)
 * ```
 */
export class ClosedError extends MailboxAuthError {
  /** @internal */
  static override readonly errorName = 'ClosedError';
  static override readonly code = 'ERR_CLOSED' as const;
  declare readonly code: typeof ClosedError.code;
}

/**
 * Every code with its category, its default `retryable` and its class: the code union, {@link ERROR_CODES},
 * {@link errorCategory}, `retryable` and {@link MailboxAuthErrorByCode} all come from here. Each class's
 * static `code` names its row (checked in tests/errors.test.ts).
 */
const ERROR_TABLE = {
  /** {@link ConfigurationError} */
  ERR_CONFIGURATION: {
    category: 'configuration',
    retryable: false,
    error: ConfigurationError,
  },
  /** {@link InvalidArgumentError} */
  ERR_INVALID_ARGUMENT: {
    category: 'request',
    retryable: false,
    error: InvalidArgumentError,
  },
  /** {@link UnknownProviderError} */
  ERR_UNKNOWN_PROVIDER: {
    category: 'configuration',
    retryable: false,
    error: UnknownProviderError,
  },
  /** {@link InvalidStateError} */
  ERR_INVALID_STATE: {
    category: 'request',
    retryable: false,
    error: InvalidStateError,
  },
  /** {@link AuthorizationDeniedError} */
  ERR_AUTHORIZATION_DENIED: {
    category: 'request',
    retryable: false,
    error: AuthorizationDeniedError,
  },
  /** {@link AuthorizationResponseError} */
  ERR_AUTHORIZATION_RESPONSE_INVALID: {
    category: 'request',
    retryable: false,
    error: AuthorizationResponseError,
  },
  /** {@link TokenExchangeError} */
  ERR_TOKEN_EXCHANGE_FAILED: {
    category: 'request',
    retryable: false,
    error: TokenExchangeError,
  },
  /** {@link TokenExpiredError} */
  ERR_TOKEN_EXPIRED: {
    category: 'reauthorization',
    retryable: false,
    error: TokenExpiredError,
  },
  /** {@link TokenRefreshError} */
  ERR_TOKEN_REFRESH_FAILED: {
    category: 'transient',
    retryable: true,
    error: TokenRefreshError,
  },
  /** {@link ReauthorizationRequiredError} */
  ERR_REAUTHORIZATION_REQUIRED: {
    category: 'reauthorization',
    retryable: false,
    error: ReauthorizationRequiredError,
  },
  /** {@link ProviderUnavailableError} */
  ERR_PROVIDER_UNAVAILABLE: {
    category: 'transient',
    retryable: true,
    error: ProviderUnavailableError,
  },
  /** {@link StorageError} */
  ERR_STORAGE: {
    category: 'transient',
    retryable: true,
    error: StorageError,
  },
  /** {@link VersionConflictError} */
  ERR_VERSION_CONFLICT: {
    category: 'transient',
    retryable: true,
    error: VersionConflictError,
  },
  /** {@link CryptoError} */
  ERR_CRYPTO: {
    category: 'configuration',
    retryable: false,
    error: CryptoError,
  },
  /** {@link AccountNotFoundError} */
  ERR_ACCOUNT_NOT_FOUND: {
    category: 'request',
    retryable: false,
    error: AccountNotFoundError,
  },
  /** {@link MailAuthenticationError} */
  ERR_MAIL_AUTHENTICATION_FAILED: {
    category: 'reauthorization',
    retryable: false,
    error: MailAuthenticationError,
  },
  /** {@link MailConnectionError} */
  ERR_MAIL_CONNECTION_FAILED: {
    category: 'transient',
    retryable: true,
    error: MailConnectionError,
  },
  /** {@link MailRequestError} */
  ERR_MAIL_REQUEST_REJECTED: {
    category: 'request',
    retryable: false,
    error: MailRequestError,
  },
  /** {@link ClosedError} */
  ERR_CLOSED: {
    category: 'request',
    retryable: false,
    error: ClosedError,
  },
} as const satisfies Record<
  string,
  { readonly category: ErrorCategory; readonly retryable: boolean; readonly error: { readonly code: string } }
>;

/**
 * Every error code, for exhaustive handling and tests.
 *
 * @example
 * ```ts
 * ERROR_CODES.includes(err.code); // true for any MailboxAuthError
 * ```
 */
export const ERROR_CODES: readonly MailboxAuthErrorCode[] = Object.freeze(
  Object.keys(ERROR_TABLE) as MailboxAuthErrorCode[],
);

/**
 * The error class behind each code, for narrowing with {@link isMailboxAuthError}.
 *
 * @example
 * ```ts
 * type E = MailboxAuthErrorByCode['ERR_CRYPTO']; // CryptoError
 * ```
 */
export interface MailboxAuthErrorByCode extends ErrorByCode {}

type ErrorByCode = {
  -readonly [C in keyof typeof ERROR_TABLE]: InstanceType<(typeof ERROR_TABLE)[C]['error']>;
};
