import { checkCountQuery, tallyAccounts } from './account-counts.js';
import type {
  AccountCountQuery,
  AccountCounts,
  AccountFilter,
  AccountRecord,
  ListOptions,
  MailboxActivity,
} from './account-store.js';
import type { StoredState } from './state-store.js';
import {
  assertAccountInput,
  assertExpectedVersion,
  assertId,
  assertIdentity,
  assertMailboxActivity,
  assertMailboxActivityQuery,
  assertStateInput,
  assertTtl,
  assertWatchCursor,
  assertWatchCursorKey,
  checkPutAccount,
  checkReadAndLease,
  DEFAULT_PAGE_SIZE,
  decodeCursor,
  encodeCursor,
  identityKey,
  MAX_PAGE_SIZE,
  matchesFilter,
  type NormalizedList,
  normalizeList,
} from './validate.js';

/**
 * The input checks and cursor encoding every built-in store runs, for a third-party {@link AccountStore} /
 * {@link StateStore}: call them first in each method, before touching the engine, so that the store refuses
 * bad input exactly as the built-in ones do (an {@link InvalidArgumentError}, nothing stored). The
 * conformance suite (`describeStoreConformance` from `oauth-mailbox/testing`) checks that it does.
 * Get it as {@link storeInput}.
 *
 * @example
 * ```ts
 * import { storeInput, type AccountRecord, type AccountStore } from 'oauth-mailbox';
 *
 * async function putAccount(record: Omit<AccountRecord, 'version' | 'updatedAt'>, options: { expectedVersion: number | null }) {
 *   storeInput.assertAccount(record);
 *   storeInput.assertExpectedVersion(options?.expectedVersion);
 *   const key = storeInput.identityKey(record); // the unique (provider, owner, lower-cased email)
 *   // … write the record if the stored version is options.expectedVersion
 * }
 * ```
 */
