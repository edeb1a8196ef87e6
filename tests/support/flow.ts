import { randomBytes } from 'node:crypto';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { aesGcmCipher, createMailboxAuth, google, memoryStore, microsoft } from '../../src/index.js';
import { fakeGoogle, fakeMicrosoft } from '../../src/testing/index.js';

export const CLIENT = { clientId: 'test-client-id', clientSecret: 'test-client-secret' };
export const GOOGLE_REDIRECT = 'https://app.example.com/oauth/google/callback';
export const MS_REDIRECT = 'https://app.example.com/oauth/microsoft/callback';

/** One msw server for the file; fakes are swapped per test with `use`. */
export function mswServer() {
  const server = setupServer();
  beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());
  return server;
}

export function setupAuth(
  server: ReturnType<typeof setupServer>,
  options: {
    tenant?: string;
    timeoutMs?: number;
    maxPendingPerOwner?: number;
    maxPendingTotal?: number;
  } = {},
) {
  const googleFake = fakeGoogle(CLIENT);
  const microsoftFake = fakeMicrosoft({ ...CLIENT, tenant: options.tenant ?? 'common' });
  server.use(...googleFake.handlers(), ...microsoftFake.handlers());
  const store = memoryStore();
  const cipher = aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' });
  const auth = createMailboxAuth({
    providers: [
      google({
        ...CLIENT,
        redirectUri: GOOGLE_REDIRECT,
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      }),
      microsoft({ ...CLIENT, redirectUri: MS_REDIRECT, tenant: options.tenant ?? 'common' }),
    ],
    store,
    cipher,
    allowedOrigins: ['https://app.example.com'],
    ...(options.maxPendingPerOwner ? { maxPendingPerOwner: options.maxPendingPerOwner } : {}),
    ...(options.maxPendingTotal ? { maxPendingTotal: options.maxPendingTotal } : {}),
  });
  return { auth, store, cipher, googleFake, microsoftFake };
}
