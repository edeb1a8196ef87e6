/**
 * Whether a string is well-formed UTF-16 (no lone surrogate). UTF-8 encoding would silently replace a lone
 * surrogate with U+FFFD, so two different strings could encode to the same bytes.
 * @internal
 */
export function isWellFormed(value: string): boolean {
  // String.prototype.isWellFormed (Node 20+) is a native scan, much faster than a Unicode regex.
  return (value as string & { isWellFormed(): boolean }).isWellFormed();
}