export interface StoreInput {
  /**
   * Check a record given to `putAccount`: every field present, typed and in range; ids, provider, owner and
   * email non-empty, without control characters or lone UTF-16 surrogates; `metadata` a JSON object.
   * Throws {@link InvalidArgumentError}.
   */
  assertAccount(record: unknown): asserts record is Omit<AccountRecord, 'version' | 'updatedAt'>;
  /** Check `expectedVersion` of `putAccount`: `null` (create) or a positive integer (update). */
  assertExpectedVersion(value: unknown): asserts value is number | null;
  /**
   * Both checks of `putAccount` at once ({@link StoreInput.assertAccount} on the record,
   * {@link StoreInput.assertExpectedVersion} on `options.expectedVersion`); returns the expected version.
   */
  checkPutAccount(record: unknown, options: unknown): number | null;
  /**
   * Check an account id, a lease holder or a state key: a non-empty string of at most 255 characters without
   * control characters or lone surrogates. `name` is what the error message calls it (default `'id'`).
   */
  assertId(id: unknown, name?: string): asserts id is string;
  /** Check the identity given to `findAccountByIdentity`: `provider`, `owner` and `email`, each as {@link StoreInput.assertId}. */
  assertIdentity(identity: unknown): asserts identity is {
    /** The provider's name (`google`, …). */
    readonly provider: string;
    /** The host's user who connected the mailbox. */
    readonly owner: string;
    /** The mailbox address (compared case-insensitively). */
    readonly email: string;
  };
  /** Check a lease's `ttlMs`: a positive integer. */
  assertTtl(ttlMs: unknown): asserts ttlMs is number;
  /**
   * Check the arguments of the optional `readAndLease`: the id and holder (as {@link StoreInput.assertId}),
   * `ttlMs` (as {@link StoreInput.assertTtl}) and `options.dueBefore` (`null` or an epoch-millisecond
   * integer). Returns `dueBefore`.
   */
  checkReadAndLease(id: unknown, holder: unknown, ttlMs: unknown, options: unknown): number | null;
  /**
   * Check the arguments of `putState`: the key, the state (owner, provider, payload, times) and the
   * bounds `maxPerOwner` and `maxTotal` (positive integers; `maxTotal` optional).
   */
  assertState(
    key: unknown,
    state: unknown,
    maxPerOwner: unknown,
    maxTotal?: unknown,
  ): asserts state is StoredState;
  /**
   * Check and normalize the arguments of `listAccounts`: a filter, a `limit` from 1 to
   * {@link StoreInput.maxPageSize} (default {@link StoreInput.defaultPageSize}) and a cursor decoded to the id
   * the previous page ended on.
   */
  normalizeList(filter?: AccountFilter, options?: ListOptions): NormalizedList;
  /** Does `record` match a filter returned by {@link StoreInput.normalizeList}? (The cursor is not checked.) */
  matchesFilter(record: AccountRecord, list: NormalizedList): boolean;
  /** The opaque `nextCursor` of a page that ended on the account `lastId`. */
  encodeCursor(lastId: string): string;
  /** The account id a cursor from {@link StoreInput.encodeCursor} holds; a malformed one is an {@link InvalidArgumentError}. */
  decodeCursor(cursor: unknown): string;
  /**
   * The key that is unique per mailbox: provider, owner and lower-cased email (at most one account per key).
   */
  identityKey(identity: {
    readonly provider: string;
    readonly owner: string;
    readonly email: string;
  }): string;
  /**
   * Check the query of `countAccounts`: `now`, `expiringBefore` and `failedSince` epoch-millisecond integers,
   * `now <= expiringBefore`. Returns it; throws {@link InvalidArgumentError}.
   */
  checkCountQuery(query: unknown): AccountCountQuery;
  /**
   * The reference computation of `countAccounts` over records in hand (what an engine-side aggregate must
   * agree with; the conformance suite compares a store's answer to it).
   */
  tallyAccounts(records: Iterable<AccountRecord>, query: AccountCountQuery): AccountCounts;
  /**
   * Check the arguments of the optional `getWatchCursor`: the account id and the key, each as
   * {@link StoreInput.assertId}.
   */
  assertWatchCursorKey(accountId: unknown, key: unknown): asserts key is string;
  /**
   * Check the arguments of the optional `putWatchCursor`: the account id and key (as
   * {@link StoreInput.assertWatchCursorKey}) and the position, a non-empty string of at most 16,384
   * characters without control characters.
   */
  assertWatchCursor(accountId: unknown, key: unknown, cursor: unknown): asserts cursor is string;
  /**
   * Check the arguments of the optional `addMailboxActivity`: the account id and a {@link MailboxActivity}
   * (`hour` the start of an hour, non-negative integer counts, `lastError` `null` or a code of at most 100
   * characters, a message of at most 300 and an epoch time).
   */
  assertMailboxActivity(accountId: unknown, activity: unknown): asserts activity is MailboxActivity;
  /**
   * Check the arguments of the optional `getMailboxActivity`: 1 to 1000 distinct account ids and `sinceHour`
   * the start of an hour.
   */
  assertMailboxActivityQuery(
    accountIds: unknown,
    sinceHour: unknown,
  ): asserts accountIds is readonly string[];
  /** The largest `limit` of `listAccounts` (1000). */
  readonly maxPageSize: number;
  /** The `limit` of `listAccounts` when none is given (100). */
  readonly defaultPageSize: number;
}

/**
 * The validation helper for store adapters: the same functions the built-in memory, PostgreSQL and Redis
 * stores call (see {@link StoreInput}). A frozen object.
 *
 * @example
 * ```ts
 * import { storeInput } from 'oauth-mailbox';
 *
 * class MyStore implements AccountStore, StateStore {
 *   async getAccount(id: string) {
 *     storeInput.assertId(id);
 *     return this.#read(id);
 *   }
 *   async listAccounts(filter?: AccountFilter, options?: ListOptions) {
 *     const q = storeInput.normalizeList(filter, options); // q.after, q.limit, q.provider, …
 *     const { rows, more } = await this.#scanFrom(q.after, q.limit); // ids after q.after, in order
 *     const records = rows.filter((r) => storeInput.matchesFilter(r, q));
 *     const last = rows.at(-1);
 *     return { records, nextCursor: more && last ? storeInput.encodeCursor(last.id) : null };
 *   }
 *   // …
 * }
 * ```
 */
export const storeInput: StoreInput = Object.freeze({
  assertAccount: assertAccountInput,
  assertExpectedVersion,
  checkPutAccount,
  assertId,
  assertIdentity,
  assertTtl,
  checkReadAndLease,
  assertState: assertStateInput,
  normalizeList,
  matchesFilter,
  encodeCursor,
  decodeCursor,
  identityKey,
  checkCountQuery,
  tallyAccounts,
  assertWatchCursorKey,
  assertWatchCursor,
  assertMailboxActivity,
  assertMailboxActivityQuery,
  maxPageSize: MAX_PAGE_SIZE,
  defaultPageSize: DEFAULT_PAGE_SIZE,
});
