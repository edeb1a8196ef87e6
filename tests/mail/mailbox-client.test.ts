/** MailboxClient against a real Dovecot: fetch, mark read, send through submission, watch with IDLE. */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, MailConnectionError, type MailMessage } from '../../src/index.js';
import { dovecotAvailable } from '../support/dovecot-server.js';
import { ALICE, LOCAL, useMailSetup } from '../support/mail.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const setup = useMailSetup();

function waitFor<T>(check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const value = check();
      if (value !== undefined) return resolve(value);
      if (Date.now() > deadline) return reject(new Error('timed out waiting'));
      setTimeout(tick, 25);
    };
    tick();
  });
}

describe.skipIf(!dovecotAvailable())('MailboxClient (Dovecot)', () => {
  it('streams unread messages with their source and marks them read', async () => {
    const { auth, accountId, deliver } = await setup();
    await deliver('first');
    await deliver('already read', { seen: true });
    await deliver('second');
    const mailbox = auth.mailbox(accountId, { imap: LOCAL });
    const unread: MailMessage[] = [];
    for await (const message of mailbox.fetchUnread({ max: 10 })) unread.push(message);
    expect(unread.map((m) => m.subject)).toEqual(['first', 'second']);
    expect(unread[0]?.source?.toString()).toContain('Body of first');
    expect(unread[0]?.from[0]?.address).toBe('sender@example.com');
    expect(mailbox.isConnected()).toBe(true);
    await mailbox.markAsRead(unread[0]?.uid as number);
    const left: string[] = [];
    for await (const message of mailbox.fetchUnread({ max: 1, source: false }))
      left.push(message.subject as string);
    expect(left).toEqual(['second']);
    const health = mailbox.health();
    expect(health).toMatchObject({
      connected: true,
      watching: false,
      errorsLast24h: 0,
      messagesLast24h: 3,
      lastError: null,
    });
    await mailbox.disconnect();
    expect(mailbox.isConnected()).toBe(false);
    await expect(mailbox.markAsRead(0)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('sends through SMTP submission (XOAUTH2 checked by Dovecot) and the watcher reads it over IMAP', async () => {
    const { auth, accountId } = await setup();
    const mailbox = auth.mailbox(accountId, { imap: LOCAL, smtp: LOCAL });
    const received: MailMessage[] = [];
    const watcher = mailbox.watch((message) => {
      received.push(message);
    });
    await waitFor(() => (mailbox.health().watching ? true : undefined));
    await new Promise((r) => setTimeout(r, 300)); // the watcher is connected and idling
    const info = await mailbox.send({
      to: ALICE,
      subject: 'Round trip',
      text: 'sent over SMTP, read over IMAP',
    });
    expect(info.accepted).toEqual([ALICE]);
    const message = await waitFor(() => received.find((m) => m.subject === 'Round trip'));
    expect(message.source?.toString()).toContain('sent over SMTP, read over IMAP');
    expect(watcher.lastUid).toBe(message.uid);
    await watcher.stop();
    await mailbox.disconnect();
  });

  it('delivers only new messages, in order, exactly once; renews the token before it expires without losing one', async () => {
    const { auth, accountId, deliver, tokens } = await setup({ accessTokenTtlS: 3 });
    await deliver('old');
    const mailbox = auth.mailbox(accountId, { imap: LOCAL, renewBeforeExpiryMs: 1500 });
    const reconnects: string[] = [];
    mailbox.on('reconnected', (e) => reconnects.push(e.reason));
    const received: string[] = [];
    const watcher = mailbox.watch((m) => {
      received.push(m.subject as string);
    });
    await new Promise((r) => setTimeout(r, 500));
    await deliver('one');
    await deliver('two');
    await waitFor(() => (received.length >= 2 ? true : undefined));
    // Across the token renewal (every ~1.5 s) a message delivered in between is not missed.
    const refreshes = tokens.stats.refreshes;
    await waitFor(() => (reconnects.includes('token') ? true : undefined), 8000);
    await deliver('three');
    await waitFor(() => (received.length >= 3 ? true : undefined));
    expect(received).toEqual(['one', 'two', 'three']);
    expect(tokens.stats.refreshes).toBeGreaterThan(refreshes);
    await watcher.stop();
  }, 30_000);

  it('re-issues IDLE on its interval and keeps delivering', async () => {
    const { auth, accountId, deliver } = await setup();
    const mailbox = auth.mailbox(accountId, { imap: LOCAL, idleRestartMs: 200 });
    const received: string[] = [];
    const reconnects: string[] = [];
    mailbox.on('reconnected', (e) => reconnects.push(e.reason));
    const watcher = mailbox.watch((m) => {
      received.push(m.subject as string);
    });
    await new Promise((r) => setTimeout(r, 1000)); // several IDLE restarts (a NOOP each), same connection
    await deliver('after idle restarts');
    await waitFor(() => (received.includes('after idle restarts') ? true : undefined));
    expect(reconnects).toEqual([]);
    await watcher.stop();
  });

  it('stops with reauthorizationRequired when the grant is revoked', async () => {
    const { auth, accountId, tokens } = await setup({ accessTokenTtlS: 3 });
    const mailbox = auth.mailbox(accountId, { imap: LOCAL, renewBeforeExpiryMs: 1500 });
    const events: string[] = [];
    mailbox.on('reauthorizationRequired', (e) => events.push(e.accountId));
    const watcher = mailbox.watch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    tokens.revoke(ALICE);
    await expect(watcher.done).rejects.toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED' });
    expect(events).toEqual([accountId]);
    expect(mailbox.health().watching).toBe(false);
  }, 20_000);

  it('reconnects with backoff after the server goes away and restarts, and still delivers', async () => {
    const { auth, accountId, deliver, dovecot } = await setup();
    // The watcher reaches Dovecot through a proxy that can drop every connection, as a network failure or a
    // server crash would (Dovecot's own restart may keep existing sessions alive).
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: dovecot.imapPort });
    const mailbox = auth.mailbox(accountId, {
      imap: { ...LOCAL, port: proxy.port },
      reconnect: { minDelayMs: 100, maxDelayMs: 500 },
    });
    const reconnects: string[] = [];
    mailbox.on('reconnected', (e) => reconnects.push(e.reason));
    const received: string[] = [];
    const watcher = mailbox.watch((m) => {
      received.push(m.subject as string);
    });
    await new Promise((r) => setTimeout(r, 300));
    proxy.cut();
    await dovecot.restart();
    await deliver('while away'); // delivered directly, while the watcher is disconnected
    proxy.restore();
    await waitFor(() => (reconnects.includes('drop') ? true : undefined), 10_000);
    await waitFor(() => (received.includes('while away') ? true : undefined)); // caught up from the last UID
    await deliver('after restart');
    await waitFor(() => (received.includes('after restart') ? true : undefined));
    expect(received).toEqual(['while away', 'after restart']);
    expect(mailbox.health().errorsLast24h).toBeGreaterThan(0);
    await watcher.stop();
    await proxy.close();
  }, 30_000);

  it('refuses a second watcher and reports send failures as typed errors', async () => {
    const { auth, accountId } = await setup();
    const mailbox = auth.mailbox(accountId, { imap: LOCAL, smtp: { ...LOCAL, port: 1 } });
    const watcher = mailbox.watch(() => {});
    expect(() => mailbox.watch(() => {})).toThrow(InvalidArgumentError);
    await watcher.stop();
    await expect(mailbox.send({ to: 'b@example.com', text: 'x' })).rejects.toBeInstanceOf(
      MailConnectionError,
    );
    expect(mailbox.health().lastError?.code).toBe('ERR_MAIL_CONNECTION_FAILED');
  });
});
