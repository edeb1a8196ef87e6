/**
 * Write-behind of refreshed tokens: a rotated refresh token is never lost to a failed store write.
 * @module
 */

import { isMailboxAuthError } from '../errors.js';
import { Backoff } from '../internal/backoff.js';
import { pause } from '../internal/timers.js';
import type { Logger } from '../logger.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import type { TokenSetInput } from '../tokens/token-set.js';
import type { KeyedLock } from './account-lock.js';

/** How a write ended: `stored` (the lease released with it when asked), or `pending` (kept in memory). */
export type WriteOutcome = 'stored' | 'pending';

/**
 * Stores refreshed tokens. When the write fails, the tokens stay in memory (and win over the older stored
 * ones for this process), the account's lease is kept so that no other process refreshes with the refresh
 * token they replaced, and the write is retried with backoff until it succeeds or the refresher closes.
 * @internal
 */
export class WriteBehind {
  readonly #persistence: TokenPersistence;
  readonly #lock: KeyedLock;
  readonly #holder: string;
  readonly #leaseTtlMs: number;
  readonly #closed: AbortSignal;
  readonly #logger: Logger;
  readonly #pending = new Map<string, TokenSetInput>();
  readonly #flushes = new Set<Promise<void>>();

  constructor(options: {
    readonly persistence: TokenPersistence;
    readonly lock: KeyedLock;
    readonly holder: string;
    readonly leaseTtlMs: number;
    readonly closed: AbortSignal;
    readonly logger: Logger;
  }) {
    this.#persistence = options.persistence;
    this.#lock = options.lock;
    this.#holder = options.holder;
    this.#leaseTtlMs = options.leaseTtlMs;
    this.#closed = options.closed;
    this.#logger = options.logger;
  }

  /** The tokens of the account waiting for a write, if any. */
  pending(accountId: string): TokenSetInput | undefined {
    return this.#pending.get(accountId);
  }

  /** Accounts whose tokens wait for a write. */
  accounts(): string[] {
    return [...this.#pending.keys()];
  }

  /**
   * Write `tokens` (the caller holds the account's lease). `basedOn`: the account as read under the lease, so
   * the write needs no second read. `release`: release the lease with the write (one store call where the
   * store can). On failure (other than the account being gone or the input refused) the tokens are kept and
   * written in the background, and `pending` returned: the caller must then keep the lease.
   */
  async write(
    accountId: string,
    tokens: TokenSetInput,
    options: { readonly basedOn?: MailboxAccount; readonly release: boolean },
  ): Promise<WriteOutcome> {
    try {
      await this.#persistence.saveTokens(accountId, tokens, {
        ...(options.basedOn === undefined ? {} : { basedOn: options.basedOn }),
        ...(options.release ? { releaseLease: this.#holder } : {}),
      });
      // These tokens supersede any older ones still waiting for a write (they were refreshed from them).
      this.#pending.delete(accountId);
      return 'stored';
    } catch (err) {
      if (isMailboxAuthError(err, 'ERR_ACCOUNT_NOT_FOUND') || isMailboxAuthError(err, 'ERR_INVALID_ARGUMENT'))
        throw err;
      this.#pending.set(accountId, tokens);
      this.#logger.error(
        { accountId, code: codeOf(err) },
        'could not store refreshed tokens; keeping them in memory and retrying',
      );
      const flush = this.#flush(accountId).finally(() => this.#flushes.delete(flush));
      this.#flushes.add(flush);
      return 'pending';
    }
  }

  /** Resolves once every background write has ended (stored, or stopped by the close). */
  async settled(): Promise<void> {
    while (this.#flushes.size > 0) await Promise.allSettled([...this.#flushes]);
  }

  /** Retry a pending write with backoff until it succeeds (or the refresher closes), keeping the lease. */
  async #flush(accountId: string): Promise<void> {
    const backoff = new Backoff({ minDelayMs: 200, maxDelayMs: 30_000, jitter: false });
    const closed = this.#closed;
    while (!closed.aborted) {
      await pause(backoff.next(), closed);
      if (closed.aborted || !this.#pending.has(accountId)) return;
      try {
        // Under the account lock: a refresh of another resource of this account may be using the lease.
        await this.#lock.run(accountId, closed, async () => {
          const tokens = this.#pending.get(accountId);
          if (tokens === undefined) return; // a later refresh stored newer tokens meanwhile
          await this.#persistence.acquireLease(accountId, this.#holder, this.#leaseTtlMs);
          await this.#persistence.saveTokens(accountId, tokens, { releaseLease: this.#holder });
          if (this.#pending.get(accountId) === tokens) this.#pending.delete(accountId);
          this.#logger.info({ accountId }, 'stored refreshed tokens after a failed write');
        });
        return;
      } catch (err) {
        if (closed.aborted) return;
        if (isMailboxAuthError(err, 'ERR_ACCOUNT_NOT_FOUND')) {
          this.#pending.delete(accountId);
          return;
        }
        this.#logger.warn({ accountId, code: codeOf(err) }, 'retrying the store write of refreshed tokens');
      }
    }
  }
}

/** The code of an error for a log line (never its message: a store's may hold anything). @internal */
export function codeOf(error: unknown): string {
  return isMailboxAuthError(error) ? error.code : error instanceof Error ? error.name : typeof error;
}
