/** MailboxClient against a real Dovecot: fetch, mark read, send through submission, watch with IDLE. */
import { ImapFlow } from 'imapflow';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  InvalidArgumentError,
  type MailboxClient,
  MailConnectionError,
  type MailMessage,
} from '../../src/index.js';
import { all, waitFor } from '../support/async.js';
import { dovecotAvailable } from '../support/dovecot-server.js';
import { ALICE, LOCAL, useMailSetup } from '../support/mail.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const setup = useMailSetup();

/** Watches the mailbox: the subjects it delivers, and the reasons it reconnected for. */
function watchSubjects(mailbox: MailboxClient) {
  const received: string[] = [];
  const reconnects: string[] = [];
  mailbox.on('reconnected', (e) => reconnects.push(e.reason));
  const watcher = mailbox.watch((m) => {
    received.push(m.subject as string);
  });
  return { received, reconnects, watcher };
}

/** Watches imapflow's `fetch`: the UIDs of each FETCH command, and how many messages were read from the server. */
function spyOnFetch() {
  const original = ImapFlow.prototype.fetch;
  const state = { windows: [] as number[][], pulled: 0 };
  vi.spyOn(ImapFlow.prototype, 'fetch').mockImplementation(function (
    this: ImapFlow,
    ...args: Parameters<ImapFlow['fetch']>
  ) {
    state.windows.push(String(args[0]).split(',').map(Number));
    const inner = original.apply(this, args);
    return (async function* () {
      for await (const message of inner) {
        state.pulled++;
        yield message;
      }
    })() as ReturnType<ImapFlow['fetch']>;
  });
  return state;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe.skipIf(!dovecotAvailable())('MailboxClient (Dovecot)', () => {
  it('streams unread messages with their source and marks them read', async () => {
    const { auth, accountId, deliver } = await setup();
    await deliver('first');
    await deliver('already read', { seen: true });
    await deliver('second');
    const mailbox = auth.mailbox(accountId, { imap: LOCAL });
    const unread: MailMessage[] = [];
    for await (const message of mailbox.fetchUnread({ max: 10 })) unread.push(message);
    expect(unread.map((m) => m.subject)).toEqual(['second', 'first']); // newest first, as every transport
    expect(unread[1]?.source?.toString()).toContain('Body of first');
    expect(unread[1]?.from[0]?.address).toBe('sender@example.com');
    expect(mailbox.isConnected()).toBe(true);
    await mailbox.markAsRead(unread[1]?.uid as number);
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

  it('fetchUnread order: the highest max UIDs descending by default, the lowest ascending on request, 10 UIDs per FETCH', async () => {
    const { auth, accountId, deliver } = await setup();
    for (let i = 0; i < 25; i++) await deliver(`m${i}`);
    await deliver('read', { seen: true });
    const mailbox = auth.mailbox(accountId, { imap: LOCAL });
    const fetches = spyOnFetch();
    const newest = await all(mailbox.fetchUnread({ max: 23 }));
    expect(newest.map((m) => m.subject)).toEqual(Array.from({ length: 23 }, (_, i) => `m${24 - i}`));
    // Three FETCH commands of 10, 10 and 3 UIDs, highest first.
    expect(fetches.windows.map((w) => w.length)).toEqual([10, 10, 3]);
    expect(fetches.windows.flat()).toEqual(newest.map((m) => m.uid));
    fetches.windows.length = 0;
    const oldest = await all(mailbox.fetchUnread({ max: 23, order: 'oldest', source: false }));
    expect(oldest.map((m) => m.subject)).toEqual(Array.from({ length: 23 }, (_, i) => `m${i}`));
    expect(oldest[0]?.source).toBeUndefined();
    expect(fetches.windows.map((w) => w.length)).toEqual([10, 10, 3]);
    expect(fetches.windows.flat()).toEqual(oldest.map((m) => m.uid));
    await mailbox.disconnect();
  });

  it('fetchUnread holds at most one window of 10 messages (sources included), asking for the next when the consumer gets there', async () => {
    const { auth, accountId, deliver } = await setup();
    for (let i = 0; i < 25; i++) await deliver(`m${i}`);
    const mailbox = auth.mailbox(accountId, { imap: LOCAL });
    const fetches = spyOnFetch();
    for (const order of ['newest', 'oldest'] as const) {
      fetches.pulled = 0;
      fetches.windows.length = 0;
      let consumed = 0;
      for await (const message of mailbox.fetchUnread({ max: 25, order })) {
        expect(message.source).toBeInstanceOf(Buffer);
        // Read from the server and not yet handed to the consumer: the rest of the current window at most.
        expect(fetches.pulled - consumed).toBeLessThanOrEqual(10);
        expect(fetches.windows).toHaveLength(Math.floor(consumed / 10) + 1);
        consumed++;
      }
      expect([consumed, fetches.pulled, fetches.windows.length]).toEqual([25, 25, 3]);
    }
    await mailbox.disconnect();
  });

  it('markAsRead inside the fetchUnread loop does not wait for the listing (no lock held across yields); later arrivals are listed', async () => {
    const { auth, accountId, deliver } = await setup();
    for (let i = 0; i < 12; i++) await deliver(`m${i}`);
    const mailbox = auth.mailbox(accountId, { imap: LOCAL });
    const seen: string[] = [];
    for await (const message of mailbox.fetchUnread({ order: 'oldest' })) {
      seen.push(message.subject as string);
      await mailbox.markAsRead(message.id);
    }
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`));
    expect(await all(mailbox.fetchUnread())).toEqual([]);
    // Messages that arrived since, on the same connection (the mailbox still selected), are listed.
    await deliver('x');
    await deliver('y');
    expect((await all(mailbox.fetchUnread())).map((m) => m.subject)).toEqual(['y', 'x']);
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(all(mailbox.fetchUnread({ signal: controller.signal }))).rejects.toThrow('stop');
    await mailbox.disconnect();
  }, 15_000);

  it('sends through SMTP submission (XOAUTH2 checked by Dovecot) and the watcher reads it over IMAP', async () => {
    const { auth, accountId } = await setup();
    const mailbox = auth.mailbox(accountId, { imap: LOCAL, smtp: LOCAL });
    const received: MailMessage[] = [];
    const watcher = mailbox.watch((message) => {
      received.push(message);
    });
    await watcher.ready; // connected and in IDLE: a message sent now must arrive
    expect(mailbox.health().lastSuccessAt).not.toBeNull();
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
    const { received, reconnects, watcher } = watchSubjects(mailbox);
    await watcher.ready; // the baseline is taken: 'old' is not new, what comes next is
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
    // Each IDLE restart ends the IDLE with a NOOP: counted, with the connection it went over.
    const noops: ImapFlow[] = [];
    const noop = ImapFlow.prototype.noop;
    vi.spyOn(ImapFlow.prototype, 'noop').mockImplementation(function (this: ImapFlow) {
      noops.push(this);
      return noop.call(this);
    });
    const mailbox = auth.mailbox(accountId, { imap: LOCAL, idleRestartMs: 200 });
    const { received, reconnects, watcher } = watchSubjects(mailbox);
    await waitFor(() => (noops.length >= 3 ? true : undefined)); // several IDLE restarts
    expect(new Set(noops).size).toBe(1); // all on the same connection
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
    await watcher.ready;
    tokens.revoke(ALICE);
    await expect(watcher.done).rejects.toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED' });
    expect(events).toEqual([accountId]);
    expect(mailbox.health().watching).toBe(false);
    // ready never rejects, also for a watch that ends before its first session.
    tokens.revoke(ALICE);
    const doomed = mailbox.watch(() => {});
    await expect(doomed.ready).resolves.toBeUndefined();
    await expect(doomed.done).rejects.toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED' });
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
    const { received, reconnects, watcher } = watchSubjects(mailbox);
    await watcher.ready; // connected, baseline taken: what arrives while away is caught up on return
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
