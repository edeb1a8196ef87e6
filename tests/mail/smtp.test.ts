/**
 * SMTP over XOAUTH2 against a real `smtp-server` on loopback that validates the bearer token, including
 * nodemailer's renew-and-retry path (334 challenge → provisionCallback → forced refresh).
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  MailAuthenticationError,
  MailConnectionError,
  ReauthorizationRequiredError,
  toSmtpError,
} from '../../src/index.js';
import { mswServer } from '../support/flow.js';
import { listenSmtp, loopbackMail, readMessage, xoauth2Only } from '../support/loopback.js';
import { expiredAccountAuth } from '../support/refresh.js';

const msw = mswServer();

interface Sink {
  port: number;
  messages: { from: string; to: string[]; raw: string; user: string }[];
  logins: { user: string; ok: boolean }[];
  close(): Promise<void>;
}

async function startSink(isValid: (user: string, token: string) => boolean): Promise<Sink> {
  const messages: Sink['messages'] = [];
  const logins: Sink['logins'] = [];
  const server = await listenSmtp({
    ...xoauth2Only(),
    onAuth(auth, _session, callback) {
      const ok = isValid(auth.username ?? '', auth.accessToken ?? '');
      logins.push({ user: auth.username ?? '', ok });
      if (ok) return callback(null, { user: auth.username });
      // The XOAUTH2 failure challenge: nodemailer answers it, then asks for a renewed token.
      return callback(null, {
        data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' },
      });
    },
    onData(stream, session, callback) {
      readMessage(stream).then((raw) => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          user: String(session.user),
        });
        callback();
      }, callback);
    },
  });
  return { ...server, messages, logins };
}

const sinks: Sink[] = [];
afterEach(async () => {
  for (const s of sinks.splice(0)) await s.close();
});

async function setup(valid: (user: string, token: string) => boolean) {
  const connected = await expiredAccountAuth(msw);
  const sink = await startSink(valid);
  sinks.push(sink);
  /** A transport to the sink (or `extra.port`), TLS waived for loopback unless `extra` says otherwise. */
  const transport = (extra: { port?: number; user?: string; allowInsecureHosts?: string[] } = {}) =>
    connected.auth.createSmtpTransport(connected.account.id, loopbackMail(sink.port, extra));
  return { ...connected, sink, transport };
}

/** Send a one-line message and return the typed error it fails with. */
async function sendFailure(
  smtp: Awaited<ReturnType<Awaited<ReturnType<typeof setup>>['transport']>>,
  from: string,
  accountId?: string,
) {
  return smtp
    .sendMail({ from, to: 'b@example.com', text: 'x' })
    .then(() => undefined)
    .catch((e) => toSmtpError(e, accountId));
}

describe('createSmtpTransport', () => {
  it('sends with XOAUTH2 using the refreshed token', async () => {
    let current = '';
    const { auth, sink, account, transport } = await setup((_u, token) => token === current);
    current = (await auth.getAccessToken(account.id)).accessToken;
    const smtp = await transport();
    const info = await smtp.sendMail({
      from: account.email,
      to: 'bob@example.com',
      subject: 'Hi',
      text: 'Hello over XOAUTH2',
    });
    expect(info.accepted).toEqual(['bob@example.com']);
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]).toMatchObject({
      from: account.email,
      to: ['bob@example.com'],
      user: account.email,
    });
    expect(sink.messages[0]?.raw).toContain('Hello over XOAUTH2');
    smtp.close();
  });

  it('renews a rejected token once through provisionCallback (forced refresh) and succeeds', async () => {
    let accepted = '';
    const { auth, sink, account, fake, transport } = await setup((_u, token) => token === accepted);
    const stale = (await auth.getAccessToken(account.id)).accessToken;
    const smtp = await transport();
    // The server now only accepts a token that does not exist yet: the next one the provider issues.
    const refreshesBefore = fake.stats.refreshes;
    accepted = '__next__';
    const original = auth.refresher.getAccessToken.bind(auth.refresher);
    auth.refresher.getAccessToken = async (id, options) => {
      const token = await original(id, options);
      if (options?.forceRefresh) accepted = token.accessToken;
      return token;
    };
    await smtp.sendMail({ from: account.email, to: 'bob@example.com', subject: 'Renewed', text: 'x' });
    expect(fake.stats.refreshes).toBe(refreshesBefore + 1);
    expect(sink.logins.map((l) => l.ok)).toEqual([false, true]);
    expect(accepted).not.toBe(stale);
    smtp.close();
  });

  it('maps a persistent rejection to MailAuthenticationError', async () => {
    const { account, transport } = await setup(() => false);
    const smtp = await transport();
    const err = await sendFailure(smtp, account.email, account.id);
    expect(err).toBeInstanceOf(MailAuthenticationError);
    expect((err as MailAuthenticationError).protocol).toBe('smtp');
    smtp.close();
  });

  it('a rejected token that cannot be renewed (revoked grant) fails with the refresher error, not EAUTH', async () => {
    const { auth, account, fake, transport } = await setup(() => false);
    await auth.getAccessToken(account.id);
    fake.revokeUser(account.email); // the next refresh answers invalid_grant
    const smtp = await transport();
    const err = await sendFailure(smtp, account.email, account.id);
    expect(err).toBeInstanceOf(ReauthorizationRequiredError);
    expect(err).toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED', category: 'reauthorization' });
    expect((await auth.getAccount(account.id)).status).toBe('reauth_required');
    smtp.close();
  });

  it('requires TLS unless the host is explicitly allowed', async () => {
    const { auth, sink, account } = await setup(() => true);
    const smtp = await auth.createSmtpTransport(account.id, {
      host: '127.0.0.1',
      port: sink.port,
      secure: false,
    });
    const err = await sendFailure(smtp, account.email, account.id);
    expect(err).toBeInstanceOf(MailConnectionError);
    expect(sink.messages).toHaveLength(0);
    smtp.close();
  });

  it('refuses a login with control characters before fetching a token (SASL field injection)', async () => {
    const { auth, sink, account, fake, transport } = await setup(() => true);
    const requestsBefore = fake.stats.tokenRequests;
    for (const user of ['shared@contoso.com\x01auth=Bearer x', 'a@contoso.com\r\nRCPT TO:<x@y>', '']) {
      const attempt = transport({ user });
      await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(auth.connectImap(account.id, { user })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(fake.stats.tokenRequests).toBe(requestsBefore);
    expect(sink.logins).toHaveLength(0);
  });

  it('sends as a shared mailbox with the signed-in user token', async () => {
    const { sink, transport } = await setup(() => true);
    const smtp = await transport({ user: 'support@contoso.com' });
    await smtp.sendMail({
      from: 'support@contoso.com',
      to: 'b@example.com',
      text: 'from the shared mailbox',
    });
    expect(sink.logins[0]?.user).toBe('support@contoso.com');
    smtp.close();
  });

  it('an unreachable server is a MailConnectionError', async () => {
    const { account, transport } = await setup(() => true);
    const smtp = await transport({ port: 1 });
    const err = await sendFailure(smtp, account.email);
    expect(err).toBeInstanceOf(MailConnectionError);
  });
});
