/**
 * A lock per key in the process: work on one key runs one at a time, in arrival order.
 * @module
 */

import { raceAbort } from '../internal/abort.js';

/**
 * A FIFO queue per key. The refresher takes it per account around a refresh, because the primary token and
 * each resource's are refreshed with the same (rotating) refresh token, and the store lease is re-entrant
 * for this process's holder id so it cannot tell two flights of one process apart.
 * @internal
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  /** Keys with work queued or running. */
  get size(): number {
    return this.#tails.size;
  }

  /**
   * Run `fn` once no earlier work of `key` runs. A caller whose signal aborts while queued leaves the queue
   * (its turn passes at once to the next) and gets the signal's reason; `fn` is not called then.
   */
  async run<T>(key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    let release = () => {};
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous === undefined ? mine : previous.then(() => mine);
    this.#tails.set(key, tail);
    try {
      if (previous !== undefined) await raceAbort(previous, signal);
      signal.throwIfAborted();
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
