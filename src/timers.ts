/**
 * Node's timers take at most 2^31 - 1 ms (about 24.8 days): a longer delay fires after 1 ms instead. Every
 * wait the library derives from input (a `Retry-After`, a poll interval, a backoff) goes through
 * {@link timerMs} so that a huge value waits as long as it can rather than not at all.
 * @internal
 * @module
 */

/** The longest delay a Node timer honours, in milliseconds. */
const MAX_TIMER_MS = 2_147_483_647;

/** `ms` clamped to what a Node timer honours. @internal */
export function timerMs(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}
