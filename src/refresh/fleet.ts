/**
 * Fleet operations: proactive refresh, health, online key rotation. All walk the store page by page, so
 * memory stays constant however many accounts there are.
 * @module
 */
import { InvalidArgumentError, isMailboxAuthError } from '../errors.js';
import type { AccountFilter, AccountStatus } from '../storage/account-store.js';
import { ACCOUNT_STATUSES } from '../storage/account-store.js';
import { MAX_PAGE_SIZE } from '../storage/validate.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import type { CircuitSnapshot } from './circuit-breaker.js';
import type { TokenRefresher } from './refresher.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

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
  /** Only these accounts. */
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
  /** Accounts that needed nothing: another caller or process had already refreshed them. */
  readonly skipped: number;
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

function positive(value: unknown, name: string, fallback: number, max: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) {
    throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`);
  }
  return v;
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

async function* walk(
  persistence: TokenPersistence,
  filter: AccountFilter,
  pageSize: number,
  signal: AbortSignal | undefined,
  cursor: string | null = null,
  onPage?: (cursor: string | null) => void,
): AsyncGenerator<MailboxAccount> {
  let next: string | null = cursor;
  do {
    signal?.throwIfAborted();
    const page = await persistence.listAccounts(filter, { cursor: next, limit: pageSize });
    for (const account of page.accounts) yield account;
    next = page.nextCursor;
    onPage?.(next);
  } while (next !== null);
}

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

/**
 * Refresh every active account whose token expires within `withinMs`, with bounded concurrency, and report
 * what happened. One account's failure does not stop the walk; an abort does.
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
  const only = options.accountIds === undefined ? undefined : new Set(options.accountIds);
  const counts = { scanned: 0, refreshed: 0, skipped: 0, failed: 0 };
  const failures: Record<string, number> = {};
  const progress = () => options.onProgress?.({ ...counts });
  await pool(walk(persistence, filter, pageSize, options.signal), concurrency, async (account) => {
    if (only !== undefined && !only.has(account.id)) return;
    counts.scanned++;
    if (options.dryRun === true) {
      counts.refreshed++;
      progress();
      return;
    }
    try {
      const token = await refresher.getAccessToken(account.id, {
        minValidityMs: options.withinMs,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      const before = account.tokenExpiresAt?.getTime() ?? 0;
      if ((token.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY) > before) counts.refreshed++;
      else counts.skipped++;
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

/**
 * The fleet's health.
 *
 * @example
 * ```ts
 * const report: HealthReport = await auth.health();
 * res.status(report.healthy ? 200 : 503).json(report);
 * ```
 */
export interface HealthReport {
  /** Accounts in the store. */
  readonly total: number;
  /** Accounts by status. */
  readonly byStatus: Readonly<Record<AccountStatus, number>>;
  /** Active accounts whose access token expires within 24 hours. */
  readonly expiringWithin24h: number;
  /** Active accounts whose access token expires within 7 days. */
  readonly expiringWithin7d: number;
  /** Accounts whose last error happened in the last 24 hours. */
  readonly failuresLast24h: number;
  /** Per provider, in this process. */
  readonly circuits: Readonly<Record<string, CircuitSnapshot>>;
  /** `true` when no account needs attention and no circuit is open. */
  readonly healthy: boolean;
}

/**
 * Counts for a health endpoint or a dashboard.
 *
 * @example
 * ```ts
 * app.get('/health/mailboxes', async (_req, res) => res.json(await health(auth.persistence, auth.refresher)));
 * ```
 */
export async function health(
  persistence: TokenPersistence,
  refresher?: TokenRefresher,
  options: { readonly signal?: AbortSignal; readonly now?: number } = {},
): Promise<HealthReport> {
  const now = options.now ?? Date.now();
  const byStatus = Object.fromEntries(ACCOUNT_STATUSES.map((s) => [s, 0])) as Record<AccountStatus, number>;
  let total = 0;
  let in24h = 0;
  let in7d = 0;
  let failures24h = 0;
  for await (const account of walk(persistence, {}, 500, options.signal)) {
    total++;
    byStatus[account.status]++;
    const exp = account.tokenExpiresAt?.getTime();
    if (account.status === 'active' && exp !== undefined) {
      if (exp < now + DAY) in24h++;
      if (exp < now + 7 * DAY) in7d++;
    }
    if (account.lastError !== null && account.lastError.at.getTime() > now - DAY) failures24h++;
  }
  const circuits = refresher?.circuits() ?? {};
  const healthy =
    byStatus.reauth_required === 0 &&
    byStatus.error === 0 &&
    Object.values(circuits).every((c) => c.state === 'closed');
  return {
    total,
    byStatus,
    expiringWithin24h: in24h,
    expiringWithin7d: in7d,
    failuresLast24h: failures24h,
    circuits,
    healthy,
  };
}

/**
 * One account's health, for a host's settings page.
 *
 * @example
 * ```ts
 * const { connected, lastError }: AccountHealth = await auth.accountHealth(accountId);
 * ```
 */
export interface AccountHealth {
  /** The account. */
  readonly accountId: string;
  /** Its provider id. */
  readonly provider: string;
  /** The mailbox address. */
  readonly email: string;
  /** `active`, `reauth_required`, `error` or `revoked`. */
  readonly status: AccountStatus;
  /** `true` when the status is `active`. */
  readonly connected: boolean;
  /** The last successful token exchange or refresh. */
  readonly lastSuccessAt: Date | null;
  /** The last recorded failure (no secret in it). */
  readonly lastError: MailboxAccount['lastError'];
  /** Failures since the last success. */
  readonly consecutiveFailures: number;
  /** When the stored access token expires. */
  readonly tokenExpiresAt: Date | null;
}

/**
 * One account's health (no secret in it).
 *
 * @example
 * ```ts
 * const { connected, lastError } = await accountHealth(auth.persistence, accountId);
 * ```
 */
export async function accountHealth(
  persistence: TokenPersistence,
  accountId: string,
): Promise<AccountHealth> {
  const account = await persistence.getAccount(accountId);
  return {
    accountId: account.id,
    provider: account.provider,
    email: account.email,
    status: account.status,
    connected: account.status === 'active',
    lastSuccessAt: account.lastRefreshedAt,
    lastError: account.lastError,
    consecutiveFailures: account.consecutiveFailures,
    tokenExpiresAt: account.tokenExpiresAt,
  };
}

/**
 * Options of {@link rotateKeys}.
 *
 * @example
 * ```ts
 * await auth.rotateKeys({ batchSize: 500, cursor: savedCursor, onProgress: (p) => save(p.cursor) });
 * ```
 */
export interface RotateKeysOptions {
  /** Accounts per page. @default 100 */
  readonly batchSize?: number;
  /** Resume after this cursor (the `cursor` of a previous report or progress callback). */
  readonly cursor?: string | null;
  /** Stops the walk; re-encrypted records stay re-encrypted. */
  readonly signal?: AbortSignal;
  /** Called after each page with the cursor to resume from. */
  readonly onProgress?: (progress: RotateKeysReport) => void;
}

/**
 * What {@link rotateKeys} did.
 *
 * @example
 * ```ts
 * const { reencrypted, cursor }: RotateKeysReport = await auth.rotateKeys();
 * ```
 */
export interface RotateKeysReport {
  /** Accounts looked at. */
  readonly scanned: number;
  /** Accounts rewritten with the current key. */
  readonly reencrypted: number;
  /** Accounts that could not be re-encrypted (counted by code in `failures`). */
  readonly failed: number;
  /** Failures by error code (`ERR_CRYPTO` for a record no configured key decrypts). */
  readonly failures: Readonly<Record<string, number>>;
  /** Where to resume; `null` once the walk is complete. */
  readonly cursor: string | null;
}

/**
 * Re-encrypt every account whose tokens were sealed with a key other than the cipher's current one, page by
 * page (online: writes are version-checked). Resumable: pass the last reported `cursor`.
 *
 * @example
 * ```ts
 * const report = await rotateKeys(auth.persistence, { batchSize: 200, onProgress: (p) => saveCursor(p.cursor) });
 * ```
 */
export async function rotateKeys(
  persistence: TokenPersistence,
  options: RotateKeysOptions = {},
): Promise<RotateKeysReport> {
  const batchSize = positive(options.batchSize, 'batchSize', 100, MAX_PAGE_SIZE);
  const counts = { scanned: 0, reencrypted: 0, failed: 0 };
  const failures: Record<string, number> = {};
  let cursor = options.cursor ?? null;
  const report = (): RotateKeysReport => ({ ...counts, failures: { ...failures }, cursor });
  for await (const account of walk(persistence, {}, batchSize, options.signal, cursor, (next) => {
    cursor = next;
    options.onProgress?.(report());
  })) {
    counts.scanned++;
    try {
      if (await persistence.reencrypt(account.id)) counts.reencrypted++;
    } catch (err) {
      if (isMailboxAuthError(err, 'ERR_ACCOUNT_NOT_FOUND')) continue;
      if (isMailboxAuthError(err, 'ERR_STORAGE')) throw err;
      counts.failed++;
      const code = isMailboxAuthError(err) ? err.code : 'ERR_UNEXPECTED';
      failures[code] = (failures[code] ?? 0) + 1;
    }
  }
  return report();
}
