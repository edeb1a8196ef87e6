/**
 * `npm run demo` as a user runs it (a child process): the local life cycle completes and says what it
 * proves; the real-provider mode explains missing configuration, and its callback server reports a denied
 * consent by code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/async.js';
import { dovecotAvailable } from '../support/dovecot-server.js';

const TSX = 'node_modules/.bin/tsx';
const ARGS = ['--tsconfig', 'examples/tsconfig.json', 'examples/quickstart.ts'];
const BASE_ENV = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', DEMO_NO_BROWSER: '1' };

interface Run {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exit: Promise<number | null>;
}

function demo(env: Record<string, string | undefined>): Run {
  const child = spawn(TSX, ARGS, { env: { ...BASE_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c) => {
    output += c;
  });
  child.stderr?.on('data', (c) => {
    output += c;
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

/** The first match of `pattern` in the demo's output; fails when the demo exits or times out without it. */
function waitForOutput(run: Run, pattern: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  const never = () => `never printed ${pattern}:\n${run.output()}`;
  return waitFor(
    () => {
      const match = pattern.exec(run.output());
      if (match !== null) return match;
      if (run.child.exitCode !== null) throw new Error(never());
      return undefined;
    },
    timeoutMs,
    { intervalMs: 50, message: never },
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

describe('npm run demo', () => {
  it('runs the whole life cycle on embedded parts and narrates what it proves', async () => {
    const withDovecot = dovecotAvailable();
    const run = demo({});
    expect(await run.exit, run.output()).toBe(0);
    const out = run.output();
    for (const line of [
      'code_challenge_method=S256',
      "email: 'ada@example.com'",
      'stored secret: om1.k2026.',
      'contains the access token?: false',
      'contains the refresh token?: false',
      "accessToken: '[redacted]'",
      '20 concurrent callers got one token: true',
      'token requests to the provider: 1',
      'refresh token rotated and stored before use: true',
      "accepted: [ 'ada@example.com' ]",
      "user: 'ada@example.com'",
      'revoked: true',
      'the stored refresh token at the provider now: ERR_REAUTHORIZATION_REQUIRED',
      'Done.',
    ]) {
      expect(out, line).toContain(line);
    }
    if (withDovecot) expect(out).toMatch(/unread: \{\n\s+subject: 'Hello from oauth-mailbox /);
    else expect(out).toContain('hint: install Dovecot');
  }, 90_000);

  it('names the missing variable when the real-provider configuration is incomplete', async () => {
    const run = demo({ GOOGLE_CLIENT_ID: 'id-only' });
    expect(await run.exit).toBe(1);
    expect(run.output()).toContain('Configuration: GOOGLE_CLIENT_SECRET is missing');

    const ms = demo({ MS_CLIENT_SECRET: 'secret-only' });
    expect(await ms.exit).toBe(1);
    expect(ms.output()).toContain('Configuration: MS_CLIENT_ID is missing');

    const bad = demo({ DEMO_PROVIDER: 'yahoo' });
    expect(await bad.exit).toBe(1);
    expect(bad.output()).toContain('DEMO_PROVIDER must be "google" or "microsoft"');
  }, 60_000);

  it('with Google credentials, prints the consent URL and reports a denied consent by its code', async () => {
    const port = await freePort();
    const secret = 'GOCSPX-not-a-real-secret-0123456789';
    const run = demo({
      GOOGLE_CLIENT_ID: 'demo.apps.googleusercontent.com',
      GOOGLE_CLIENT_SECRET: secret,
      DEMO_PORT: String(port),
    });
    const [consent] = await waitForOutput(run, /https:\/\/accounts\.google\.com\/o\/oauth2\/v2\/auth\?\S+/);
    const url = new URL(consent);
    expect(url.searchParams.get('redirect_uri')).toBe(`http://localhost:${port}/oauth/google/callback`);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('scope')).toContain('https://mail.google.com/');
    await waitForOutput(run, /listening on/);

    const callback = new URL(`http://localhost:${port}/oauth/google/callback`);
    callback.searchParams.set('error', 'access_denied');
    callback.searchParams.set('state', url.searchParams.get('state') ?? '');
    const page = await fetch(callback);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain('ERR_AUTHORIZATION_DENIED');
    expect(await run.exit).toBe(1);
    expect(run.output()).toContain('Failed: ERR_AUTHORIZATION_DENIED');
    expect(run.output()).not.toContain(secret);
  }, 60_000);
});
