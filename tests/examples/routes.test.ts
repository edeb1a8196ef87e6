/**
 * examples/routes.ts, the framework-neutral start and callback handlers, against the fake Google: its stub
 * owner lookup refuses to run unless the demo variable is set (a client-sent header is never the owner), the
 * redirects are not cached and send no Referer, and an unexpected error is logged by code or name only.
 */
import { setupServer } from 'msw/node';
import { fakeGoogle } from 'oauth-mailbox/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { auth, callback, start } from '../../examples/routes.js';

const fake = fakeGoogle({ clientId: 'google-client-id', clientSecret: 'google-client-secret' });
const server = setupServer(...fake.handlers());
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

const startRequest = (headers: Record<string, string> = {}) =>
  new Request('http://localhost:3000/oauth/google/start', { headers });

describe('examples/routes.ts', () => {
  it('the stub owner lookup refuses to run without UNSAFE_DEMO_OWNER, whatever the headers say', async () => {
    vi.stubEnv('UNSAFE_DEMO_OWNER', '');
    await expect(start(startRequest({ 'x-user-id': 'someone-else' }), 'google')).rejects.toThrow(
      'replace it with your session lookup',
    );
    await expect(
      callback(new Request('http://localhost:3000/oauth/google/callback?code=c&state=s'), 'google'),
    ).rejects.toThrow('replace it with your session lookup');
    vi.stubEnv('UNSAFE_DEMO_OWNER', 'demo-user');
    vi.stubEnv('NODE_ENV', 'production');
    await expect(start(startRequest(), 'google')).rejects.toThrow('replace it with your session lookup');
  });

  it('connects as the demo owner; the redirects are no-store and no-referrer', async () => {
    vi.stubEnv('UNSAFE_DEMO_OWNER', 'user-1');
    const started = await start(startRequest({ 'x-user-id': 'mallory' }), 'google');
    expect(started.status).toBe(302);
    expect(started.headers.get('cache-control')).toBe('no-store');
    const back = fake.approve(started.headers.get('location') ?? '', { email: 'ada@example.com' });
    const done = await callback(new Request(back), 'google');
    expect(done.status).toBe(302);
    expect(done.headers.get('cache-control')).toBe('no-store');
    expect(done.headers.get('referrer-policy')).toBe('no-referrer');
    const location = new URL(done.headers.get('location') ?? '');
    expect(location.searchParams.get('status')).toBe('success');
    const account = await auth.getAccount(location.searchParams.get('account') ?? '');
    expect(account.owner).toBe('user-1');
  });

  it('a refused consent comes back as an error code, with nothing logged', async () => {
    vi.stubEnv('UNSAFE_DEMO_OWNER', 'user-1');
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const started = await start(startRequest(), 'google');
    const done = await callback(new Request(fake.deny(started.headers.get('location') ?? '')), 'google');
    expect(done.headers.get('referrer-policy')).toBe('no-referrer');
    expect(new URL(done.headers.get('location') ?? '').searchParams.get('error')).toBe(
      'ERR_AUTHORIZATION_DENIED',
    );
    expect(logged).not.toHaveBeenCalled();
  });

  it('an unexpected error is logged by its code or name only, and the browser gets ERR_UNEXPECTED', async () => {
    vi.stubEnv('UNSAFE_DEMO_OWNER', 'user-1');
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    /**
     * A form-posted callback whose headers cannot be read (a broken framework adapter, a bug): not a library
     * error. (A body stream that fails mid-read is one: AuthorizationResponseError, its cause kept.)
     */
    const unreadableCallback = (failure: unknown) => {
      const request = new Request('http://localhost:3000/oauth/google/callback', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'code=the-code&state=s',
      });
      return Object.defineProperty(request, 'headers', {
        get: () => {
          throw failure;
        },
      });
    };
    for (const failure of [
      Object.assign(new Error('socket closed, code=the-code'), { code: 'ECONNRESET' }),
      new TypeError('secret detail'),
    ]) {
      const done = await callback(unreadableCallback(failure), 'google');
      expect(new URL(done.headers.get('location') ?? '').searchParams.get('error')).toBe('ERR_UNEXPECTED');
    }
    expect(logged.mock.calls).toEqual([
      ['oauth callback google: unexpected ECONNRESET'],
      ['oauth callback google: unexpected TypeError'],
    ]);
  });
});
