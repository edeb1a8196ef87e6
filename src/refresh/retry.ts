/**
 * Retries of transient token request failures, with backoff and `Retry-After`.
 * @module
 */

import pRetry from 'p-retry';
import { TokenRefreshError } from '../errors.js';
import { delay } from '../internal/timers.js';

/**
 * Retry policy of transient refresh failures.
 *
 * @example
 * ```ts
 * createMailboxAuth({ ...config, refresh: { retry: { retries: 5, maxRetryTimeMs: 60_000 } } });
 * ```
 */
export interface RefreshRetryOptions {
  /** Retries after the first attempt. @default 3 */
  readonly retries?: number;
  /** First backoff, in milliseconds (then doubling, with jitter). @default 500 */
  readonly minDelayMs?: number;
  /** Largest backoff, in milliseconds. @default 10000 */
  readonly maxDelayMs?: number;
  /** Give up once this much time has passed since the first attempt, in milliseconds. @default 30000 */
  readonly maxRetryTimeMs?: number;
}

/** A failed attempt, as the retry policy reports it (for a log line). @internal */
export interface FailedAttempt {
  readonly error: Error;
  readonly attempt: number;
  readonly retriesLeft: number;
}

/**
 * Run `attempt` until it succeeds, retrying `TokenRefreshError` (transient) with exponential backoff and
 * jitter, waiting `retryAfterMs` when the provider said so (giving up if that would outlive the budget).
 * An attempt is never cut short: with a rotating provider its answer holds the only valid refresh token, so
 * it is returned even if `signal` aborted meanwhile (p-retry would discard it). Waits between attempts abort.
 * @internal
 */
export async function retryTransient<T>(
  attempt: () => Promise<T>,
  options: Required<RefreshRetryOptions> & {
    readonly signal: AbortSignal;
    readonly now: () => number;
    readonly onFailedAttempt: (failed: FailedAttempt) => void;
  },
): Promise<T> {
  const { retries, minDelayMs, maxDelayMs, maxRetryTimeMs, signal, now } = options;
  const started = now();
  let obtained: { value: T } | undefined;
  try {
    return await pRetry(
      async () => {
        const value = await attempt();
        obtained = { value };
        return value;
      },
      {
        retries,
        factor: 2,
        minTimeout: minDelayMs,
        maxTimeout: maxDelayMs,
        randomize: true,
        maxRetryTime: maxRetryTimeMs,
        signal,
        shouldRetry: ({ error }) => error instanceof TokenRefreshError,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          options.onFailedAttempt({ error, attempt: attemptNumber, retriesLeft });
          if (error instanceof TokenRefreshError && error.retryAfterMs !== undefined && retriesLeft > 0) {
            if (now() - started + error.retryAfterMs > maxRetryTimeMs) throw error; // would outlive the budget
            await delay(error.retryAfterMs, signal);
          }
        },
      },
    );
  } catch (err) {
    if (obtained !== undefined) return obtained.value;
    throw err;
  }
}
