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

/**
 * A signal that aborts when any of `signals` does (with that signal's reason), like `AbortSignal.any`, but
 * whose links are removed by `dispose()`. `AbortSignal.any` in Node 20 keeps a reference to every signal it
 * ever derived from a source for the life of the source (~80 bytes each): derived from a long-lived signal
 * (a refresher's close signal, a host's server signal) per call, it grows without bound. Call `dispose()`
 * once the work the signal guards has settled; undefined entries are ignored.
 * @internal
 */
export function linkSignals(signals: readonly (AbortSignal | undefined)[]): {
  readonly signal: AbortSignal;
  readonly dispose: () => void;
} {
  const controller = new AbortController();
  const stops: (() => void)[] = [];
  for (const source of signals) {
    if (source === undefined) continue;
    if (source.aborted) {
      controller.abort(source.reason);
      break;
    }
    stops.push(listenForAbort(source, () => controller.abort(source.reason)));
  }
  const dispose = () => {
    for (const stop of stops.splice(0)) stop();
  };
  if (controller.signal.aborted) dispose();
  return { signal: controller.signal, dispose };
}
