/**
 * Exponential backoff, the one way the library spaces its retries: the delay doubles from `minDelayMs` up
 * to `maxDelayMs`, each drawn with "equal jitter" (between half the delay and the whole) unless jitter is
 * off, so that many clients failing together do not come back together.
 * @internal
 * @module
 */

/** How a {@link Backoff} grows. @internal */
export interface BackoffOptions {
  /** The first delay, in milliseconds. */
  readonly minDelayMs: number;
  /** The largest delay, in milliseconds. */
  readonly maxDelayMs: number;
  /** Draw each delay between half of it and all of it. @default true */
  readonly jitter?: boolean;
}

/**
 * The delay before retry number `attempt` (0 for the first retry), in milliseconds.
 * @internal
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const base = Math.min(options.minDelayMs * 2 ** attempt, options.maxDelayMs);
  return options.jitter === false ? base : Math.round(base * (0.5 + Math.random() / 2));
}

/**
 * A retry loop's backoff: `next()` gives the next delay and doubles the one after, `reset()` starts over
 * after a success.
 * @internal
 */
export class Backoff {
  readonly #options: BackoffOptions;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    this.#options = options;
  }

  /** The delay to wait now, in milliseconds; the following one is twice as long (up to the largest). */
  next(): number {
    const ms = backoffDelay(this.#attempt, this.#options);
    if (this.#options.minDelayMs * 2 ** this.#attempt < this.#options.maxDelayMs) this.#attempt++;
    return ms;
  }

  /** Start again from the first delay. */
  reset(): void {
    this.#attempt = 0;
  }
}
