/**
 * Waiting, the one way the library does it. Node's timers take at most 2^31 - 1 ms (about 24.8 days): a
 * longer delay fires after 1 ms instead, so every wait the library derives from input (a `Retry-After`, a
 * poll interval, a backoff) goes through {@link timerMs} and waits as long as it can rather than not at all.
 * @internal
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** The longest delay a Node timer honours, in milliseconds. */
const MAX_TIMER_MS = 2_147_483_647;

/** `ms` clamped to what a Node timer honours. @internal */
export function timerMs(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}

/**
 * Wait `ms` (nothing when it is 0 or less); rejects with the signal's reason as soon as it aborts (at once if
 * it already has).
 * @internal
 */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  try {
    await sleep(timerMs(ms), undefined, signal === undefined ? {} : { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}

/** Wait `ms`, or less if `signal` aborts; never rejects. @internal */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, signal).catch(() => {});
}
