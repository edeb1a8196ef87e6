import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigurationError, CryptoError } from '../errors.js';
import type { Cipher } from './cipher.js';
import { decodeKey, type KeyInput } from './keys.js';

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

import { isWellFormed } from '../internal/text.js';

const VERSION = 0x80;
const HEADER_BYTES = 1 + 8 + 16;
const HMAC_BYTES = 32;
const MAX_CLOCK_SKEW_S = 60;
const TOKEN = /^[A-Za-z0-9_-]+={0,2}$/;

/**
 * Options of {@link fernetCipher}.
 *
 * @example
 * ```ts
 * const options: FernetCipherOptions = { keys: [newKey, oldKey], ttlSeconds: 86_400 };
 * ```
 */
export interface FernetCipherOptions {
  /**
   * One Fernet key, or several (the first encrypts, any decrypts, like Python's `MultiFernet`). Each is
   * the 32-byte url-safe base64 string that Python's `Fernet.generate_key()` prints, or raw bytes.
   */
  readonly keys: KeyInput | readonly KeyInput[];
  /**
   * Refuse tokens older than this many seconds (and tokens dated more than 60 s in the future), as
   * Python's `decrypt(token, ttl)`. Token age is usually irrelevant for values at rest.
   * @default undefined (no age check)
   */
  readonly ttlSeconds?: number;
  /** The clock, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

interface FernetKey {
  readonly signing: Buffer;
  readonly encryption: Buffer;
}

/**
 * Encrypt with explicit IV and timestamp (for the spec's test vectors).
 * @internal
 */
export function fernetEncrypt(key: FernetKey, plaintext: string, iv: Uint8Array, timestampS: number): string {
  if (!isWellFormed(plaintext)) {
    throw new CryptoError('fernetCipher: the plaintext must be well-formed UTF-16 (no lone surrogate)', {
      reason: 'malformed',
    });
  }
  const cipher = createCipheriv('aes-128-cbc', key.encryption, iv);
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const header = Buffer.alloc(9);
  header.writeUInt8(VERSION, 0);
  header.writeBigUInt64BE(BigInt(Math.floor(timestampS)), 1);
  const signed = Buffer.concat([header, iv, ct]);
  const mac = createHmac('sha256', key.signing).update(signed).digest();
  return Buffer.concat([signed, mac])
    .toString('base64url')
    .padEnd(Math.ceil((signed.length + 32) / 3) * 4, '=');
}

/**
 * Reads and writes [Fernet](https://github.com/fernet/spec) tokens (AES-128-CBC + HMAC-SHA256), so a host
 * migrating from a Python backend can decrypt tokens it stored with `cryptography.fernet`. Implements
 * {@link Cipher}.
 *
 * Fernet has no associated data: the `aad` argument is ignored, so a Fernet value is not bound to its
 * account. Use it to read legacy values and re-encrypt them with {@link aesGcmCipher}.
 *
 * Construct with {@link fernetCipher}.
 *
 * @example
 * ```ts
 * const legacy: FernetCipher = fernetCipher({ keys: process.env.FERNET_KEY! });
 * const refreshToken = legacy.decrypt(row.refresh_token_enc);
 * ```
 */
export class FernetCipher implements Cipher {
  readonly #keys: readonly FernetKey[];
  readonly #ttlSeconds: number | undefined;
  readonly #now: () => number;

