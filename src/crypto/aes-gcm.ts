import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomFillSync,
} from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigurationError, CryptoError } from '../errors.js';
import { describeType, isWellFormed } from '../internal/text.js';
import type { Cipher } from './cipher.js';
import { decodeKey, type KeyInput } from './keys.js';

const VERSION = 'om1';
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Options of {@link aesGcmCipher}.
 *
 * @example
 * ```ts
 * const options: AesGcmCipherOptions = { keys: { k2026: process.env.TOKEN_KEY!, k2025: oldKey }, current: 'k2026' };
 * ```
 */
export interface AesGcmCipherOptions {
  /**
   * Every key that may have encrypted a stored value, by key id (1-64 of `A-Z a-z 0-9 _ -`). Each key is
   * exactly 32 bytes, given as a `Uint8Array`/`Buffer` or a base64, base64url or hex string.
   */
  readonly keys: Readonly<Record<string, KeyInput>>;
  /** The id of the key that encrypts new values. Must be one of `keys`. */
  readonly current: string;
}

/**
 * AES-256-GCM with a key ring. Implements {@link Cipher}.
 *
 * The envelope is text: `om1.<keyId>.<iv>.<ciphertext>.<tag>` (base64url parts, a random 96-bit IV per
 * value). The version and key id are authenticated together with the caller's `aad`, so a value copied
 * onto another account, a swapped key id or any flipped character fails with a {@link CryptoError}.
 *
 * Construct with {@link aesGcmCipher}.
 *
 * @example
 * ```ts
 * const cipher: AesGcmCipher = aesGcmCipher({ keys: { k1: key }, current: 'k1' });
 * cipher.needsReencryption(record.secret); // true if sealed with another key
 * ```
 */
export class AesGcmCipher implements Cipher {
  readonly #keys: Map<string, KeyObject>;
  readonly #current: string;

  constructor(options: AesGcmCipherOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigurationError('aesGcmCipher: options must be an object with `keys` and `current`');
    }
    const { keys, current } = options;
    if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) {
      throw new ConfigurationError(
        `aesGcmCipher: \`keys\` must be an object of key id to key (got ${describeType(keys)})`,
      );
    }
    this.#keys = new Map();
    for (const [id, key] of Object.entries(keys)) {
      if (!KEY_ID.test(id)) {
        throw new ConfigurationError(
          `aesGcmCipher: key id "${id.slice(0, 64)}" must match /^[A-Za-z0-9_-]{1,64}$/`,
        );
      }
      this.#keys.set(id, createSecretKey(decodeKey(key, 32, `aesGcmCipher: key "${id}"`)));
    }
    if (this.#keys.size === 0)
      throw new ConfigurationError('aesGcmCipher: `keys` must hold at least one key');
    if (typeof current !== 'string' || !this.#keys.has(current)) {
      throw new ConfigurationError(
        `aesGcmCipher: \`current\` must name one of the keys (${[...this.#keys.keys()].join(', ')})`,
      );
    }
    this.#current = current;
  }

  /** The id of the key that encrypts new values. */
  get currentKeyId(): string {
    return this.#current;
  }

  /** The ids of every key that can decrypt. */
  get keyIds(): readonly string[] {
    return [...this.#keys.keys()];
  }

  encrypt(plaintext: string, aad: string): string {
    if (!isWellFormed(plaintext) || !isWellFormed(aad)) {
      // Encoding would replace the surrogate with U+FFFD: the value would come back changed, and two
      // different aads would authenticate as the same one.
      throw new CryptoError(
        'aesGcmCipher: plaintext and aad must be well-formed UTF-16 (no lone surrogate)',
        {
          reason: 'malformed',
        },
      );
    }
    const key = this.#keys.get(this.#current) as KeyObject;
    const iv = nextIv();
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(`${VERSION}.${this.#current}.${aad}`, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `${VERSION}.${this.#current}.${iv.toString('base64url')}.${ct.toString('base64url')}.${tag.toString('base64url')}`;
  }

  decrypt(ciphertext: string, aad: string): string {
    const { keyId, iv, ct, tag } = parseEnvelope(ciphertext);
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      throw new CryptoError(`The value was encrypted with key "${keyId}", which is not configured`, {
        reason: 'unknown_key',
        keyId,
      });
    }
    try {
      // No value is ever encrypted with such an aad (see encrypt); refuse it rather than let it collide.
      if (!isWellFormed(aad)) throw new TypeError('the aad has a lone surrogate');
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(`${VERSION}.${keyId}.${aad}`, 'utf8'));
      decipher.setAuthTag(tag);
      const out = Buffer.concat([decipher.update(ct), decipher.final()]);
      return out.toString('utf8');
    } catch (cause) {
      throw new CryptoError(
        'Decryption failed: wrong key, tampered value, or a value that belongs to another account',
        { reason: 'decrypt_failed', keyId, cause },
      );
    }
  }

  needsReencryption(ciphertext: string): boolean {
    try {
      return parseEnvelope(ciphertext).keyId !== this.#current;
    } catch {
      return true;
    }
  }

  /** @internal */
  [inspect.custom](): string {
    return `AesGcmCipher { current: '${this.#current}', keyIds: [${this.keyIds.map((k) => `'${k}'`).join(', ')}] }`;
  }

  /** @internal */
  toJSON(): Record<string, unknown> {
    return { type: 'aes-256-gcm', current: this.#current, keyIds: this.keyIds };
  }
}

