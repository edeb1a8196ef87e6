/**
 * Proactive refresh of every account whose token expires soon, with bounded concurrency.
 * @module
 */
import { InvalidArgumentError, isMailboxAuthError } from '../errors.js';
import type { TokenRefresher } from '../refresh/refresher.js';
import type { AccountFilter } from '../store/account-store.js';
import { MAX_PAGE_SIZE } from '../store/validate.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import { positive, walk } from './walk.js';

/**
 * Options of {@link refreshExpiring}.
 *
 * @example
 * ```ts
 * await auth.refreshExpiring({ withinMs: 7 * 86_400_000, provider: 'google', concurrency: 16, dryRun: true });
 * ```
 */
export interface RefreshExpiringOptions {
  /** Refresh active accounts whose access token expires within this many milliseconds. */
  readonly withinMs: number;
  /** Only this provider's accounts. */
  readonly provider?: string;
  /** Only this owner's accounts. */
  readonly owner?: string;
  /** Only these accounts, each read by id (no walk over the fleet); an unknown id is not scanned. */
  readonly accountIds?: readonly string[];
  /** Refreshes running at once, from 1 to {@link MAX_FLEET_CONCURRENCY} (256). @default 8 */
  readonly concurrency?: number;
  /** Count what would be refreshed; change nothing. @default false */
  readonly dryRun?: boolean;
  /** Stops the walk (in-flight refreshes are aborted; the promise rejects with the reason). */
  readonly signal?: AbortSignal;
  /** Called after each account. */
  readonly onProgress?: (progress: FleetProgress) => void;
  /** Accounts read per page, from 1 to 1000. @default 100 */
  readonly pageSize?: number;
}

/**
 * Running counts.
 *
 * @example
 * ```ts
 * await auth.refreshExpiring({ withinMs: 86_400_000, onProgress: (p: FleetProgress) => bar.update(p.scanned) });
 * ```
 */
export interface FleetProgress {
  /** Accounts looked at (active, matching the filter, expiring within the window). */
  readonly scanned: number;
  /** Accounts that got a new token (in a dry run: that would be refreshed). */
  readonly refreshed: number;
  /** Accounts that needed nothing: their token was valid long enough (another caller or process had refreshed it). */
  readonly skipped: number;
  /**
   * Accounts another process was refreshing (it held the account's refresh lease): left to it, not waited
   * for. Several instances running `refreshExpiring` at once split the accounts this way.
   */
  readonly inProgressElsewhere: number;
  /** Accounts whose refresh failed (counted by code in `failures`). */
  readonly failed: number;
}

/**
 * What {@link refreshExpiring} did.
 *
 * @example
 * ```ts
 * const { refreshed, failures }: RefreshReport = await auth.refreshExpiring({ withinMs: 3_600_000 });
 * ```
 */
export interface RefreshReport extends FleetProgress {
  /** Failures by error code. */
  readonly failures: Readonly<Record<string, number>>;
  /** Whether this was a dry run. */
  readonly dryRun: boolean;
  /** How long the walk took, in milliseconds. */
  readonly durationMs: number;
}

/**
 * The most refreshes {@link refreshExpiring} (and the CLI's `--concurrency`) runs at once. More would not be
 * faster (each refresh waits on the provider and the store, and providers throttle a burst from one client)
 * and would cost an event-loop stall to set up.
 *
 * @example
 * ```ts
 * import { MAX_FLEET_CONCURRENCY } from 'oauth-mailbox';
 * await auth.refreshExpiring({ withinMs: 86_400_000, concurrency: Math.min(64, MAX_FLEET_CONCURRENCY) });
 * ```
 */
export const MAX_FLEET_CONCURRENCY = 256;

/** Run `work` over `items` with at most `concurrency` at once, pulling lazily (constant memory). */
async function pool<T>(
  items: AsyncIterator<T>,
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined) {
      const { value, done } = await items.next();
      if (done) return;
      await work(value);
    }
  };
  await Promise.all(
    Array.from({ length: concurrency }, () =>
      worker().catch((err: unknown) => {
        failure ??= err;
      }),
    ),
  );
  if (failure !== undefined) throw failure;
}

