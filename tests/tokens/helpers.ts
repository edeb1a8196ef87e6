import { randomBytes } from 'node:crypto';
import { type AccountStore, aesGcmCipher, memoryStore, TokenPersistence } from '../../src/index.js';

export const ACCESS = 'ya29.SECRET-ACCESS-TOKEN-aaaaaaaaaaaaaaaa';
export const REFRESH = '1//SECRET-REFRESH-TOKEN-bbbbbbbbbbbbbbbb';
export const ID_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.SECRET-ID-TOKEN.cccccccc';

export function setup(options: { store?: AccountStore; key?: Buffer; now?: () => number } = {}) {
  const key = options.key ?? randomBytes(32);
  const store = options.store ?? memoryStore();
  const cipher = aesGcmCipher({ keys: { k1: key }, current: 'k1' });
  const persistence = new TokenPersistence({ store, cipher, ...(options.now ? { now: options.now } : {}) });
  return { key, store, cipher, persistence };
}

export const connectInput = (overrides: Record<string, unknown> = {}) => ({
  provider: 'google',
  owner: 'user-1',
  email: 'ada@example.com',
  scopes: ['openid', 'email', 'https://mail.google.com/'],
  tokens: { accessToken: ACCESS, refreshToken: REFRESH, idToken: ID_TOKEN, expiresAt: Date.now() + 3600_000 },
  metadata: { plan: 'pro' },
  ...overrides,
});
