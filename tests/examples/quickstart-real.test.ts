/**
 * The quickstart's real-provider mode (examples/quickstart/real.ts) in-process against the fake Google and
 * Microsoft endpoints. With DEMO_TRANSPORT=api the mailbox is the emulated Gmail API or Graph (linked to the
 * fake provider: only its tokens are accepted), so the listing is checked: the unread subjects, newest first.
 * Over IMAP (the default) there is no mailbox behind imap.gmail.com / outlook.office365.com here: the listing
 * fails with a typed error line. Either way the demo then disconnects, revoking the grant at Google and saying
 * that Microsoft has no revocation endpoint, and prints no code, verifier or token.
 */
import { createServer } from 'node:net';
import { format } from 'node:util';
import { setupServer } from 'msw/node';
import { isMailboxAuthError } from 'oauth-mailbox';
import {
  type FakeOAuthProvider,
  fakeGmailApi,
  fakeGoogle,
  fakeGraph,
  fakeMicrosoft,
} from 'oauth-mailbox/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DemoConfigurationError, runReal } from '../../examples/quickstart/real.js';

const CLIENT = { clientId: 'demo.apps.googleusercontent.com', clientSecret: 'not-a-real-secret' };
const ADA = 'ada@example.com';
const GRACE = 'grace@contoso.com';
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'bypass' })); // the callback goes to the demo's server
afterAll(() => server.close());
afterEach(() => {
  server.resetHandlers();
  server.events.removeAllListeners();
  vi.restoreAllMocks();
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** What would be a leak in the output, by kind, as it crossed the (mocked) wire. */
type Secrets = Record<'code' | 'code_verifier' | 'access_token' | 'refresh_token' | 'id_token', string[]>;

/**
 * Record the grant's secrets as they cross the wire: the code and verifier the demo sends to the token
 * endpoint, and every token the fake issues (the fakes keep theirs private).
 */
function captureSecrets(): { readonly secrets: Secrets; readonly settled: () => Promise<unknown> } {
  const secrets: Secrets = { code: [], code_verifier: [], access_token: [], refresh_token: [], id_token: [] };
  const pending: Promise<void>[] = [];
  const collect = (fields: (name: string) => unknown) => {
    for (const kind of Object.keys(secrets) as (keyof Secrets)[]) {
      const value = fields(kind);
      if (typeof value === 'string' && value !== '') secrets[kind].push(value);
    }
  };
  server.events.on('request:start', ({ request }) => {
    if (request.method !== 'POST') return;
    pending.push(
      request
        .clone()
        .text()
        .then((body) => {
          const form = new URLSearchParams(body);
          collect((name) => form.get(name));
        }),
    );
  });
  server.events.on('response:mocked', ({ response }) => {
    if (!response.headers.get('content-type')?.includes('json')) return;
    pending.push(
      response
        .clone()
        .json()
        .then(
          (body: unknown) => collect((name) => (body as Record<string, unknown>)[name]),
          () => {},
        ),
    );
  });
  return { secrets, settled: () => Promise.all(pending) };
}

interface Finished {
  /** Everything the demo printed, formatted as console.log formats it. */
  readonly output: string;
  /** Why the run rejected, or `undefined` when it completed. */
  readonly error: unknown;
  /** The grant's secrets seen on the wire during the run. */
  readonly secrets: Secrets;
}

/** Run the demo, approve the consent at the fake as `email`, and return what it printed and how it ended. */
async function connectAndFinish(
  which: 'google' | 'microsoft',
  fake: FakeOAuthProvider,
  email: string,
  extraEnv: Record<string, string> = {},
): Promise<Finished> {
  const lines: string[] = [];
  const record = (...parts: unknown[]) => {
    lines.push(format(...parts));
  };
  vi.spyOn(console, 'log').mockImplementation(record);
  vi.spyOn(console, 'error').mockImplementation(record);
  const { secrets, settled } = captureSecrets();
  const port = await freePort();
  const env =
    which === 'google'
      ? { GOOGLE_CLIENT_ID: CLIENT.clientId, GOOGLE_CLIENT_SECRET: CLIENT.clientSecret }
      : { MS_CLIENT_ID: CLIENT.clientId, MS_CLIENT_SECRET: CLIENT.clientSecret };
  const run = runReal(which, { ...env, DEMO_PORT: String(port), DEMO_NO_BROWSER: '1', ...extraEnv });
  run.catch(() => {}); // awaited below
  const printed = async (pattern: RegExp) => {
    await vi.waitFor(() => expect(lines.join('\n')).toMatch(pattern), { timeout: 10_000 });
    return pattern.exec(lines.join('\n'))?.[0] ?? '';
  };
  const consent = await printed(
    /https:\/\/login\.microsoftonline\.com\/\S+|https:\/\/accounts\.google\.com\/\S+/,
  );
  await printed(/listening on/);
  const callback = fake.approve(consent, { email });
  secrets.code.push(callback.searchParams.get('code') ?? '');
  expect((await fetch(callback)).status).toBe(200);
  const error = await run.then(
    () => undefined,
    (err: unknown) => err,
  );
  await settled();
  return { output: lines.join('\n'), error, secrets };
}

/** The output holds none of the grant's secrets, and there were some of each kind to look for. */
function expectNoSecret({ output, secrets }: Finished): void {
  for (const [kind, values] of Object.entries(secrets)) {
    expect(values.length, `no ${kind} was seen on the wire`).toBeGreaterThan(0);
    for (const value of values) expect(output, `${kind} printed`).not.toContain(value);
  }
  expect(output).not.toContain(CLIENT.clientSecret);
}

/** The listing over IMAP fails here (no DNS, or a server that refuses the fake token): a typed error line. */
function expectImapFailure({ output, error }: Finished, host: string): void {
  expect(output).toContain('mail transport: imap (IMAP over XOAUTH2; DEMO_TRANSPORT=imap)');
  expect(output).toContain('Newest unread messages (IMAP over XOAUTH2)');
  expect(output).toContain('auth.mailbox(id) uses: imap');
  expect(isMailboxAuthError(error), String(error)).toBe(true);
  const code = isMailboxAuthError(error) ? error.code : '';
  expect(['ERR_MAIL_CONNECTION_FAILED', 'ERR_MAIL_AUTHENTICATION_FAILED']).toContain(code);
  const category = isMailboxAuthError(error) ? error.category : '';
  expect(output).toMatch(
    new RegExp(`listing failed: ${code} \\(${category}\\): .*${host.replaceAll('.', '\\.')}`),
  );
  expect(output).toContain('IMAP blocked for this account or network? Try DEMO_TRANSPORT=api');
  // The failure is reported before the grant is revoked, not instead of it.
  expect(output.indexOf('listing failed:')).toBeLessThan(
    output.indexOf('Disconnect (revoke at the provider, delete here)'),
  );
}

/** The subjects' lines in the order printed, each with its sender. */
function listed(output: string, subjects: readonly string[]): string[] {
  return output
    .split('\n')
    .filter((line) => subjects.some((subject) => line.startsWith(`   ${subject}:`)))
    .map((line) => line.trim());
}

const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);

describe('examples/quickstart/real.ts', () => {
  it('over IMAP (the default): the failed listing is a typed error line, then it revokes at Google', async () => {
    const google = fakeGoogle(CLIENT);
    server.use(...google.handlers());
    const finished = await connectAndFinish('google', google, ADA);
    expectImapFailure(finished, 'imap.gmail.com');
    expect(finished.output).toContain('https://mail.google.com/');
    expect(finished.output).toContain('Disconnect (revoke at the provider, delete here)');
    expect(finished.output).toContain('deleted here: true');
    expect(finished.output).toContain('revoked at Google: the refresh token no longer works');
    expect(google.stats.revocations).toBe(1);
    expectNoSecret(finished);
  }, 60_000);

  it('over IMAP: says that Microsoft cannot revoke, and how the grant ends', async () => {
    const microsoft = fakeMicrosoft(CLIENT);
    server.use(...microsoft.handlers());
    const finished = await connectAndFinish('microsoft', microsoft, ADA);
    expectImapFailure(finished, 'outlook.office365.com');
    expect(finished.output).toContain('deleted here: true');
    expect(finished.output).toMatch(/not revoked: .*Microsoft.* has no revocation endpoint/);
    expect(finished.output).toContain('the refresh token stays valid until it expires or you remove the app');
    expectNoSecret(finished);
  }, 60_000);

  it('DEMO_TRANSPORT=api with Google: lists the unread mail from the Gmail API, newest first', async () => {
    const google = fakeGoogle(CLIENT);
    const gmail = fakeGmailApi({ tokens: google, email: ADA });
    server.use(...google.handlers(), ...gmail.handlers());
    // Delivered out of order, and one already read: the listing is the unread ones by date.
    gmail.deliver({ subject: 'Second: minutes', from: 'bob@example.com', date: minutesAgo(30) });
    gmail.deliver({ subject: 'First: an hour ago', from: 'carol@example.com', date: minutesAgo(60) });
    gmail.deliver({ subject: 'Third: just now', from: 'dan@example.com', date: minutesAgo(1) });
    gmail.deliver({ subject: 'Already read', labelIds: ['INBOX'], date: minutesAgo(5) });

    const finished = await connectAndFinish('google', google, ADA, { DEMO_TRANSPORT: 'api' });
    const { output, error } = finished;
    expect(error, output).toBeUndefined();
    expect(output).toContain('mail transport: gmail-api (the Gmail API; DEMO_TRANSPORT=api)');
    expect(output).toContain(
      'scopes: openid email https://www.googleapis.com/auth/gmail.modify https://www.googleapis.com/auth/gmail.send',
    );
    expect(output).not.toContain('https://mail.google.com/');
    expect(output).toContain('Newest unread messages (the Gmail API)');
    expect(output).toContain('auth.mailbox(id) uses: gmail-api');
    expect(listed(output, ['First', 'Second', 'Third', 'Already read'])).toEqual([
      'Third: just now: dan@example.com',
      'Second: minutes: bob@example.com',
      'First: an hour ago: carol@example.com',
    ]);
    expect(output).not.toContain('listing failed');
    expect(gmail.stats.operations['users.messages.list']).toBeGreaterThan(0);
    expect(output.indexOf('Third: just now')).toBeLessThan(
      output.indexOf('Disconnect (revoke at the provider, delete here)'),
    );
    expect(output).toContain('deleted here: true');
    expect(output).toContain('revoked at Google: the refresh token no longer works');
    expect(google.stats.revocations).toBe(1);
    expectNoSecret(finished);
  }, 60_000);

  it('DEMO_TRANSPORT=api with Microsoft: lists the unread mail from Graph, newest first', async () => {
    const microsoft = fakeMicrosoft(CLIENT);
    const graph = fakeGraph({ tokens: microsoft, email: GRACE });
    server.use(...microsoft.handlers(), ...graph.handlers());
    graph.deliver({ subject: 'Budget', from: 'finance@contoso.com', receivedAt: minutesAgo(20) });
    graph.deliver({ subject: 'Agenda', from: 'office@contoso.com', receivedAt: minutesAgo(2) });
    graph.deliver({ subject: 'Minutes', from: 'board@contoso.com', receivedAt: minutesAgo(90) });
    graph.deliver({ subject: 'Old news', isRead: true, receivedAt: minutesAgo(10) });

    const finished = await connectAndFinish('microsoft', microsoft, GRACE, { DEMO_TRANSPORT: 'api' });
    const { output, error } = finished;
    expect(error, output).toBeUndefined();
    expect(output).toContain('mail transport: graph (Microsoft Graph; DEMO_TRANSPORT=api)');
    expect(output).toContain('https://graph.microsoft.com/Mail.ReadWrite');
    expect(output).not.toContain('IMAP.AccessAsUser.All');
    expect(output).toContain('Newest unread messages (Microsoft Graph)');
    expect(output).toContain('auth.mailbox(id) uses: graph');
    expect(listed(output, ['Budget', 'Agenda', 'Minutes', 'Old news'])).toEqual([
      'Agenda: office@contoso.com',
      'Budget: finance@contoso.com',
      'Minutes: board@contoso.com',
    ]);
    expect(output).not.toContain('listing failed');
    expect(output).toContain('deleted here: true');
    expect(output).toMatch(/not revoked: .*Microsoft.* has no revocation endpoint/);
    expectNoSecret(finished);
  }, 60_000);

  it('DEMO_TRANSPORT=api: a refusal by the API (Gmail API disabled) is a typed error line, then it revokes', async () => {
    const google = fakeGoogle(CLIENT);
    const gmail = fakeGmailApi({ tokens: google, email: ADA });
    server.use(...google.handlers(), ...gmail.handlers());
    gmail.deliver({ subject: 'Never listed' });
    const disabled = 'Gmail API has not been used in project 123 before or it is disabled.';
    gmail.failNext({
      status: 403,
      body: {
        error: {
          code: 403,
          message: disabled,
          errors: [{ message: disabled, domain: 'usageLimits', reason: 'accessNotConfigured' }],
          status: 'PERMISSION_DENIED',
        },
      },
    });

    const finished = await connectAndFinish('google', google, ADA, { DEMO_TRANSPORT: 'api' });
    const { output, error } = finished;
    expect(isMailboxAuthError(error, 'ERR_MAIL_AUTHENTICATION_FAILED'), String(error)).toBe(true);
    expect(output).toMatch(
      /listing failed: ERR_MAIL_AUTHENTICATION_FAILED \(reauthorization\): .*HTTP 403 accessNotConfigured/,
    );
    expect(output).toContain(
      'are the API and its scopes enabled for your OAuth client? See docs/providers.md',
    );
    expect(output).not.toContain('Never listed');
    expect(output).not.toContain('Try DEMO_TRANSPORT=api');
    expect(output).toContain('revoked at Google: the refresh token no longer works');
    expect(google.stats.revocations).toBe(1);
    expectNoSecret(finished);
  }, 60_000);

  it('refuses a DEMO_TRANSPORT other than imap or api before printing anything', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    for (const value of ['graph', 'IMAP', '']) {
      const run = runReal('google', {
        GOOGLE_CLIENT_ID: CLIENT.clientId,
        GOOGLE_CLIENT_SECRET: CLIENT.clientSecret,
        DEMO_TRANSPORT: value,
      });
      await expect(run).rejects.toBeInstanceOf(DemoConfigurationError);
      await expect(run).rejects.toThrow(/^DEMO_TRANSPORT must be "imap" or "api"$/);
    }
    expect(log).not.toHaveBeenCalled();
  });
});
