/**
 * The CLI's progress line: one line on a TTY, rewritten in place at most every `intervalMs`, cleared when
 * the work is done.
 * @internal
 * @module
 */

/** At most ten updates a second. @internal */
export const PROGRESS_INTERVAL_MS = 100;

/**
 * A progress line on `stream`, or one that writes nothing when `stream` is `undefined` (not a TTY, `--json`).
 * `update` writes at once the first time, then at most once per `intervalMs`; `done`
 * erases the line if anything was written.
 * @internal
 */
export function progressLine(
  stream: { write(text: string): unknown } | undefined,
  options: { readonly now?: () => number; readonly intervalMs?: number } = {},
): { update(text: string): void; done(): void } {
  if (stream === undefined) return { update: () => {}, done: () => {} };
  const now = options.now ?? (() => performance.now());
  const intervalMs = options.intervalMs ?? PROGRESS_INTERVAL_MS;
  let last = Number.NEGATIVE_INFINITY;
  let written = false;
  return {
    update(text) {
      const at = now();
      if (at - last < intervalMs) return;
      last = at;
      written = true;
      stream.write(`\r${text}\x1b[K`); // the rest of a longer previous line erased
    },
    done() {
      if (written) stream.write('\r\x1b[K');
      written = false;
    },
  };
}