  constructor(options: FernetCipherOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigurationError('fernetCipher: options must be an object with `keys`');
    }
    const list: readonly unknown[] = Array.isArray(options.keys) ? options.keys : [options.keys];
    if (list.length === 0) throw new ConfigurationError('fernetCipher: `keys` must hold at least one key');
    this.#keys = list.map((k, i) => {
      const raw = decodeKey(k, 32, `fernetCipher: key ${i}`);
      return { signing: raw.subarray(0, 16), encryption: raw.subarray(16) };
    });
    if (
      options.ttlSeconds !== undefined &&
      (typeof options.ttlSeconds !== 'number' ||
        !Number.isFinite(options.ttlSeconds) ||
        options.ttlSeconds <= 0)
    ) {
      throw new ConfigurationError('fernetCipher: `ttlSeconds` must be a positive number');
    }
    this.#ttlSeconds = options.ttlSeconds;
    this.#now = options.now ?? Date.now;
  }

  encrypt(plaintext: string, _aad?: string): string {
    return fernetEncrypt(this.#keys[0] as FernetKey, plaintext, randomBytes(16), this.#now() / 1000);
  }

  decrypt(ciphertext: string, _aad?: string): string {
    const data = decodeToken(ciphertext);
    const signed = data.subarray(0, data.length - HMAC_BYTES);
    const mac = data.subarray(data.length - HMAC_BYTES);
    const key = this.#keys.find((k) =>
      timingSafeEqual(createHmac('sha256', k.signing).update(signed).digest(), mac),
    );
    if (key === undefined) {
      throw new CryptoError('Fernet token signature is invalid: wrong key or tampered token', {
        reason: 'decrypt_failed',
      });
    }
    if (this.#ttlSeconds !== undefined) {
      const timestamp = Number(data.readBigUInt64BE(1));
      const now = Math.floor(this.#now() / 1000);
      if (timestamp + this.#ttlSeconds < now) {
        throw new CryptoError('Fernet token has expired', { reason: 'expired' });
      }
      if (timestamp > now + MAX_CLOCK_SKEW_S) {
        throw new CryptoError('Fernet token is dated in the future', { reason: 'malformed' });
      }
    }
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-128-cbc', key.encryption, data.subarray(9, HEADER_BYTES));
      plaintext = Buffer.concat([decipher.update(signed.subarray(HEADER_BYTES)), decipher.final()]);
    } catch (cause) {
      throw new CryptoError('Fernet token could not be decrypted (bad padding)', {
        reason: 'decrypt_failed',
        cause,
      });
    }
    try {
      // A lossy decoding would hand out a different string than was stored (U+FFFD for the bad bytes).
      return STRICT_UTF8.decode(plaintext);
    } catch {
      throw new CryptoError('Fernet token plaintext is not UTF-8 text', { reason: 'malformed' });
    }
  }

  /** True when the token was not signed with the first (current) key. */
  needsReencryption(ciphertext: string): boolean {
    try {
      const data = decodeToken(ciphertext);
      const mac = createHmac('sha256', (this.#keys[0] as FernetKey).signing)
        .update(data.subarray(0, data.length - HMAC_BYTES))
        .digest();
      return !timingSafeEqual(mac, data.subarray(data.length - HMAC_BYTES));
    } catch {
      return true;
    }
  }

  /** @internal */
  [inspect.custom](): string {
    return `FernetCipher { keys: ${this.#keys.length} }`;
  }

  /** @internal */
  toJSON(): Record<string, unknown> {
    return { type: 'fernet', keys: this.#keys.length };
  }
}

function decodeToken(token: unknown): Buffer {
  if (typeof token !== 'string' || !TOKEN.test(token)) {
    throw new CryptoError('Fernet token is not url-safe base64', { reason: 'malformed' });
  }
  const data = Buffer.from(token, 'base64url');
  const canonical = data.toString('base64url');
  // Exactly the padded form Fernet writes: no missing, extra or altered padding.
  if (canonical.padEnd(Math.ceil(canonical.length / 4) * 4, '=') !== token) {
    throw new CryptoError('Fernet token is not canonical url-safe base64', { reason: 'malformed' });
  }
  if (data.length < HEADER_BYTES + 16 + HMAC_BYTES || (data.length - HEADER_BYTES - HMAC_BYTES) % 16 !== 0) {
    throw new CryptoError('Fernet token is truncated or has an invalid length', { reason: 'malformed' });
  }
  if (data[0] !== VERSION) {
    throw new CryptoError('Fernet token has an unknown version', { reason: 'malformed' });
  }
  return data;
}

/**
 * Create a Fernet {@link Cipher}: read (and write) tokens made by Python's `cryptography.fernet`.
 *
 * @example
 * ```ts
 * import { fernetCipher } from 'oauth-mailbox';
 * // The key the Python backend used (Fernet.generate_key()).
 * const legacy = fernetCipher({ keys: process.env.FERNET_KEY! });
 * const refreshToken = legacy.decrypt(row.encrypted_refresh_token);
 * ```
 */
export function fernetCipher(options: FernetCipherOptions): FernetCipher {
  return new FernetCipher(options);
}
