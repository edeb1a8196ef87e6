import { format, inspect } from 'node:util';
import fc from 'fast-check';
import { expect } from 'vitest';
import { ConfigurationError, CryptoError, type CryptoErrorReason } from '../../src/index.js';

export const B64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Run `fn` and return what it threw; fail the test if it returned. */
export function thrown(fn: () => unknown): unknown {
  let value: unknown;
  try {
    value = fn();
  } catch (err) {
    return err;
  }
  throw new Error(`expected a throw, but it returned ${JSON.stringify(value)}`);
}

/** `fn` must throw a CryptoError (code ERR_CRYPTO), optionally with this reason. */
export function expectCryptoError(fn: () => unknown, reason?: CryptoErrorReason): CryptoError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(CryptoError);
  const cryptoError = err as CryptoError;
  expect(cryptoError.code).toBe('ERR_CRYPTO');
  if (reason !== undefined) expect(cryptoError.reason).toBe(reason);
  return cryptoError;
}

/** `fn` must throw a ConfigurationError with exactly this message. */
export function expectConfigError(fn: () => unknown, message: string): ConfigurationError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(ConfigurationError);
  expect((err as ConfigurationError).code).toBe('ERR_CONFIGURATION');
  expect((err as ConfigurationError).message).toBe(message);
  return err as ConfigurationError;
}

/** Every way a value can end up in a log line. */
export function renderings(value: unknown): string[] {
  return [
    JSON.stringify(value) ?? '',
    inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true, getters: true }),
    inspect(value),
    format('%s %o %O %j', value, value, value, value),
    String(value),
  ];
}

/** Text encodings of key bytes that must never appear in output. */
export function keyEncodings(key: Uint8Array): string[] {
  const buf = Buffer.from(key);
  return [
    buf.toString('base64'),
    buf.toString('base64url'),
    buf.toString('hex'),
    buf.toString('hex').toUpperCase(),
    // A prefix is enough to leak: catch partial dumps too.
    buf.toString('base64').slice(0, 16),
    buf.toString('hex').slice(0, 16),
  ];
}

export type Mutation =
  | { readonly kind: 'replace'; readonly pos: number; readonly shift: number }
  | { readonly kind: 'delete'; readonly pos: number }
  | { readonly kind: 'insert'; readonly pos: number; readonly char: string }
  | { readonly kind: 'truncate'; readonly pos: number }
  | { readonly kind: 'append'; readonly suffix: string };

/** Random edits of a text envelope; positions are reduced modulo the length when applied. */
export function mutationArb(alphabet: string): fc.Arbitrary<Mutation> {
  const char = fc.constantFrom(...alphabet.split(''));
  const pos = fc.nat({ max: 1_000_000 });
  return fc.oneof(
    fc.record({
      kind: fc.constant('replace' as const),
      pos,
      shift: fc.integer({ min: 1, max: alphabet.length - 1 }),
    }),
    fc.record({ kind: fc.constant('delete' as const), pos }),
    fc.record({ kind: fc.constant('insert' as const), pos, char }),
    fc.record({ kind: fc.constant('truncate' as const), pos }),
    fc.record({
      kind: fc.constant('append' as const),
      suffix: fc.string({ unit: char, minLength: 1, maxLength: 8 }),
    }),
  );
}

/** Apply a mutation; the result always differs from `text` (which must be non-empty). */
export function applyMutation(text: string, alphabet: string, m: Mutation): string {
  const n = text.length;
  switch (m.kind) {
    case 'replace': {
      const i = m.pos % n;
      const current = text.charAt(i);
      const idx = alphabet.indexOf(current);
      // A different character of the alphabet (if `current` is outside it, any character differs).
      const next = alphabet.charAt((Math.max(idx, 0) + m.shift) % alphabet.length);
      return text.slice(0, i) + next + text.slice(i + 1);
    }
    case 'delete': {
      const i = m.pos % n;
      return text.slice(0, i) + text.slice(i + 1);
    }
    case 'insert': {
      const i = m.pos % (n + 1);
      return text.slice(0, i) + m.char + text.slice(i);
    }
    case 'truncate':
      return text.slice(0, m.pos % n);
    case 'append':
      return text + m.suffix;
  }
}
