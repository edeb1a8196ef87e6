/** Every SMTP send runs in an `oauth_mailbox.smtp.send` span: success, and a refused login with its code. */
import { afterEach, describe, expect, it } from 'vitest';
import { toSmtpError } from '../../src/index.js';
import { memoryAuth } from '../support/auth.js';
import { mswServer } from '../support/flow.js';
import {
  type LoopbackSmtp,
  listenSmtp,
  loopbackMail,
  readMessage,
  xoauth2Only,
} from '../support/loopback.js';
import { expiredAccount } from '../support/refresh.js';
import { memoryTelemetry } from '../support/telemetry.js';

const msw = mswServer();
const sinks: LoopbackSmtp[] = [];
afterEach(async () => {
  for (const s of sinks.splice(0)) await s.close();
});

async function setup(accept: boolean) {
  const otel = memoryTelemetry();
  const fleet = await expiredAccount(msw);
  const { auth } = memoryAuth({
    providers: fleet.registry,
    store: fleet.store as never,
    cipher: fleet.cipher,
    telemetry: otel.telemetry,
  });
  const sink = await listenSmtp({
    ...xoauth2Only(),
    onAuth(login, _session, callback) {
      if (accept) return callback(null, { user: login.username });
      return callback(new Error('Invalid credentials'));
    },
    onData(stream, _session, callback) {
      readMessage(stream).then(() => callback(), callback);
    },
  });
  sinks.push(sink);
  const smtp = await auth.createSmtpTransport(fleet.id, loopbackMail(sink.port));
  return { otel, smtp, id: fleet.id };
}

describe('SMTP telemetry', () => {
  it('a sent message has a span with the account and the transport, no address in it', async () => {
    const { otel, smtp, id } = await setup(true);
    await smtp.sendMail({ from: 'user0@contoso.com', to: 'bob@example.com', text: 'hi' });
    const [span] = otel.finished('oauth_mailbox.smtp.send');
    expect(span?.attributes).toEqual({ 'oauth_mailbox.account.id': id, 'oauth_mailbox.transport': 'smtp' });
    expect(span?.status.code).not.toBe(2); // not ERROR
    // A callback-style send gets its span too.
    await new Promise<void>((resolve, reject) =>
      smtp.sendMail({ from: 'user0@contoso.com', to: 'bob@example.com', text: 'again' }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    expect(otel.finished('oauth_mailbox.smtp.send')).toHaveLength(2);
  });

  it('a refused login ends the span in error, the message never recorded', async () => {
    const { otel, smtp } = await setup(false);
    const err = await smtp
      .sendMail({ from: 'user0@contoso.com', to: 'bob@example.com', text: 'x' })
      .catch((e: unknown) => toSmtpError(e) as { code?: string });
    expect(err?.code).toBe('ERR_MAIL_AUTHENTICATION_FAILED');
    const [span] = otel.finished('oauth_mailbox.smtp.send');
    expect(span?.status.code).toBe(2); // ERROR
    expect(span?.attributes['error.type']).toBeDefined();
    expect(JSON.stringify(span?.attributes)).not.toContain('Invalid credentials');
    expect(span?.events).toEqual([]);
  });
});
