/**
 * The encryption contract used for tokens at rest.
 *
 * @module
 */

/**
 * Encrypts and decrypts secret values. Implementations must use authenticated encryption where they can,
 * bind the value to `aad` (additional authenticated data, here the account it belongs to), and throw a
 * {@link CryptoError} (never return garbage) when a value cannot be decrypted.
 *
 * Bring your own (a KMS, Vault transit) by implementing this interface; results may be synchronous or
 * promises.
 *
 * @example
 * ```ts
 * import type { Cipher } from 'oauth-mailbox';
 * const kmsCipher: Cipher = {
 *   async encrypt(plaintext, aad) { return kms.encrypt({ plaintext, context: { aad } }) },
 *   async decrypt(ciphertext, aad) { return kms.decrypt({ ciphertext, context: { aad } }) },
 * };
 * ```
 */
export interface Cipher {
  /** Encrypt `plaintext`, binding it to `aad`. Returns a self-describing text envelope. */
  encrypt(plaintext: string, aad: string): string | Promise<string>;
  /** Decrypt an envelope made by `encrypt` with the same `aad`, or throw a `CryptoError`. */
  decrypt(ciphertext: string, aad: string): string | Promise<string>;
  /**
   * Whether a value should be re-encrypted (it was made with a key or format that is no longer current).
   * Used by key rotation; a cipher without key rotation may omit it.
   */
  needsReencryption?(ciphertext: string): boolean;
}