/** IVs come from a pool of random bytes refilled 4 KiB at a time (one CSPRNG call per 341 values). */
const IV_POOL = Buffer.alloc(IV_BYTES * 341);
let ivOffset = IV_POOL.length;
function nextIv(): Buffer {
  if (ivOffset + IV_BYTES > IV_POOL.length) {
    randomFillSync(IV_POOL);
    ivOffset = 0;
  }
  // A copy: the pool is overwritten on the next refill.
  const iv = Buffer.from(IV_POOL.subarray(ivOffset, ivOffset + IV_BYTES));
  ivOffset += IV_BYTES;
  return iv;
}

function decodePart(part: string, expectedLength?: number): Buffer | undefined {
  const bytes = Buffer.from(part, 'base64url');
  // Refuse anything but the canonical encoding (this also refuses any character outside the alphabet), so
  // that every changed character is detected.
  if (bytes.toString('base64url') !== part) return undefined;
  if (expectedLength !== undefined && bytes.length !== expectedLength) return undefined;
  return bytes;
}

function parseEnvelope(value: unknown): { keyId: string; iv: Buffer; ct: Buffer; tag: Buffer } {
  if (typeof value !== 'string') {
    throw new CryptoError(`The encrypted value must be a string (got ${describeType(value)})`, {
      reason: 'malformed',
    });
  }
  const parts = value.split('.');
  const [version, keyId, ivPart, ctPart, tagPart] = parts;
  if (parts.length !== 5 || version !== VERSION || keyId === undefined || !KEY_ID.test(keyId)) {
    throw new CryptoError('The encrypted value is not an om1 AES-GCM envelope', { reason: 'malformed' });
  }
  const iv = decodePart(ivPart as string, IV_BYTES);
  const ct = decodePart(ctPart as string);
  const tag = decodePart(tagPart as string, TAG_BYTES);
  if (iv === undefined || ct === undefined || tag === undefined) {
    throw new CryptoError('The encrypted value is truncated or corrupted', { reason: 'malformed', keyId });
  }
  return { keyId, iv, ct, tag };
}

/**
 * Create an AES-256-GCM {@link Cipher} with a key ring, for online key rotation: new values are encrypted
 * with `current`, values made with any configured key still decrypt, and `needsReencryption(value)` tells
 * which ones to rewrite. Keys are validated up front: each must be exactly 32 bytes.
 *
 * Generate a key with `openssl rand -base64 32` or
 * `node -e "console.log(crypto.randomBytes(32).toString('base64'))"`.
 *
 * @example
 * ```ts
 * import { aesGcmCipher } from 'oauth-mailbox';
 * const cipher = aesGcmCipher({
 *   keys: { k2026: process.env.TOKEN_KEY_2026!, k2025: process.env.TOKEN_KEY_2025! },
 *   current: 'k2026',
 * });
 * const sealed = cipher.encrypt('secret', 'account:42');
 * cipher.decrypt(sealed, 'account:42'); // 'secret'
 * cipher.decrypt(sealed, 'account:43'); // throws CryptoError (reason 'decrypt_failed')
 * ```
 */
export function aesGcmCipher(options: AesGcmCipherOptions): AesGcmCipher {
  return new AesGcmCipher(options);
}
