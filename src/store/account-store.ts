/**
 * The account storage contract. Every adapter (memory, PostgreSQL, Redis, yours) implements it and
 * passes the shared conformance suite.
 *
 * @module
 */

/**
 * JSON-compatible values, for host metadata.
 *
 * @example
 * ```ts
 * const metadata: { [key: string]: JsonValue } = { team: 'sales', seats: 3, tags: ['vip'] };
 * ```
 */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/**
 * The life-cycle status of a connected account.
 * - `active`: tokens are usable or refreshable.
 * - `reauth_required`: the refresh token was revoked or expired; the user must reconnect.
 * - `error`: the last attempts failed for another reason (see `lastError`).
 * - `revoked`: the host disconnected the account; tokens were cleared.
 *
 * @example
 * ```ts
 * const status: AccountStatus = (await auth.getAccount(accountId)).status;
 * ```
 */
export type AccountStatus = 'active' | 'reauth_required' | 'error' | 'revoked';

/**
 * Every status, for validation and iteration.
 *
 * @example
 * ```ts
 * for (const status of ACCOUNT_STATUSES) console.log(status, (await store.listAccounts({ status })).records.length);
 * ```
 */
export const ACCOUNT_STATUSES: readonly AccountStatus[] = ['active', 'reauth_required', 'error', 'revoked'];

/**
 * The last failure recorded on an account. The message never holds a secret.
 *
 * @example
 * ```ts
 * const error: AccountErrorInfo | null = (await store.getAccount(id))?.lastError ?? null;
 * ```
 */
export interface AccountErrorInfo {
  /** A stable error code, such as `ERR_REAUTHORIZATION_REQUIRED`. */
  readonly code: string;
  /** A human-readable message without secrets. */
  readonly message: string;
  /** When it happened, in epoch milliseconds. */
  readonly at: number;
}

/**
 * One connected mailbox as a store keeps it. Times are epoch milliseconds. The tokens live only in
 * `secret`, encrypted by the configured cipher and bound to `id`.
 *
 * @example
 * ```ts
 * const record: AccountRecord | null = await store.getAccount(accountId); // the secret is an encrypted envelope
 * ```
 */
export interface AccountRecord {
  /** Stable unique id, chosen by the library (or the host) at creation. */
  readonly id: string;
  /** The provider key in the registry, such as `google`. */
  readonly provider: string;
  /** The host's owner of this mailbox (a user or tenant id). */
  readonly owner: string;
  /** The mailbox address. Unique per (provider, owner), compared case-insensitively. */
  readonly email: string;
  /** Granted scopes. */
  readonly scopes: readonly string[];
  /** Life-cycle status. */
  readonly status: AccountStatus;
  /** When the access token expires (epoch ms), or `null` when unknown or cleared. */
  readonly tokenExpiresAt: number | null;
  /** Optimistic-concurrency version, set by the store: 1 on creation, +1 on every write. */
  readonly version: number;
  /** Creation time (epoch ms). */
  readonly createdAt: number;
  /** Last write time (epoch ms). */
  readonly updatedAt: number;
  /** Last successful token refresh or exchange (epoch ms), or `null`. */
  readonly lastRefreshedAt: number | null;
  /** Last recorded failure, or `null`. */
  readonly lastError: AccountErrorInfo | null;
  /** Failures since the last success. */
  readonly consecutiveFailures: number;
  /** Host data (JSON). */
  readonly metadata: { readonly [key: string]: JsonValue };
  /** The encrypted token blob (a cipher envelope). */
  readonly secret: string;
}

/**
 * Filters of {@link AccountStore.listAccounts}; all given filters must match.
 *
 * @example
 * ```ts
 * const filter: AccountFilter = { provider: 'google', status: ['active', 'error'], expiresBefore: Date.now() + 86_400_000 };
 * ```
 */
