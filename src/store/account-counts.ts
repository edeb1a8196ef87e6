/**
 * The figures of {@link AccountStore.countAccounts}: the query check and the reference tally every store's
 * engine-side computation must agree with.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import {
  ACCOUNT_STATUSES,
  type AccountCountQuery,
  type AccountCounts,
  type AccountRecord,
  type AccountStatus,
} from './account-store.js';

const isEpoch = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** Check a count query: three epoch-millisecond integers with `now <= expiringBefore`. @internal */
export function checkCountQuery(query: unknown): AccountCountQuery {
  if (typeof query !== 'object' || query === null) {
    throw new InvalidArgumentError('the count query must be an object { now, expiringBefore, failedSince }');
  }
  const { now, expiringBefore, failedSince } = query as Record<string, unknown>;
  for (const [name, value] of [
    ['now', now],
    ['expiringBefore', expiringBefore],
    ['failedSince', failedSince],
  ] as const) {
    if (!isEpoch(value)) {
      throw new InvalidArgumentError(`${name} must be a non-negative integer (epoch milliseconds)`);
    }
  }
  if ((expiringBefore as number) < (now as number)) {
    throw new InvalidArgumentError('expiringBefore must not be earlier than now');
  }
  return { now: now as number, expiringBefore: expiringBefore as number, failedSince: failedSince as number };
}

/**
 * Count records one at a time into {@link AccountCounts}: the reference computation of
 * `AccountStore.countAccounts`. @internal
 */
export class AccountTally {
  readonly #query: AccountCountQuery;
  #total = 0;
  readonly #byStatus = Object.fromEntries(ACCOUNT_STATUSES.map((s) => [s, 0])) as Record<
    AccountStatus,
    number
  >;
  #expired = 0;
  #expiring = 0;
  #failed = 0;
  #failing = 0;

  constructor(query: AccountCountQuery) {
    this.#query = checkCountQuery(query);
  }

  /** Count one record. */
  add(record: AccountRecord): void {
    const { now, expiringBefore, failedSince } = this.#query;
    this.#total++;
    this.#byStatus[record.status]++;
    const exp = record.tokenExpiresAt;
    if (record.status === 'active' && exp !== null) {
      if (exp <= now) this.#expired++;
      else if (exp < expiringBefore) this.#expiring++;
    }
    if (record.lastError !== null && record.lastError.at >= failedSince) this.#failed++;
    if (record.consecutiveFailures > 0) this.#failing++;
  }

  /** The figures so far. */
  counts(): AccountCounts {
    return {
      total: this.#total,
      byStatus: { ...this.#byStatus },
      activeExpired: this.#expired,
      activeExpiring: this.#expiring,
      failedSince: this.#failed,
      failing: this.#failing,
    };
  }
}

/** The counts of `records` (stored records) for `query`. @internal */
export function tallyAccounts(records: Iterable<AccountRecord>, query: AccountCountQuery): AccountCounts {
  const tally = new AccountTally(query);
  for (const r of records) tally.add(r);
  return tally.counts();
}
