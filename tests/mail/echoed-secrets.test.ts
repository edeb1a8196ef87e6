/**
 * Servers that echo the credential in their refusal (a 535 quoting the SASL string, an IMAP NO with the token,
 * an API or proxy quoting the Authorization header): no token reaches an error's JSON, inspect, String or
 * console output, nor the raw error nodemailer hands back.
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { format, inspect } from 'node:util';
import { HttpResponse, http } from 'msw';
import { afterEach, describe, expect, it } from 'vitest';
import { MailAuthenticationError, toSmtpError } from '../../src/index.js';
import { mswServer } from '../support/flow.js';
import { listenSmtp, loopbackMail, xoauth2Only } from '../support/loopback.js';
import { FAST_API, gmailSetup } from '../support/mail-api.js';
import { expiredAccountAuth } from '../support/refresh.js';

const msw = mswServer();

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** Each way a secret can show up in a host's logs. */
function renderings(err: unknown): string[] {
  return [
    JSON.stringify(err),
    inspect(err, { showHidden: true, depth: 10, getters: true }),
    format('%s %o %O', err, err, err),
    String(err),
    String((err as Error).stack),
  ];
}

/** The token and the SASL strings a client builds from it (written out here, independently of the library). */
function forms(token: string, user: string): string[] {
  const xoauth2 = `user=${user}\x01auth=Bearer ${token}\x01\x01`;
  return [token, Buffer.from(xoauth2).toString('base64')];
}

function expectClean(err: unknown, secrets: readonly string[]) {
  expect(secrets.length).toBeGreaterThan(0);
  // The error and its cause chain: a host may well log `err.cause` on its own.
  const chain: unknown[] = [];
  for (let e: unknown = err; e instanceof Error && chain.length < 6; e = e.cause) chain.push(e);
  for (const text of chain.flatMap(renderings))
    for (const secret of secrets) expect(text).not.toContain(secret);
}

describe('a server that echoes the credential', () => {
  it('SMTP: a 535 quoting the token and the base64 SASL string', async () => {
    const seen: string[] = [];
    const { port, close } = await listenSmtp({
      ...xoauth2Only(),
      onAuth(auth, _session, callback) {
        const user = auth.username ?? '';
        const token = auth.accessToken ?? '';
        seen.push(...forms(token, user));
        const [, sasl] = forms(token, user);
        callback(new Error(`Invalid credentials ${sasl} (token ${token})`));
      },
    });
    closers.push(close);
    const { auth, account } = await expiredAccountAuth(msw);
    const smtp = await auth.createSmtpTransport(account.id, loopbackMail(port));
    const mail = { from: account.email, to: 'b@example.com', text: 'x' };
    const raw = await smtp.sendMail(mail).catch((e: unknown) => e);
    // The echo did reach nodemailer: the reply is there, with the secrets replaced.
    expect(String((raw as Error).message)).toContain('Invalid credentials [redacted] (token [redacted])');
    expectClean(raw, seen);
    const typed = toSmtpError(raw, account.id);
    expect(typed).toBeInstanceOf(MailAuthenticationError);
    expectClean(typed, seen);
    // The callback form too.
    const viaCallback = await new Promise<unknown>((resolve) => smtp.sendMail(mail, (e) => resolve(e)));
    expect(viaCallback).toBeInstanceOf(Error);
    expectClean(viaCallback, seen);
    const verified = await smtp.verify().catch((e: unknown) => e);
    expectClean(verified, seen);
    smtp.close();
  });

  it('IMAP: a NO quoting the token and the SASL string', async () => {
    const seen: string[] = [];
    const imap = await startEchoingImap((sasl) => {
      const decoded = Buffer.from(sasl, 'base64').toString('utf8');
      const token = decoded.split('auth=Bearer ')[1]?.split('\x01')[0] ?? '';
      seen.push(token, sasl);
      return `NO [AUTHENTICATIONFAILED] Invalid credentials ${sasl} ${token}`;
    });
    closers.push(imap.close);
    const { auth, account } = await expiredAccountAuth(msw);
    const err = await auth.connectImap(account.id, loopbackMail(imap.port)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailAuthenticationError);
    expect(seen).toHaveLength(4); // the token, then a refreshed one
    expectClean(err, seen);
  });

  it('Gmail API: a 401 quoting the Authorization header', async () => {
    const { auth, accountId } = await gmailSetup(msw);
    const seen: string[] = [];
    msw.use(
      http.all('https://gmail.googleapis.com/*', ({ request }) => {
        const header = request.headers.get('authorization') ?? '';
        seen.push(header.replace(/^Bearer /, ''));
        return HttpResponse.json(
          { error: { code: 401, message: `Invalid Credentials: ${header}`, status: 'UNAUTHENTICATED' } },
          { status: 401 },
        );
      }),
    );
    const mailbox = auth.mailbox(accountId, { api: FAST_API });
    const err = await mailbox.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailAuthenticationError);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expectClean(err, seen);
  });
});

/** An IMAP server that offers XOAUTH2 with SASL-IR and refuses every AUTHENTICATE with `refuse(sasl)`. */
async function startEchoingImap(refuse: (sasl: string) => string) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const caps = 'IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER';
    socket.write(`* OK [CAPABILITY ${caps}] echo ready\r\n`);
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const [tag, command = '', , sasl = ''] = line.split(' ');
        const verb = command.toUpperCase();
        if (verb === 'CAPABILITY') socket.write(`* CAPABILITY ${caps}\r\n${tag} OK done\r\n`);
        else if (verb === 'AUTHENTICATE') socket.write(`${tag} ${refuse(sasl)}\r\n`);
        else if (verb === 'LOGOUT') socket.end(`* BYE\r\n${tag} OK bye\r\n`);
        else socket.write(`${tag} OK done\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
