/**
 * Mailbox activity shared across instances: what each mailbox client of this process did (messages
 * processed and failed, errors, callback time, last success, last error), counted per account and hour and
 * added to the store in batches, so that `auth.mailboxHealth()` on any instance answers for the fleet.
 *
 * Writes are batched: at most one per account every `flushIntervalMs`, and at once when a watcher stops,
 * a client disconnects or the auth closes. A failed write is logged and its counts kept for the next one
 * (nothing counted twice, nothing lost while the process lives).
 * @internal
 * @module
 */
import { isMailboxAuthError } from '../errors.js';
import { toWellFormed } from '../internal/text.js';
import { timerMs } from '../internal/timers.js';
import type { Logger } from '../logger.js';
import type { MailboxActivity, MailboxActivityError } from '../store/account-store.js';
import { ACTIVITY_HOUR_MS } from '../store/validate.js';
import type { TokenPersistence } from '../tokens/persistence.js';

/** Counts of one account and hour not yet written. */
interface Pending {
  processed: number;
  failed: number;
  errors: number;
  handlerMs: number;
  lastSuccessAt: number | null;
  lastError: MailboxActivityError | null;
}

/** Settings of {@link ActivityRecorder}. @internal */
export interface ActivityRecorderOptions {
  readonly persistence: TokenPersistence;
  readonly logger: Logger;
  /** How long counts wait before they are written, in milliseconds. @default 10_000 */
  readonly flushIntervalMs?: number;
  /** The clock, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

/** The stable code and a bounded, storable message of a failure (no NUL, no lone surrogate). @internal */
export function activityError(err: unknown, at: number): MailboxActivityError {
  const code = isMailboxAuthError(err) ? err.code : (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return {
    code: typeof code === 'string' && code.length > 0 ? code.slice(0, 100) : 'ERR_UNEXPECTED',
    message: toWellFormed(message.slice(0, 300)).replaceAll('\u0000', ''),
    at,
  };
}

/** What mailbox clients record into, written to the store in batches. @internal */
export class ActivityRecorder {
  readonly #persistence: TokenPersistence;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** accountId → hour start → counts not yet written. */
  readonly #pending = new Map<string, Map<number, Pending>>();
  /** The write of each account in progress (one at a time per account). */
  readonly #writing = new Map<string, Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ActivityRecorderOptions) {
    this.#persistence = options.persistence;
    this.#logger = options.logger;
    this.#intervalMs = options.flushIntervalMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Whether the store keeps activity (else recording does nothing). */
  get enabled(): boolean {
    return this.#persistence.keepsMailboxActivity;
  }

  /** A message's callback resolved after `handlerMs`. */
  processed(accountId: string, handlerMs: number): void {
    this.#record(accountId, (p, now) => {
      p.processed += 1;
      p.handlerMs += Math.max(0, Math.round(handlerMs));
      p.lastSuccessAt = now;
    });
  }

  /** A message was skipped after its callback failed on every attempt. */
  failed(accountId: string): void {
    this.#record(accountId, (p) => {
      p.failed += 1;
    });
  }

  /** A connection, request or watch session succeeded. */
  succeeded(accountId: string): void {
    this.#record(accountId, (p, now) => {
      p.lastSuccessAt = now;
    });
  }

  /** A connection, request or watch session failed. */
  errored(accountId: string, err: unknown): void {
    this.#record(accountId, (p, now) => {
      p.errors += 1;
      p.lastError = activityError(err, now);
    });
  }

  #record(accountId: string, change: (pending: Pending, now: number) => void): void {
    if (this.#closed || !this.enabled) return;
    const now = this.#now();
    const hour = now - (now % ACTIVITY_HOUR_MS);
    let hours = this.#pending.get(accountId);
    if (hours === undefined) {
      hours = new Map();
      this.#pending.set(accountId, hours);
    }
    let pending = hours.get(hour);
    if (pending === undefined) {
      pending = { processed: 0, failed: 0, errors: 0, handlerMs: 0, lastSuccessAt: null, lastError: null };
      hours.set(hour, pending);
    }
    change(pending, now);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#pending.size === 0 || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, timerMs(this.#intervalMs));
    this.#timer.unref();
  }

  /**
   * Write what is pending for `accountIds` (every account when omitted); resolves when written or failed
   * (a failure is logged and its counts kept for the next write). Never rejects.
   */
  async flush(accountIds?: readonly string[]): Promise<void> {
    const ids = accountIds ?? [...this.#pending.keys()];
    await Promise.all(ids.map((id) => this.#flushAccount(id)));
    this.#schedule();
  }

  async #flushAccount(accountId: string): Promise<void> {
    // One write at a time per account: a flush waits for the one in progress, then writes what came since.
    const before = this.#writing.get(accountId);
    if (before !== undefined) await before;
    const hours = this.#pending.get(accountId);
    if (hours === undefined) return;
    this.#pending.delete(accountId);
    const write = this.#write(accountId, hours);
    this.#writing.set(accountId, write);
    try {
      await write;
    } finally {
      if (this.#writing.get(accountId) === write) this.#writing.delete(accountId);
    }
  }

  async #write(accountId: string, hours: Map<number, Pending>): Promise<void> {
    for (const [hour, pending] of [...hours].sort(([a], [b]) => a - b)) {
      const activity: MailboxActivity = { hour, ...pending };
      try {
        await this.#persistence.addMailboxActivity(accountId, activity);
        hours.delete(hour);
      } catch (err) {
        this.#logger.warn(
          { accountId, code: (err as { code?: string }).code },
          'could not save mailbox activity (kept for the next write)',
        );
        if (!this.#closed) this.#restore(accountId, hours);
        return;
      }
    }
  }

  /** Counts whose write failed, merged back under what was recorded since. */
  #restore(accountId: string, failed: Map<number, Pending>): void {
    const hours = this.#pending.get(accountId) ?? new Map<number, Pending>();
    for (const [hour, old] of failed) {
      const now = hours.get(hour);
      if (now === undefined) {
        hours.set(hour, old);
        continue;
      }
      now.processed += old.processed;
      now.failed += old.failed;
      now.errors += old.errors;
      now.handlerMs += old.handlerMs;
      now.lastSuccessAt ??= old.lastSuccessAt;
      now.lastError ??= old.lastError;
    }
    this.#pending.set(accountId, hours);
  }

  /** Write everything pending (once), then record nothing more. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