export interface AccountFilter {
  /** Only this provider's accounts. */
  readonly provider?: string;
  /** Only this owner's accounts. */
  readonly owner?: string;
  /** One status or any of several. */
  readonly status?: AccountStatus | readonly AccountStatus[];
  /** Only records whose `tokenExpiresAt` is set and earlier than this (epoch ms). */
  readonly expiresBefore?: number;
  /**
   * Only records whose metadata has each of these top-level keys with exactly this value (a string, a finite
   * number, a boolean or `null`; a missing key matches nothing, not `null`), such as `{ role: 'booking' }` for
   * a tenant's booking mailboxes. At most 16 keys.
   */
  readonly metadata?: Readonly<Record<string, MetadataValue>>;
}

/**
 * A value {@link AccountFilter.metadata} compares a metadata key with.
 *
 * @example
 * ```ts
 * const role: MetadataValue = 'booking';
 * await store.listAccounts({ owner: 'tenant-1', metadata: { role } });
 * ```
 */
export type MetadataValue = string | number | boolean | null;

/**
 * Paging of {@link AccountStore.listAccounts}.
 *
 * @example
 * ```ts
 * await store.listAccounts({ owner: 'u1' }, { cursor: page.nextCursor, limit: 50 });
 * ```
 */
export interface ListOptions {
  /** The `nextCursor` of the previous page. */
  readonly cursor?: string | null;
  /**
   * Page size, 1 to 1000.
   * @default 100
   */
  readonly limit?: number;
}

/**
 * One page of records, ordered by `id`.
 *
 * @example
 * ```ts
 * const { records, nextCursor }: AccountPage = await store.listAccounts({}, { limit: 100 });
 * ```
 */
export interface AccountPage {
  /** The records of this page, ordered by id. */
  readonly records: readonly AccountRecord[];
  /** Pass it back for the next page; `null` when this was the last one. */
  readonly nextCursor: string | null;
}

/**
 * A held refresh lease.
 *
 * @example
 * ```ts
 * const lease: Lease | null = await store.acquireLease(accountId, 'worker-1', 60_000);
 * ```
 */
export interface Lease {
  /** Who holds it (a process's holder id). */
  readonly holder: string;
  /** When it lapses (epoch ms). */
  readonly expiresAt: number;
}

/**
 * A mailbox identity as stores key accounts: at most one account per provider, owner and email (the email
 * compared case-insensitively).
 *
 * @example
 * ```ts
 * const identity: AccountIdentity = { provider: 'google', owner: user.id, email: 'ada@example.com' };
 * const record = await store.findAccountByIdentity(identity);
 * ```
 */
export interface AccountIdentity {
  /** The provider id. */
  readonly provider: string;
  /** The host's user who connected the mailbox. */
  readonly owner: string;
  /** The mailbox address. */
  readonly email: string;
}

/**
 * A record as `putAccount` takes it: everything but the `version` and `updatedAt` the store assigns.
 *
 * @example
 * ```ts
 * const input: AccountRecordInput = { ...stored, status: 'revoked' };
 * await store.putAccount(input, { expectedVersion: stored.version });
 * ```
 */
export type AccountRecordInput = Omit<AccountRecord, 'version' | 'updatedAt'>;

/**
 * Options of `putAccount`.
 *
 * @example
 * ```ts
 * const create: PutAccountOptions = { expectedVersion: null }; // fails if the id exists
 * ```
 */
export interface PutAccountOptions {
  /** `null`: create (the id must be new); `n`: update the record stored at version `n`. */
  readonly expectedVersion: number | null;
}

/**
 * What {@link AccountStore.countAccounts} counts against: the instants the time-bound figures are measured
 * from. All epoch milliseconds; `now <= expiringBefore`.
 *
 * @example
 * ```ts
 * const now = Date.now();
 * const query: AccountCountQuery = { now, expiringBefore: now + 600_000, failedSince: now - 86_400_000 };
 * ```
 */
export interface AccountCountQuery {
  /** The instant an access token counts as expired at (`tokenExpiresAt <= now`). */
  readonly now: number;
  /** An active account's token counts as expiring when `now < tokenExpiresAt < expiringBefore`. */
  readonly expiringBefore: number;
  /** An account counts as recently failed when `lastError.at >= failedSince`. */
  readonly failedSince: number;
}