/** The accounts of `ids` that exist and are `due`, read one at a time. */
async function* byId(
  persistence: TokenPersistence,
  ids: readonly string[],
  due: (account: MailboxAccount) => boolean,
  signal: AbortSignal | undefined,
): AsyncGenerator<MailboxAccount> {
  for (const id of ids) {
    signal?.throwIfAborted();
    try {
      const account = await persistence.getAccount(id);
      if (due(account)) yield account;
    } catch (err) {
      if (!isMailboxAuthError(err, 'ERR_ACCOUNT_NOT_FOUND')) throw err;
    }
  }
}

/**
 * Refresh every active account whose token expires within `withinMs`, with bounded concurrency, and report
 * what happened. One account's failure does not stop the walk; an abort does. Runs on several instances at
 * once share the work without a leader: each account is refreshed once, by whichever instance takes its
 * refresh lease first; the others count it in `inProgressElsewhere` and move on.
 *
 * @example
 * ```ts
 * const report = await refreshExpiring(auth.refresher, auth.persistence, { withinMs: 7 * 86_400_000, concurrency: 16 });
 * console.log(report); // { scanned, refreshed, skipped, failed, failures: { ERR_REAUTHORIZATION_REQUIRED: 2 }, ... }
 * ```
 */
export async function refreshExpiring(
  refresher: TokenRefresher,
  persistence: TokenPersistence,
  options: RefreshExpiringOptions,
): Promise<RefreshReport> {
  const started = Date.now();
  if (
    typeof options?.withinMs !== 'number' ||
    !Number.isSafeInteger(options.withinMs) ||
    options.withinMs < 0
  ) {
    throw new InvalidArgumentError('withinMs must be a non-negative integer (milliseconds)');
  }
  const concurrency = positive(options.concurrency, 'concurrency', 8, MAX_FLEET_CONCURRENCY);
  const pageSize = positive(options.pageSize, 'pageSize', 100, MAX_PAGE_SIZE);
  if (
    options.accountIds !== undefined &&
    (!Array.isArray(options.accountIds) || !options.accountIds.every((id) => typeof id === 'string'))
  ) {
    throw new InvalidArgumentError('accountIds must be an array of account ids');
  }
  const filter: AccountFilter = {
    status: 'active',
    expiresBefore: Date.now() + options.withinMs,
    ...(options.provider === undefined ? {} : { provider: options.provider }),
    ...(options.owner === undefined ? {} : { owner: options.owner }),
  };
  const due = (account: MailboxAccount) =>
    account.status === 'active' &&
    account.tokenExpiresAt !== null &&
    account.tokenExpiresAt.getTime() < (filter.expiresBefore as number) &&
    (filter.provider === undefined || account.provider === filter.provider) &&
    (filter.owner === undefined || account.owner === filter.owner);
  // Given ids are read one by one (no walk over the fleet); an unknown id is not scanned.
  const accounts =
    options.accountIds === undefined
      ? walk(persistence, filter, pageSize, options.signal)
      : byId(persistence, [...new Set(options.accountIds)], due, options.signal);
  const counts = { scanned: 0, refreshed: 0, skipped: 0, inProgressElsewhere: 0, failed: 0 };
  const failures: Record<string, number> = {};
  const progress = () => options.onProgress?.({ ...counts });
  await pool(accounts, concurrency, async (account) => {
    counts.scanned++;
    if (options.dryRun === true) {
      counts.refreshed++;
      progress();
      return;
    }
    try {
      const outcome = await refresher.refreshIfDue(account.id, {
        minValidityMs: options.withinMs,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      if (outcome === 'refreshed') counts.refreshed++;
      else if (outcome === 'fresh') counts.skipped++;
      else counts.inProgressElsewhere++;
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      counts.failed++;
      const code = isMailboxAuthError(err) ? err.code : 'ERR_UNEXPECTED';
      failures[code] = (failures[code] ?? 0) + 1;
    }
    progress();
  });
  return { ...counts, failures, dryRun: options.dryRun === true, durationMs: Date.now() - started };
}
