/** Waiting on a condition instead of the clock, and collecting what an async iterator yields. */

/**
 * Resolves with the first value `check` returns (or resolves to) that is not undefined, checking every
 * `intervalMs`; rejects with what `check` throws, or after `timeoutMs` (a bound for a slow machine, not a delay
 * the test relies on).
 */
export function waitFor<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
  {
    intervalMs = 10,
    message = 'timed out waiting',
  }: { intervalMs?: number; message?: string | (() => string) } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const settle = (value: T | undefined) => {
      if (value !== undefined) return resolve(value);
      if (Date.now() > deadline)
        return reject(new Error(typeof message === 'function' ? message() : message));
      setTimeout(tick, intervalMs);
    };
    const tick = () => {
      let value: T | undefined | Promise<T | undefined>;
      try {
        value = check();
      } catch (err) {
        return reject(err);
      }
      if (value instanceof Promise) value.then(settle, reject);
      else settle(value);
    };
    tick();
  });
}

/** Everything the iterable yields, in order (a listing read to its end). */
export async function all<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}
