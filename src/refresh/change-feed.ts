/**
 * Waiting for another process's refresh: woken by the store's change notifications, with a timer as the
 * fallback.
 * @module
 */

import { Backoff } from '../internal/backoff.js';
import type { Logger } from '../logger.js';
import type { AccountWatch } from '../store/account-store.js';
import type { AccountChangeEvent, TokenPersistence } from '../tokens/persistence.js';
import { codeOf } from './write-behind.js';

/**
 * One caller's wait for changes of one account. Changes that arrive between `expect` and `next` are kept
 * (the last one), so a caller registers before it reads and misses nothing.
 * @internal
 */
export interface Expectation {
  /**
   * The next change of the account (or `undefined` for a `reset`, or when the fallback timer fired first: check
   * the store). The fallback delay grows with each call (see {@link ChangeFeed}). Rejects with the signal's
   * reason when it aborts.
   */
  next(maxWaitMs: number, signal: AbortSignal): Promise<AccountChangeEvent | undefined>;
  /** Stop waiting (always call it: in a `finally`). */
  dispose(): void;
}

interface Waiter {
  change: AccountChangeEvent | undefined;
  /** Set by `reset`: a change may have been missed. */
  reset: boolean;
  wake: (() => void) | undefined;
}

/**
 * The store's change feed for the refresher. Started on the refresher's first look at the store (a store without `watchAccounts`, or
 * whose watch cannot be opened, is polled instead); stopped by `close`. With a feed the fallback check runs
 * after 1 s, then up to every 5 s (a missed notification costs at most that); without one, polling goes from
 * 50 ms up to 1 s as it always did.
 * @internal
 */
export class ChangeFeed {
  readonly #persistence: TokenPersistence;
  readonly #logger: Logger;
  readonly #waiters = new Map<string, Set<Waiter>>();
  #watch: Promise<AccountWatch | null> | undefined;
  #live = false;
  #closed = false;

  constructor(persistence: TokenPersistence, logger: Logger) {
    this.#persistence = persistence;
    this.#logger = logger;
  }

  /** Whether the store's notifications are flowing (false until the first wait, and on a store without them). */
  get live(): boolean {
    return this.#live;
  }

  /** Start expecting changes of `accountId` (before reading it). */
  expect(accountId: string): Expectation {
    const waiter: Waiter = { change: undefined, reset: false, wake: undefined };
    let set = this.#waiters.get(accountId);
    if (set === undefined) {
      set = new Set();
      this.#waiters.set(accountId, set);
    }
    set.add(waiter);
    // The fallback delay: long while the feed is live (a notification comes first), short while it is not.
    const liveBackoff = new Backoff({ minDelayMs: 5000, maxDelayMs: 10_000, jitter: false });
    const pollBackoff = new Backoff({ minDelayMs: 50, maxDelayMs: 1000, jitter: false });
    const dispose = () => {
      const current = this.#waiters.get(accountId);
      current?.delete(waiter);
      if (current?.size === 0) this.#waiters.delete(accountId);
      waiter.wake?.();
    };
    const next = (maxWaitMs: number, signal: AbortSignal) => {
      this.start();
      const waitMs = Math.max(1, Math.min((this.#live ? liveBackoff : pollBackoff).next(), maxWaitMs));
      return new Promise<AccountChangeEvent | undefined>((resolve, reject) => {
        signal.throwIfAborted();
        const settle = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          waiter.wake = undefined;
          const { change } = waiter;
          waiter.change = undefined;
          waiter.reset = false;
          resolve(change);
        };
        const onAbort = () => {
          clearTimeout(timer);
          waiter.wake = undefined;
          reject(signal.reason);
        };
        const timer = setTimeout(settle, waitMs);
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.wake = settle;
        if (waiter.change !== undefined || waiter.reset) settle();
      });
    };
    return { next, dispose };
  }

  /** Stop listening; waits keep working on their timers. */
  async close(): Promise<void> {
    this.#closed = true;
    const watch = await this.#watch?.catch(() => null);
    this.#live = false;
    await watch?.close().catch((err: unknown) => {
      this.#logger.warn({ code: codeOf(err) }, 'could not close the store change feed');
    });
  }

  /**
   * {@link ChangeFeed.start}, waited for at most `maxWaitMs`: a watch that cannot get its connection (a pool
   * exhausted by others) must not hold up a refresh; it goes on opening in the background and waits poll
   * meanwhile.
   */
  async ready(maxWaitMs: number): Promise<void> {
    if (this.#live || this.#closed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.start(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, maxWaitMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * Open the store's watch if it is not open (idempotent); resolves once it listens (or could not: then
   * waits poll). The refresher awaits it before its first look at the store, so that a change committed
   * after that look reaches its waiters; a process that only ever serves tokens it holds opens nothing.
   */
  start(): Promise<unknown> {
    if (this.#watch !== undefined || this.#closed) return this.#watch ?? Promise.resolve(null);
    this.#watch = this.#persistence
      .watchAccounts((change) => this.#deliver(change))
      .then(
        async (watch) => {
          if (this.#closed) {
            await watch?.close().catch(() => {});
            return null;
          }
          this.#live = watch !== null;
          return watch;
        },
        (err: unknown) => {
          this.#logger.warn(
            { code: codeOf(err) },
            'could not open the store change feed; waiting for other refreshes by polling',
          );
          return null;
        },
      );
    return this.#watch;
  }

  #deliver(change: AccountChangeEvent): void {
    if (change.kind === 'reset') {
      for (const set of this.#waiters.values()) {
        for (const waiter of set) {
          waiter.reset = true;
          waiter.wake?.();
        }
      }
      return;
    }
    const set = this.#waiters.get(change.id);
    if (set === undefined) return;
    for (const waiter of set) {
      // Keep the newest: a written record beats a release, a later version an earlier one.
      const held = waiter.change;
      if (held === undefined || held.kind !== 'written' || (change.version ?? 0) >= (held.version ?? 0)) {
        waiter.change = change;
      }
      waiter.wake?.();
    }
  }
}
