import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { google, microsoft } from '../../src/index.js';
import { fakeGoogle, fakeMicrosoft } from '../../src/testing/index.js';
import { defined, memoryAuth } from './auth.js';

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
  const { auth, store, cipher } = memoryAuth({
    providers: [
      google({
        ...CLIENT,
        redirectUri: GOOGLE_REDIRECT,
        ...defined({ timeoutMs: options.timeoutMs || undefined }),
      }),
      microsoft({ ...CLIENT, redirectUri: MS_REDIRECT, tenant: options.tenant ?? 'common' }),
    ],
    allowedOrigins: ['https://app.example.com'],
    ...defined({
      maxPendingPerOwner: options.maxPendingPerOwner || undefined,
      maxPendingTotal: options.maxPendingTotal || undefined,
    }),
  });
  return { auth, store, cipher, googleFake, microsoftFake };
}
