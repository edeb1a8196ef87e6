/**
 * The options, call options, outcomes and events of {@link TokenRefresher}.
 * @module
 */

import type { MailboxAuthError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { TelemetryOptions } from '../telemetry/telemetry.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import type { AccessToken } from './access-token.js';
import type { CircuitBreakerOptions } from './circuit-breaker.js';
import type { TokenRefresher } from './refresher.js';
import type { RefreshRetryOptions } from './retry.js';
import type { TokenSource } from './token-source.js';

/**
 * Options of {@link TokenRefresher}.
 *
 * @example
 * ```ts
 * new TokenRefresher({ persistence, registry, minValidityMs: 600_000, leaseTtlMs: 90_000, logger: pino() });
 * ```
 */
export interface TokenRefresherOptions {
  /** Reads and writes the accounts' encrypted tokens, and holds the refresh leases. */
  readonly persistence: TokenPersistence;
  /** Resolves each account's provider. */
  readonly registry: ProviderRegistry;
  /**
   * Refresh when the access token expires within this many milliseconds.
   * @default 300000 (5 minutes)
   */
  readonly minValidityMs?: number;
  /**
   * How long a refresh lease lasts, in milliseconds; it is extended while a rotated token waits to be stored.
   * Must exceed the longest refresh (retries included).
   * @default 60000
   */
  readonly leaseTtlMs?: number;
  /**
   * How long to wait for another process's refresh before failing with a retryable `TokenRefreshError`,
   * in milliseconds.
   * @default 20000
   */
  readonly waitForOtherRefreshMs?: number;
  /** Retries of transient failures. */
  readonly retry?: RefreshRetryOptions;
  /** Per-provider circuit breaker; `false` disables it. */
  readonly circuitBreaker?: CircuitBreakerOptions | false;
  /** Receives events as log lines; never a secret. @default silent */
  readonly logger?: Logger;
  /** This process's lease holder id. @default `<hostname>:<pid>:<random>` */
  readonly holderId?: string;
  /** The clock, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** Where refresh metrics and spans go (see `docs/operations.md`). @default the global OpenTelemetry providers */
  readonly telemetry?: TelemetryOptions;
  /**
   * The token source of an account: the grant that obtains its access tokens. `undefined` (or no function):
   * {@link refreshTokenGrant}. Grants without a refresh token (client credentials, a JWT bearer assertion)
   * plug in here and get every policy of the refresher (single flight, lease, breaker, retries, write-behind).
   * @default () => refreshTokenGrant
   */
  readonly tokenSource?: (account: MailboxAccount) => TokenSource | undefined;
}

/**
 * Options of {@link TokenRefresher.getAccessToken}.
 *
 * @example
 * ```ts
 * await auth.getAccessToken(accountId, { minValidityMs: 30 * 60_000, signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface GetAccessTokenOptions {
  /** Refresh if the token expires within this many milliseconds. @default the refresher's `minValidityMs` */
  readonly minValidityMs?: number;
  /**
   * Refresh even if the token looks valid (a mail server rejected it). Skipped when another caller already
   * replaced the token this caller holds.
   */
  readonly forceRefresh?: boolean;
  /**
   * The token a server just refused (implies `forceRefresh`): refreshed unless the token held now is already
   * another, valid one (a concurrent caller replaced it), so a late 401 for an old token costs no second
   * refresh. Must be an `AccessToken` of this account and resource, as `getAccessToken` returned it.
   */
  readonly rejected?: AccessToken;
  /** Stops waiting (and the refresh, once every waiting caller has stopped). */
  readonly signal?: AbortSignal;
  /**
   * An extra resource of the provider (such as `graph` at Microsoft): the access token for it, obtained with
   * the account's refresh token and the resource's scopes and stored beside the primary one. Omitted: the
   * primary access token (IMAP, SMTP, the Gmail API).
   */
  readonly resource?: string;
}

/**
 * What {@link TokenRefresher.refreshIfDue} did: `refreshed` (this process obtained a new token),
 * `fresh` (the token held or stored was valid long enough: nothing to do, or another caller had just
 * refreshed it) or `busy` (another process holds the account's refresh lease: the refresh is left to it).
 *
 * @example
 * ```ts
 * const outcome: RefreshOutcome = await auth.refresher.refreshIfDue(accountId, { minValidityMs: 600_000 });
 * ```
 */
export type RefreshOutcome = 'refreshed' | 'fresh' | 'busy';

/**
 * Events of {@link TokenRefresher}.
 *
 * @example
 * ```ts
 * auth.on('refreshed', ({ accountId, rotated }: TokenRefresherEvents['refreshed']) => metrics.inc({ rotated }));
 * ```
 */
export interface TokenRefresherEvents {
  /** A token was refreshed and stored. */
  refreshed: {
    /** The account. */
    readonly accountId: string;
    /** Its provider id. */
    readonly provider: string;
    /** When the new access token expires, or `null` when the provider did not say. */
    readonly expiresAt: Date | null;
    /** The provider issued a new refresh token. */
    readonly rotated: boolean;
    /** The extra resource whose token was refreshed (such as `graph`); absent for the primary token. */
    readonly resource?: string;
  };
  /** A refresh failed (any reason). */
  refreshFailed: {
    /** The account. */
    readonly accountId: string;
    /** Its provider id. */
    readonly provider: string;
    /** The typed error the caller received. */
    readonly error: MailboxAuthError;
  };
  /**
   * Ask the user to reconnect: the refresh token is dead (`invalid_grant`), or the user never consented to
   * an extra resource's scopes (`resource` set; the account stays usable for the rest).
   */
  reauthorizationRequired: {
    /** The account (its status is now `reauth_required`, unless `resource` is set). */
    readonly accountId: string;
    /** Its provider id. */
    readonly provider: string;
    /** The error message (no secret). */
    readonly reason: string;
    /** The extra resource whose scopes were never consented (such as `graph`), if that was the cause. */
    readonly resource?: string;
  };
  /** A provider's circuit opened: its refreshes fail fast for the cool-down. */
  circuitOpen: {
    /** The provider id. */
    readonly provider: string;
    /** Milliseconds until a probe is let through. */
    readonly retryAfterMs: number;
  };
  /** A provider's circuit closed again. */
  circuitClosed: {
    /** The provider id. */
    readonly provider: string;
  };
}