/**
 * The figures {@link AccountStore.countAccounts} returns, each counting accounts (records), never events.
 *
 * @example
 * ```ts
 * const counts: AccountCounts = await store.countAccounts!({ now, expiringBefore: now + 600_000, failedSince: now - 86_400_000 });
 * if (counts.byStatus.reauth_required > 0) notifyUsers();
 * ```
 */
export interface AccountCounts {
  /** Every stored account. */
  readonly total: number;
  /** Accounts per status (every status present, 0 when none). */
  readonly byStatus: Readonly<Record<AccountStatus, number>>;
  /** `active` accounts whose access token has expired (`tokenExpiresAt <= now`). */
  readonly activeExpired: number;
  /** `active` accounts whose access token has not expired but will before `expiringBefore`. */
  readonly activeExpiring: number;
  /** Accounts whose last error happened at or after `failedSince`. */
  readonly failedSince: number;
  /** Accounts with at least one failure since their last success (`consecutiveFailures > 0`). */
  readonly failing: number;
}

/**
 * What {@link AccountStore.readAndLease} returns: the record as read, and the refresh lease if it was taken
 * in the same atomic step.
 *
 * @example
 * ```ts
 * const { record, lease }: LeasedRead = await store.readAndLease!(id, 'worker-1', 60_000, { dueBefore: Date.now() + 300_000 });
 * ```
 */
export interface LeasedRead {
  /** The record, or `null` when no account has this id (no lease is taken then). */
  readonly record: AccountRecord | null;
  /** The lease, when this call took (or extended) it; `null` when it was not wanted or another holder has it. */
  readonly lease: Lease | null;
  /** `true` when the lease was wanted but another holder has an unexpired one. */
  readonly busy: boolean;
}

/**
 * Options of {@link AccountStore.readAndLease}.
 *
 * @example
 * ```ts
 * const options: ReadAndLeaseOptions = { dueBefore: Date.now() + 300_000 }; // lease only if the token is due
 * ```
 */
export interface ReadAndLeaseOptions {
  /**
   * Take the lease only when the record's `tokenExpiresAt` is not `null` and `<= dueBefore` (epoch ms);
   * `null`: take it whenever the record exists (a forced refresh).
   */
  readonly dueBefore: number | null;
}

/**
 * A committed change of one account, as {@link AccountStore.watchAccounts} reports it to every process
 * watching the store (this one included):
 * - `written`: a write committed `version` (`record` is the record as stored, when the engine can carry it
 *   in its notification; absent otherwise: read it);
 * - `released`: a refresh lease was released without a write (the holder gave up: try the lease again);
 * - `deleted`: the account was deleted;
 * - `reset`: notifications may have been missed (the listening connection was lost and re-established):
 *   re-check everything being waited on. `id` is `''`.
 *
 * @example
 * ```ts
 * const watch = await store.watchAccounts!((change: AccountChange) => {
 *   if (change.kind === 'written') console.log(change.id, 'is now at version', change.version);
 * });
 * ```
 */
export interface AccountChange {
  /** What happened. */
  readonly kind: 'written' | 'released' | 'deleted' | 'reset';
  /** The account id (`''` for `reset`). */
  readonly id: string;
  /** The version written (`written` only). */
  readonly version?: number;
  /** The record written, when the notification carries it (`written` only; a copy). */
  readonly record?: AccountRecord;
}

/**
 * A running {@link AccountStore.watchAccounts} subscription.
 *
 * @example
 * ```ts
 * const watch: AccountWatch = await store.watchAccounts!(onChange);
 * await watch.close(); // stops the listener and frees its connection
 * ```
 */
export interface AccountWatch {
  /** Stop listening and free what the subscription holds (a dedicated connection). Idempotent. */
  close(): Promise<void>;
}

/**
 * Where connected accounts live. Rules (checked by `describeStoreConformance` from `oauth-mailbox/testing`;
 * `storeInput` runs the input checks):
 * - `putAccount` is optimistic: `expectedVersion: null` creates (fails with `VersionConflictError` when the
 *   id or the (provider, owner, email) identity exists); a number updates only if the stored version equals
 *   it, else `VersionConflictError`. The store sets `version` and `updatedAt`; it never silently overwrites.
 * - Reads return copies: mutating a returned record changes nothing stored.
 * - A failure of the engine is a `StorageError`, never `null`/"not found".
 * - `listAccounts` orders by id and pages with an opaque cursor, so a full scan runs in constant memory.
 * - Leases are exclusive per account until they lapse or their holder releases them.
 *
 * @example
 * ```ts
 * import { memoryStore, iterateAccounts } from 'oauth-mailbox';
 * const store = memoryStore();
 * for await (const record of iterateAccounts(store, { status: 'active' })) console.log(record.email);
 * ```
 */
