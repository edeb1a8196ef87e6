/**
 * The auth harness the suites share: `createMailboxAuth` over an in-memory store and a cipher with one fresh
 * random key, unless the test brings its own.
 */
import { randomBytes } from 'node:crypto';
import {
  aesGcmCipher,
  type Cipher,
  createMailboxAuth,
  type MailboxAuthOptions,
  memoryStore,
} from '../../src/index.js';

/** An AES-GCM cipher whose one key, `k1`, is `key` (a fresh random one by default). */
export function testCipher(key: Buffer = randomBytes(32)): Cipher {
  return aesGcmCipher({ keys: { k1: key }, current: 'k1' });
}

/** The options that are not undefined: `{ ...defined({ ttl }) }` sets `ttl` only when given. */
export function defined<T extends Record<string, unknown>>(
  options: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

/** `createMailboxAuth` with a memory store and a test cipher by default; the store and cipher are returned too. */
export function memoryAuth(
  options: Omit<MailboxAuthOptions, 'store' | 'cipher'> &
    Partial<Pick<MailboxAuthOptions, 'store' | 'cipher'>>,
) {
  const store = options.store ?? memoryStore();
  const cipher = options.cipher ?? testCipher();
  const auth = createMailboxAuth({ ...options, store, cipher });
  return { auth, store, cipher };
}
