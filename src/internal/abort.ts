/**
 * Abort signals, the one way the library listens to them: a listener is always removed once the work it
 * guards has settled, so that a long-lived signal (a watcher's, a host's request) never collects listeners.
 * @internal
 * @module
 */

/**
 * Call `onAbort` (once) if `signal` aborts before the returned function is called; calling it removes the
 * listener. With no signal, nothing is listened to. An already aborted signal calls `onAbort` at once.
 * @internal
 */
export function listenForAbort(signal: AbortSignal | undefined, onAbort: () => void): () => void {
  if (signal === undefined) return () => {};
  if (signal.aborted) {
    onAbort();
    return () => {};
  }
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/**
 * `promise`, or the signal's reason as soon as it aborts (at once if it already has). The promise itself
 * goes on: this stops the caller's wait, not the work.
 * @internal
 */
export async function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  let stop = () => {};
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        stop = listenForAbort(signal, () => reject(signal.reason));
      }),
    ]);
  } finally {
    stop();
  }
}
