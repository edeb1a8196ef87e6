/**
 * Health figures of all accounts (for a health endpoint or a dashboard) and of one account.
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import type { CircuitSnapshot } from '../refresh/circuit-breaker.js';
import type { TokenRefresher } from '../refresh/refresher.js';
import type { AccountStatus } from '../store/account-store.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';

const DAY = 86_400_000;

/**
 * Options of {@link health}.
 *
 * @example
 * ```ts
 * const report = await auth.health({ expiringWithinMs: 15 * 60_000, failuresWithinMs: 3_600_000 });
 * ```
 */
export interface HealthOptions {
  /** Stops a walk of the accounts (a store without `countAccounts`). */
  readonly signal?: AbortSignal;
  /** The instant the figures are counted at, in epoch milliseconds. @default Date.now() */
  readonly now?: number;
  /**
   * An active account's access token counts as expiring when it expires within this many milliseconds.
   * @default 600_000 (10 minutes)
   */
  readonly expiringWithinMs?: number;
  /** An account counts as recently failed when its last error is this recent, in milliseconds. @default 86_400_000 (24 hours) */
  readonly failuresWithinMs?: number;
}

/**
 * The fleet's health. Every figure counts accounts; the time-bound ones say their window in `windows`.
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
  /**
   * Active accounts whose stored access token has expired. Not a fault by itself: access tokens live about an
   * hour and are refreshed on next use (or by `refreshExpiring`).
   */
  readonly accessTokensExpired: number;
  /** Active accounts whose access token has not expired but will within `windows.expiringWithinMs`. */
  readonly accessTokensExpiring: number;
  /** Accounts with at least one failure since their last success (`consecutiveFailures > 0`). */
  readonly failingAccounts: number;
  /** Accounts whose last failure happened within `windows.failuresWithinMs`. */
  readonly recentlyFailedAccounts: number;
  /** The windows the time-bound figures were counted with, in milliseconds. */
  readonly windows: {
    /** Of `accessTokensExpiring`. */
    readonly expiringWithinMs: number;
    /** Of `recentlyFailedAccounts`. */
    readonly failuresWithinMs: number;
  };
  /** `store`: the store's aggregate (`countAccounts`); `walk`: a walk of every record (a store without it). */
  readonly counted: 'store' | 'walk';
  /** Per provider, in this process. */
  readonly circuits: Readonly<Record<string, CircuitSnapshot>>;
  /** `true` when no account is `reauth_required` or `error` and no circuit is open. */
  readonly healthy: boolean;
}

function windowOption(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${name} must be a non-negative integer (milliseconds)`);
  }
  return value;
}

/**
 * Counts for a health endpoint or a dashboard, computed by the store (an aggregate query on PostgreSQL, the
 * indexes on Redis) without reading the records into the process; a store without `countAccounts` is walked.
 *
 * @example
 * ```ts
 * app.get('/health/mailboxes', async (_req, res) => res.json(await health(auth.persistence, auth.refresher)));
 * ```
 */
export async function health(
  persistence: TokenPersistence,
  refresher?: TokenRefresher,
  options: HealthOptions = {},
): Promise<HealthReport> {
  const now = options.now ?? Date.now();
  if (!Number.isSafeInteger(now) || now < 0) {
    throw new InvalidArgumentError('now must be a non-negative integer (epoch milliseconds)');
  }
  const expiringWithinMs = windowOption(options.expiringWithinMs, 'expiringWithinMs', 600_000);
  const failuresWithinMs = windowOption(options.failuresWithinMs, 'failuresWithinMs', DAY);
  const { counts, counted } = await persistence.countAccounts(
    { now, expiringBefore: now + expiringWithinMs, failedSince: Math.max(0, now - failuresWithinMs) },
    options.signal === undefined ? {} : { signal: options.signal },
  );
  const circuits = refresher?.circuits() ?? {};
  const healthy =
    counts.byStatus.reauth_required === 0 &&
    counts.byStatus.error === 0 &&
    Object.values(circuits).every((c) => c.state === 'closed');
  return {
    total: counts.total,
    byStatus: counts.byStatus,
    accessTokensExpired: counts.activeExpired,
    accessTokensExpiring: counts.activeExpiring,
    failingAccounts: counts.failing,
    recentlyFailedAccounts: counts.failedSince,
    windows: { expiringWithinMs, failuresWithinMs },
    counted,
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
