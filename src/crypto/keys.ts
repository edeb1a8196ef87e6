import { ConfigurationError } from '../errors.js';
import { describeType } from '../internal/text.js';

/**
 * Key material accepted by the ciphers: a `Uint8Array`/`Buffer`, or a base64, base64url or hex string.
 *
 * @example
 * ```ts
 * const key: KeyInput = process.env.TOKEN_KEY!; // base64, base64url or hex of 32 bytes, or a Buffer
 * ```
 */
export type KeyInput = string | Uint8Array;

const HEX = /^[0-9a-fA-F]+$/;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * Decode key material and check its length. `label` names the key in error messages (never its value).
 * @internal
 */
export function decodeKey(input: unknown, length: number, label: string): Buffer {
  let bytes: Buffer;
  if (input instanceof Uint8Array) {
    bytes = Buffer.from(input);
  } else if (typeof input === 'string') {
    const text = input.trim();
    if (text.length % 2 === 0 && HEX.test(text)) {
      bytes = Buffer.from(text, 'hex');
    } else if (B64.test(text) || B64URL.test(text)) {
      bytes = Buffer.from(text, B64.test(text) ? 'base64' : 'base64url');
    } else {
      throw new ConfigurationError(`${label} must be base64, base64url or hex encoded`);
    }
  } else {
    throw new ConfigurationError(`${label} must be a string or a Uint8Array (got ${describeType(input)})`);
  }
  if (bytes.length !== length) {
    throw new ConfigurationError(`${label} must be exactly ${length} bytes (got ${bytes.length})`);
  }
  // All zero, all 0xFF, one byte repeated: a placeholder or a broken generator, never a random key.
  if (bytes.every((b) => b === bytes[0])) {
    throw new ConfigurationError(
      `${label} is one byte value repeated, not a random key: generate one with crypto.randomBytes(${length})`,
    );
  }
  return bytes;
}