export interface AccountStore {
  /** The record, or `null` when no account has this id. */
  getAccount(id: string): Promise<AccountRecord | null>;
  /** The record for a mailbox identity (email compared case-insensitively), or `null`. */
  findAccountByIdentity(identity: AccountIdentity): Promise<AccountRecord | null>;
  /** Create (`expectedVersion: null`) or update (`expectedVersion: n`) a record; returns what was stored. */
  putAccount(record: AccountRecordInput, options: PutAccountOptions): Promise<AccountRecord>;
  /**
   * Delete a record; `true` if one was deleted. With `expectedVersion`, deletes only that version
   * (else `VersionConflictError`).
   */
  deleteAccount(id: string, options?: { readonly expectedVersion?: number }): Promise<boolean>;
  /** One page of records matching `filter`, ordered by id. */
  listAccounts(filter?: AccountFilter, options?: ListOptions): Promise<AccountPage>;
  /**
   * Take (or extend, for the same holder) the refresh lease of an account for `ttlMs`. Returns the lease,
   * or `null` if another holder has an unexpired one. Works whether or not the account exists.
   */
  acquireLease(id: string, holder: string, ttlMs: number): Promise<Lease | null>;
  /** Release a lease if `holder` holds it; `true` if released. */
  releaseLease(id: string, holder: string): Promise<boolean>;
  /**
   * Optional: the figures of {@link AccountCounts}, computed by the engine (an aggregate query, counters,
   * indexes) without reading every record into the process. `health()` uses it when present and walks the
   * accounts otherwise. Check the query with `storeInput.checkCountQuery`; `storeInput.tallyAccounts` is the
   * reference computation (the conformance suite compares against it).
   */
  countAccounts?(query: AccountCountQuery): Promise<AccountCounts>;
  /**
   * Optional: read the record and, in the same atomic step (one round trip), take the refresh lease for
   * `holder` when the token is due (see {@link ReadAndLeaseOptions.dueBefore}) and the lease is free or
   * already `holder`'s. The refresher uses it to decide and lease with one call; without it, it calls
   * `getAccount` then `acquireLease`.
   */
  readAndLease?(id: string, holder: string, ttlMs: number, options: ReadAndLeaseOptions): Promise<LeasedRead>;
  /**
   * Optional: `putAccount` (same rules, same errors) that also releases `holder`'s refresh lease of the
   * account in the same atomic write; the lease is kept when the write fails. Without it, the refresher
   * calls `putAccount` then `releaseLease`.
   */
  putAccountAndRelease?(
    record: AccountRecordInput,
    options: PutAccountOptions & {
      /** The holder whose lease of this account is released with the write. */
      readonly holder: string;
    },
  ): Promise<AccountRecord>;
  /**
   * Optional: call `listener` with every committed change of any account ({@link AccountChange}), from
   * every process sharing the store, until the returned watch is closed. Delivery is best effort and may
   * repeat; a lost listening connection is reported as `reset`. Processes waiting for another's refresh
   * are woken by it instead of polling; without it they poll.
   */
  watchAccounts?(listener: (change: AccountChange) => void): Promise<AccountWatch>;
  /**
   * Optional: the watch position saved for the account under `key` (a transport and a folder, such as
   * `imap:INBOX` or `graph:inbox`), or `null` when none was saved. Watchers resume from it after a restart
   * or a takeover; without this method and {@link AccountStore.putWatchCursor} a watch position lives only
   * in the process. Check the arguments with `storeInput.assertWatchCursorKey`.
   */
  getWatchCursor?(accountId: string, key: string): Promise<string | null>;
  /**
   * Optional: save the account's watch position under `key` (at most 16 KiB of text), replacing the one
   * saved; `false` (and nothing saved) when no account has this id. Positions are deleted with their
   * account. Check the arguments with `storeInput.assertWatchCursor`.
   */
  putWatchCursor?(accountId: string, key: string, cursor: string): Promise<boolean>;
  /**
   * Optional: add a mailbox's activity of one hour (delivered and failed messages, errors, handler time,
   * last success, last error) to what the store keeps for the account: the counts are added to the hour's,
   * the last success kept when later than the one kept, the last error replaced when later. `false` (and
   * nothing stored) when no account has this id. A store may drop hours older than 25 hours before the
   * newest one it was given; activity is deleted with its account. Every instance's watchers write here,
   * so that `auth.mailboxHealth()` on any instance answers for the fleet; without this method and
   * {@link AccountStore.getMailboxActivity} mailbox health is per process. Check the arguments with
   * `storeInput.assertMailboxActivity`.
   */
  addMailboxActivity?(accountId: string, activity: MailboxActivity): Promise<boolean>;
  /**
   * Optional: the activity of each listed account (at most 1000 distinct ids) summed over the hours from
   * `sinceHour` on, with the last success and last error kept; one entry per account that has any, in no
   * particular order. Check the arguments with `storeInput.assertMailboxActivityQuery`.
   */
  getMailboxActivity?(accountIds: readonly string[], sinceHour: number): Promise<MailboxActivityTotals[]>;
}

