/**
 * Health figures of all accounts (for a health endpoint or a dashboard) and of one account.
 * @module
 */

import type { CircuitSnapshot } from '../refresh/circuit-breaker.js';
import type { TokenRefresher } from '../refresh/refresher.js';
import type { AccountStatus } from '../store/account-store.js';
import { ACCOUNT_STATUSES } from '../store/account-store.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import { walk } from './walk.js';

const DAY = 86_400_000;

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
