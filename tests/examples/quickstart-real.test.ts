/**
 * The quickstart's real-provider mode (examples/quickstart/real.ts) in-process against the fake Google and
 * Microsoft endpoints: after the callback it lists mail (which fails here: there is no real mailbox) and then
 * disconnects, revoking the grant at Google and saying that Microsoft has no revocation endpoint.
 */
import { createServer } from 'node:net';
import { setupServer } from 'msw/node';
import { type FakeOAuthProvider, fakeGoogle, fakeMicrosoft } from 'oauth-mailbox/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runReal } from '../../examples/quickstart/real.js';

const CLIENT = { clientId: 'demo.apps.googleusercontent.com', clientSecret: 'not-a-real-secret' };
const fakes = { google: fakeGoogle(CLIENT), microsoft: fakeMicrosoft(CLIENT) };
const server = setupServer(...fakes.google.handlers(), ...fakes.microsoft.handlers());
beforeAll(() => server.listen({ onUnhandledRequest: 'bypass' })); // the callback goes to the demo's server
afterAll(() => server.close());
afterEach(() => {
  vi.restoreAllMocks();
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Run the demo, approve the consent at the fake, and return what it printed. */
async function connectAndFinish(which: 'google' | 'microsoft', fake: FakeOAuthProvider): Promise<string> {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
    lines.push(parts.map(String).join(' '));
  });
  const port = await freePort();
  const env =
    which === 'google'
      ? { GOOGLE_CLIENT_ID: CLIENT.clientId, GOOGLE_CLIENT_SECRET: CLIENT.clientSecret }
      : { MS_CLIENT_ID: CLIENT.clientId, MS_CLIENT_SECRET: CLIENT.clientSecret };
  const run = runReal(which, { ...env, DEMO_PORT: String(port), DEMO_NO_BROWSER: '1' });
  run.catch(() => {}); // awaited below
  const printed = async (pattern: RegExp) => {
    await vi.waitFor(() => expect(lines.join('\n')).toMatch(pattern), { timeout: 10_000 });
    return pattern.exec(lines.join('\n'))?.[0] ?? '';
  };
  const consent = await printed(
    /https:\/\/login\.microsoftonline\.com\/\S+|https:\/\/accounts\.google\.com\/\S+/,
  );
  await printed(/listening on/);
  const callback = fake.approve(consent, { email: 'ada@example.com' });
  expect((await fetch(callback)).status).toBe(200);
  // Listing mail fails (no real mailbox behind the fake tokens); the demo disconnects all the same.
  await run.then(
    () => {},
    () => {},
  );
  return lines.join('\n');
}

describe('examples/quickstart/real.ts', () => {
  it('revokes the grant at Google at the end', async () => {
    const output = await connectAndFinish('google', fakes.google);
    expect(output).toContain('Disconnect (revoke at the provider, delete here)');
    expect(output).toContain('deleted here: true');
    expect(output).toContain('revoked at Google: the refresh token no longer works');
    expect(fakes.google.stats.revocations).toBe(1);
  }, 60_000);

  it('says that Microsoft cannot revoke, and how the grant ends', async () => {
    const output = await connectAndFinish('microsoft', fakes.microsoft);
    expect(output).toContain('deleted here: true');
    expect(output).toMatch(/not revoked: .*Microsoft.* has no revocation endpoint/);
    expect(output).toContain('the refresh token stays valid until it expires or you remove the app');
  }, 60_000);
});
