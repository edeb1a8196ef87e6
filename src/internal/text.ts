/**
 * Checks on strings that several layers share: what a value is (for error messages that never echo it),
 * whether it is well-formed UTF-16, and whether it holds control characters.
 * @internal
 * @module
 */

/** `null`, `array`, or the `typeof` of a value: named in an error without echoing the value. @internal */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Whether a string is well-formed UTF-16 (no lone surrogate). UTF-8 encoding would silently replace a lone
 * surrogate with U+FFFD, so two different strings could encode to the same bytes.
 * @internal
 */
export function isWellFormed(value: string): boolean {
  // String.prototype.isWellFormed (Node 20+) is a native scan, much faster than a Unicode regex.
  return (value as string & { isWellFormed(): boolean }).isWellFormed();
}

/** `value` with each lone surrogate replaced by U+FFFD (String.prototype.toWellFormed, Node 20+). @internal */
export function toWellFormed(value: string): string {
  return (value as string & { toWellFormed(): string }).toWellFormed();
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const C0_AND_DEL = /[\u0000-\u001f\u007f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const C0_DEL_AND_C1 = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Whether `value` holds a control character: C0 (U+0000 to U+001F) or DEL, and with `c1` the C1 controls
 * (U+0080 to U+009F) too. In a protocol field one would end the field and start another (SASL, headers);
 * in an identifier it would make two different values look alike.
 * @internal
 */
export function hasControlCharacter(value: string, options: { readonly c1?: boolean } = {}): boolean {
  return (options.c1 === true ? C0_DEL_AND_C1 : C0_AND_DEL).test(value);
}
