/**
 * Numeric options, checked the one way: a safe integer in its range, else the caller's typed error (whose
 * message names the option and its range).
 * @internal
 * @module
 */

/**
 * `value` (or `fallback` when it is `undefined`) if it is a safe integer from `min` to `max`; otherwise what
 * `refuse()` returns is thrown.
 * @internal
 */
export function integerOption(
  value: unknown,
  fallback: number,
  min: number,
  max: number,
  refuse: () => Error,
): number {
  const v = value === undefined ? fallback : value;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw refuse();
  return v;
}
