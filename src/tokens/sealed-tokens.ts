/**
 * The sealed-token codec: a {@link TokenSet} to the encrypted `secret` of an account record and back, bound
 * to the account id (a blob moved to another record does not open), every failure a `CryptoError` that
 * never quotes the plaintext.
 * @internal
 * @module
 */
import type { Cipher } from '../crypto/cipher.js';
import { CryptoError } from '../errors.js';
import type { AccountRecord } from '../store/account-store.js';
import { TokenSet } from './token-set.js';

/** Bound into the ciphertext with the account id. */
const AAD_PREFIX = 'oauth-mailbox/account/';

/** Seals and opens the token blobs of account records with one cipher. @internal */
export class SealedTokens {
  readonly #cipher: Cipher;

  constructor(cipher: Cipher) {
    this.#cipher = cipher;
  }

  /** Whether a sealed blob was made with another key than the cipher's current one. */
  needsResealing(secret: string): boolean {
    return this.#cipher.needsReencryption?.(secret) === true;
  }

  /** The sealed blob of `tokens` for the account `id` (bound to it). */
  async seal(id: string, tokens: TokenSet): Promise<string> {
    try {
      return await this.#cipher.encrypt(tokens.toSecretJSON(), AAD_PREFIX + id);
    } catch (cause) {
      if (cause instanceof CryptoError) throw cause;
      throw new CryptoError('The cipher failed to encrypt the tokens', {
        reason: 'invalid_key',
        accountId: id,
        cause,
      });
    }
  }

  /** The tokens of a record; `null` when it holds none (an empty `secret`). */
  async open(record: AccountRecord): Promise<TokenSet | null> {
    if (record.secret === '') return null;
    let json: string;
    try {
      json = await this.#cipher.decrypt(record.secret, AAD_PREFIX + record.id);
    } catch (cause) {
      const reason = cause instanceof CryptoError ? cause.reason : 'decrypt_failed';
      const keyId = cause instanceof CryptoError ? cause.keyId : undefined;
      throw new CryptoError(`The tokens of this account cannot be decrypted (${reason})`, {
        reason,
        ...(keyId === undefined ? {} : { keyId }),
        accountId: record.id,
        cause,
      });
    }
    try {
      return TokenSet.fromSecretJSON(json, record.tokenExpiresAt);
    } catch {
      // No cause: the parse error could quote the plaintext.
      throw new CryptoError('The decrypted token blob is not in a known format', {
        reason: 'malformed',
        accountId: record.id,
      });
    }
  }
}
