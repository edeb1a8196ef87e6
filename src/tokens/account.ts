import type { AccountRecord, AccountStatus, JsonValue } from '../store/account-store.js';

/**
 * A connected mailbox as the host sees it. It holds no secret (the tokens stay in the encrypted blob),
 * so it can be logged, serialized and sent to a browser.
 *
 * @example
 * ```ts
 * const account = await persistence.getAccount(id);
 * res.json({ email: account.email, status: account.status, expiresAt: account.tokenExpiresAt });
 * ```
 */
export interface MailboxAccount {
  /** The account id (a random UUID unless given at connect). */
  readonly id: string;
  /** The provider id, such as `google`. */
  readonly provider: string;
  /** The host's user (or tenant) who connected the mailbox. */
  readonly owner: string;
  /** The mailbox address. */
  readonly email: string;
  /** The granted scopes. */
  readonly scopes: readonly string[];
  /** `active`, `reauth_required`, `error` or `revoked`. */
  readonly status: AccountStatus;
  /** When the access token expires, or `null`. */
  readonly tokenExpiresAt: Date | null;
  /** Optimistic-concurrency version. */
  readonly version: number;
  /** When the account was first connected. */
  readonly createdAt: Date;
  /** When the record was last written. */
  readonly updatedAt: Date;
  /** Last successful token exchange or refresh. */
  readonly lastRefreshedAt: Date | null;
  /** Last recorded failure (no secret in it). */
  readonly lastError: {
    /** The error code, such as `ERR_TOKEN_REFRESH_FAILED`. */
    readonly code: string;
    /** The error message (never a secret). */
    readonly message: string;
    /** When it happened. */
    readonly at: Date;
  } | null;
  /** Failures since the last success. */
  readonly consecutiveFailures: number;
  /** Host data. */
  readonly metadata: { readonly [key: string]: JsonValue };
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

/**
 * The secret-free view of a stored record.
 *
 * @example
 * ```ts
 * const account = toMailboxAccount(await store.getAccount(id));
 * ```
 */
export function toMailboxAccount(record: AccountRecord): MailboxAccount {
  return Object.freeze({
    id: record.id,
    provider: record.provider,
    owner: record.owner,
    email: record.email,
    scopes: Object.freeze([...record.scopes]),
    status: record.status,
    tokenExpiresAt: date(record.tokenExpiresAt),
    version: record.version,
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
    lastRefreshedAt: date(record.lastRefreshedAt),
    lastError:
      record.lastError === null
        ? null
        : Object.freeze({
            code: record.lastError.code,
            message: record.lastError.message,
            at: new Date(record.lastError.at),
          }),
    consecutiveFailures: record.consecutiveFailures,
    metadata: record.metadata,
  });
}
