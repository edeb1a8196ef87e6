/** The quickstart's narration: numbered steps and indented facts, plain text when not on a terminal. */
const bold = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
let n = 0;

/** Start the next numbered step. */
export function step(text: string): void {
  n++;
  console.log(bold ? `\n\x1b[1m${n}. ${text}\x1b[0m` : `\n${n}. ${text}`);
}

/** One fact under the current step. */
export function show(label: string, value?: unknown): void {
  if (value === undefined) console.log(`   ${label}`);
  else console.log(`   ${label}:`, value);
}

/** Shorten a long string for display (ciphertext, URLs). */
export function clip(text: string, max = 72): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}
