/** healthHandler: Request → Response over health(), for readiness probes and dashboards. */
import { describe, expect, it } from 'vitest';
import { google, healthHandler, InvalidArgumentError, memoryStore, StorageError } from '../../src/index.js';
import { memoryAuth } from '../support/auth.js';

const providers = [google({ clientId: 'c', clientSecret: 's', redirectUri: 'https://app.example/cb' })];

async function withAccounts() {
  const { auth } = memoryAuth({ providers });
  const connect = (email: string) =>
    auth.persistence.connect({
      provider: 'google',
      owner: 'u1',
      email,
      tokens: { accessToken: `at-${email}`, refreshToken: `rt-${email}`, expiresAt: Date.now() + 3_600_000 },
    });
  await connect('ada@example.com');
  const revoked = await connect('bob@example.com');
  await auth.persistence.recordFailure(
    revoked.account.id,
    { code: 'ERR_REAUTHORIZATION_REQUIRED', message: 'revoked' },
    { status: 'reauth_required' },
  );
  return auth;
}

describe('healthHandler', () => {
  it('answers the report as JSON, 200 while the store answers (one revoked user does not fail a probe)', async () => {
    const auth = await withAccounts();
    const response = await healthHandler(auth)(new Request('http://app.example/health'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = await response.json();
    expect(body).toMatchObject({ total: 2, byStatus: { active: 1, reauth_required: 1 }, healthy: false });
    expect(JSON.stringify(body)).not.toMatch(/at-|rt-/);
  });

  it("failWhen: 'unhealthy' answers 503 when an account needs attention; windows pass through", async () => {
    const auth = await withAccounts();
    const handler = healthHandler(auth, { failWhen: 'unhealthy', expiringWithinMs: 7_200_000 });
    const response = await handler(new Request('http://app.example/health'));
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      accessTokensExpiring: 1,
      windows: { expiringWithinMs: 7_200_000 },
    });
  });

  it('answers 503 with the error code when the store fails, HEAD without a body, 405 for other methods', async () => {
    const broken = memoryStore();
    const store = new Proxy(broken, {
      get(target, name) {
        if (name === 'countAccounts')
          return () =>
            Promise.reject(
              new StorageError('The store failed (countAccounts)', { operation: 'countAccounts' }),
            );
        const value = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const { auth } = memoryAuth({ providers, store });
    const handler = healthHandler(auth);
    const failed = await handler(new Request('http://app.example/health'));
    expect(failed.status).toBe(503);
    expect(await failed.json()).toEqual({
      status: 'unavailable',
      error: { code: 'ERR_STORAGE', message: expect.any(String) },
    });
    const head = await healthHandler(await withAccounts())(
      new Request('http://app.example/health', { method: 'HEAD' }),
    );
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await handler(new Request('http://app.example/health', { method: 'POST' }));
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('refuses a missing auth or an unknown failWhen at construction', () => {
    expect(() => healthHandler({} as never)).toThrow(InvalidArgumentError);
    expect(() =>
      healthHandler({ health: async () => ({}) as never }, { failWhen: 'sometimes' as never }),
    ).toThrow(InvalidArgumentError);
  });
});
