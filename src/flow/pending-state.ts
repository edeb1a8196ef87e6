/**
 * The pending state of an authorization between its start and its callback: what it holds, the store key
 * derived from the `state` parameter, and its sealing with the cipher (bound to that key).
 * @module
 */
import { createHash } from 'node:crypto';
import type { Cipher } from '../crypto/cipher.js';
import { CryptoError, InvalidArgumentError, InvalidStateError } from '../errors.js';
import type { JsonValue } from '../store/account-store.js';

/** What an authorization start keeps for its callback (sealed; the store sees only ciphertext). */
export interface PendingState {
  readonly v: 1;
  readonly verifier: string;
  readonly nonce: string | null;
  readonly scopes: readonly string[];
  readonly metadata: { readonly [key: string]: JsonValue } | null;
  readonly returnTo: string | null;
}

/** A `state` parameter as `client.randomState()` makes it: 32 random bytes, base64url. */
export const STATE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Bound into the ciphertext: a sealed state opens only under its own key. */
const STATE_AAD = 'oauth-mailbox/state/';

/** The store key of a `state`: its SHA-256, so the store never holds the value the callback presents. */
export function pendingStateKey(state: string): string {
  return createHash('sha256').update(state).digest('base64url');
}

/** Seal `payload` for the store; a metadata value JSON cannot hold is an {@link InvalidArgumentError}. */
export async function sealPendingState(cipher: Cipher, key: string, payload: PendingState): Promise<string> {
  let serialized: string;
  try {
    serialized = JSON.stringify(payload);
  } catch (cause) {
    throw new InvalidArgumentError('metadata must be JSON-serializable', { cause });
  }
  return cipher.encrypt(serialized, STATE_AAD + key);
}

/** Open a sealed state; anything unreadable is an {@link InvalidStateError} (`malformed`). */
export async function openPendingState(
  cipher: Cipher,
  key: string,
  sealed: string,
  providerId: string,
): Promise<PendingState> {
  try {
    const payload = JSON.parse(await cipher.decrypt(sealed, STATE_AAD + key)) as PendingState;
    if (payload.v !== 1 || typeof payload.verifier !== 'string') throw new Error('unknown state payload');
    return payload;
  } catch (cause) {
    throw new InvalidStateError('The stored state cannot be read', {
      reason: 'malformed',
      providerId,
      ...(cause instanceof CryptoError ? { cause } : {}),
    });
  }
}