/**
 * The last error a mailbox recorded: its stable code, a bounded message (no secret: the library's errors
 * carry none, and a host callback's message is cut to 300 characters) and when, in epoch milliseconds.
 *
 * @example
 * ```ts
 * const error: MailboxActivityError = { code: 'ERR_MAIL_CONNECTION_FAILED', message: 'connection closed', at: Date.now() };
 * ```
 */
export interface MailboxActivityError {
  /** The error's stable code (at most 100 characters). */
  readonly code: string;
  /** Its message (at most 300 characters). */
  readonly message: string;
  /** When it happened, in epoch milliseconds. */
  readonly at: number;
}

/**
 * A mailbox's activity of one hour, as a watcher adds it to the store ({@link AccountStore.addMailboxActivity}).
 *
 * @example
 * ```ts
 * await store.addMailboxActivity?.(accountId, {
 *   hour: Math.floor(Date.now() / 3_600_000) * 3_600_000,
 *   processed: 3, failed: 0, errors: 0, handlerMs: 42,
 *   lastSuccessAt: Date.now(), lastError: null,
 * });
 * ```
 */
export interface MailboxActivity {
  /** The start of the hour, in epoch milliseconds (a multiple of 3,600,000). */
  readonly hour: number;
  /** Messages whose callback resolved. */
  readonly processed: number;
  /** Messages skipped after their callback failed on every attempt. */
  readonly failed: number;
  /** Errors of the mailbox's connections, requests and watch (each failure once). */
  readonly errors: number;
  /** The time the callbacks of the processed messages took, summed, in whole milliseconds. */
  readonly handlerMs: number;
  /** The last success in that hour, in epoch milliseconds (`null`: none). */
  readonly lastSuccessAt: number | null;
  /** The last error in that hour (`null`: none). */
  readonly lastError: MailboxActivityError | null;
}

/**
 * An account's activity summed over hours ({@link AccountStore.getMailboxActivity}).
 *
 * @example
 * ```ts
 * const [totals]: MailboxActivityTotals[] = (await store.getMailboxActivity?.([accountId], since)) ?? [];
 * ```
 */
export interface MailboxActivityTotals {
  /** The account. */
  readonly accountId: string;
  /** Messages whose callback resolved, in the hours read. */
  readonly processed: number;
  /** Messages skipped after their retries, in the hours read. */
  readonly failed: number;
  /** Errors, in the hours read. */
  readonly errors: number;
  /** Callback time of the processed messages, summed, in milliseconds. */
  readonly handlerMs: number;
  /** The last success ever recorded (not only in the hours read), in epoch milliseconds. */
  readonly lastSuccessAt: number | null;
  /** The last error ever recorded (not only in the hours read). */
  readonly lastError: MailboxActivityError | null;
}
