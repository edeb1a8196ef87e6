/**
 * An IMAP mailbox whose UIDVALIDITY changed (its index rebuilt, or the mailbox recreated) on a real Dovecot:
 * the watch resynchronizes from its watermark, delivering what arrived in the gap, instead of trusting UIDs
 * that no longer name the same messages. Also: a bare UID cursor (an earlier version's) and bad cursors.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, type MailboxClient } from '../../src/index.js';
import { waitFor } from '../support/async.js';
import { dovecotAvailable } from '../support/dovecot-server.js';
import { ALICE, LOCAL, useMailSetup } from '../support/mail.js';

const setup = useMailSetup();

/** Reconnect at once after a drop (the tests wait on events, not on the backoff). */
const FAST = { imap: LOCAL, reconnect: { minDelayMs: 10, maxDelayMs: 50 } };

/** A date `hoursAgo` hours before now, to the second (IMAP's INTERNALDATE precision). */
function hoursAgo(hours: number): Date {
  return new Date(Math.floor((Date.now() - hours * 3_600_000) / 1000) * 1000);
}

/** Watches `mailbox`: the subjects delivered, the resyncs and reconnections, in order. */
function record(mailbox: MailboxClient, options: Parameters<MailboxClient['watch']>[1] = {}) {
  const received: string[] = [];
  const events: string[] = [];
  mailbox.on('resynced', (e) => events.push(`resynced ${e.mailbox ?? 'inbox'} ${e.reason}`));
  mailbox.on('reconnected', (e) => events.push(`reconnected ${e.reason}`));
  const watcher = mailbox.watch((m) => {
    received.push(m.subject as string);
  }, options);
  return { received, events, watcher };
}

describe.skipIf(!dovecotAvailable())('IMAP watch across a UIDVALIDITY change (Dovecot)', () => {
  it('a watch resumed after the change delivers the gap from the watermark, once, and goes on in the new UIDVALIDITY', async () => {
    const { auth, accountId, deliver, dovecot } = await setup();
    const before = dovecot.mailboxStatus(ALICE, 'INBOX');
    const first = record(auth.mailbox(accountId, FAST));
    await first.watcher.ready;
    const watermark = hoursAgo(2);
    await deliver('first', { internalDate: watermark });
    await waitFor(() => (first.received.includes('first') ? true : undefined));
    const kept = first.watcher.cursor as string;
    const [validity, lastUid, at] = kept.split(':').map(Number);
    expect(validity).toBe(before.uidValidity);
    expect(lastUid).toBe(first.watcher.lastUid);
    expect(at).toBe(watermark.getTime());
    await first.watcher.stop();

    // While nobody watches: an old message (before the watermark: never delivered), the gap's message, then
    // the mailbox's UIDs are voided.
    await deliver('older than the watermark', { internalDate: hoursAgo(5) });
    await deliver('gap');
    dovecot.setUidValidity(ALICE, 'INBOX', before.uidValidity + 1000);
    expect(dovecot.mailboxStatus(ALICE, 'INBOX').uidValidity).toBe(before.uidValidity + 1000);

    const resumed = record(auth.mailbox(accountId, FAST), { cursor: kept });
    await waitFor(() => (resumed.received.includes('gap') ? true : undefined));
    await waitFor(() => (resumed.events.includes('resynced inbox uidvalidity') ? true : undefined));
    // The watermark's second is delivered again (IMAP dates are to the second: at least once), then the gap.
    expect(resumed.received).toEqual(['first', 'gap']);
    expect(resumed.watcher.cursor?.startsWith(`${before.uidValidity + 1000}:`)).toBe(true);
    await deliver('after');
    await waitFor(() => (resumed.received.includes('after') ? true : undefined));
    expect(resumed.received).toEqual(['first', 'gap', 'after']);
    expect(resumed.events.filter((e) => e.startsWith('resynced'))).toEqual(['resynced inbox uidvalidity']);
    const [, uidAfter] = (resumed.watcher.cursor as string).split(':').map(Number);
    expect(uidAfter).toBe(resumed.watcher.lastUid);
    await resumed.watcher.stop();

    // The position saved in the store is the new one: the next watch resumes without another resync.
    const next = record(auth.mailbox(accountId, FAST));
    await next.watcher.ready;
    expect(next.watcher.cursor).toBe(resumed.watcher.cursor);
    await deliver('next');
    await waitFor(() => (next.received.includes('next') ? true : undefined));
    expect(next.received).toEqual(['next']);
    expect(next.events).toEqual([]);
    await next.watcher.stop();
  });

  it('a folder deleted and recreated (UIDs from 1 again): the new messages are delivered, not taken for old ones', async () => {
    const { auth, accountId, deliver, dovecot } = await setup();
    dovecot.createMailbox(ALICE, 'Projects');
    const first = record(auth.mailbox(accountId, FAST), { mailbox: 'Projects' });
    await first.watcher.ready;
    for (const subject of ['p1', 'p2', 'p3']) await deliver(subject, { mailbox: 'Projects' });
    await waitFor(() => (first.received.length === 3 ? true : undefined));
    expect(first.watcher.lastUid).toBe(3);
    await first.watcher.stop();

    dovecot.recreateMailbox(ALICE, 'Projects');
    await deliver('new one', { mailbox: 'Projects' }); // UID 1 in the recreated folder
    await deliver('new two', { mailbox: 'Projects' }); // UID 2: both below the kept UID 3
    const status = dovecot.mailboxStatus(ALICE, 'Projects');
    expect(status.uidNext).toBe(3);

    // Resumes from the saved position ('imap:Projects'), with the old UIDVALIDITY.
    const resumed = record(auth.mailbox(accountId, FAST), { mailbox: 'Projects' });
    await waitFor(() => (resumed.received.includes('new two') ? true : undefined));
    expect(resumed.received).toEqual(['new one', 'new two']);
    expect(resumed.events.filter((e) => e.startsWith('resynced'))).toEqual(['resynced Projects uidvalidity']);
    expect(resumed.watcher.cursor?.startsWith(`${status.uidValidity}:2:`)).toBe(true);
    await deliver('new three', { mailbox: 'Projects' });
    await waitFor(() => (resumed.received.includes('new three') ? true : undefined));
    expect(resumed.received).toEqual(['new one', 'new two', 'new three']);
    await resumed.watcher.stop();
  });

  it('a resync cut short by a stop keeps the old UIDVALIDITY and its progress: the next watch finishes it', async () => {
    const { auth, accountId, deliver, dovecot } = await setup();
    const first = record(auth.mailbox(accountId, FAST));
    await first.watcher.ready;
    await deliver('seen', { internalDate: hoursAgo(4) });
    await waitFor(() => (first.received.includes('seen') ? true : undefined));
    await first.watcher.stop();
    const validity = dovecot.mailboxStatus(ALICE, 'INBOX').uidValidity;
    // Appended out of date order: the resync delivers by date.
    const [at1, at2, at3] = [hoursAgo(3), hoursAgo(2), hoursAgo(1)];
    await deliver('gap 3', { internalDate: at3 });
    await deliver('gap 1', { internalDate: at1 });
    await deliver('gap 2', { internalDate: at2 });
    dovecot.setUidValidity(ALICE, 'INBOX', validity + 3);

    const received: string[] = [];
    const mailbox = auth.mailbox(accountId, FAST);
    let stopping: Promise<void> | undefined;
    const cut = mailbox.watch((m) => {
      received.push(m.subject as string);
      if (m.subject === 'gap 2') stopping = cut.stop(); // mid-resync
    });
    await waitFor(() => (stopping === undefined ? undefined : true));
    await stopping;
    await cut.done;
    expect(received).toEqual(['seen', 'gap 1', 'gap 2']);
    // Still the old UIDVALIDITY; the watermark is 'gap 2' (its callback resolved before the stop took).
    const [keptValidity, , keptWatermark] = (cut.cursor as string).split(':').map(Number);
    expect([keptValidity, keptWatermark]).toEqual([validity, at2.getTime()]);

    const rest = record(auth.mailbox(accountId, FAST));
    await waitFor(() => (rest.received.includes('gap 3') ? true : undefined));
    expect(rest.received).toEqual(['gap 2', 'gap 3']); // from the watermark's second on
    expect(rest.watcher.cursor?.startsWith(`${validity + 3}:`)).toBe(true);
    await rest.watcher.stop();
  });

  it('a change while watching: Dovecot drops the session, the next one resyncs and loses nothing', async () => {
    const { auth, accountId, deliver, dovecot } = await setup();
    const { received, events, watcher } = record(auth.mailbox(accountId, FAST));
    await watcher.ready;
    await deliver('one', { internalDate: hoursAgo(1) });
    await waitFor(() => (received.includes('one') ? true : undefined));
    const validity = dovecot.mailboxStatus(ALICE, 'INBOX').uidValidity;
    dovecot.setUidValidity(ALICE, 'INBOX', validity + 1);
    await deliver('two');
    await waitFor(() => (received.includes('two') ? true : undefined));
    await waitFor(() => (events.includes('resynced inbox uidvalidity') ? true : undefined));
    await deliver('three');
    await waitFor(() => (received.includes('three') ? true : undefined));
    // 'one' (the watermark's second) may come again with the resync; 'two' and 'three' once each, in order.
    expect(received.filter((s) => s !== 'one')).toEqual(['two', 'three']);
    expect(received.filter((s) => s === 'one').length).toBeLessThanOrEqual(2);
    expect(watcher.cursor?.startsWith(`${validity + 1}:`)).toBe(true);
    expect(events.filter((e) => e.startsWith('resynced'))).toEqual(['resynced inbox uidvalidity']);
    await watcher.stop();
  });

  it('nothing delivered yet (no watermark): goes on from the newest message in the new UIDVALIDITY', async () => {
    const { auth, accountId, deliver, dovecot } = await setup();
    const first = record(auth.mailbox(accountId, FAST));
    await first.watcher.ready;
    const kept = first.watcher.cursor as string;
    expect(kept.endsWith(':0')).toBe(true); // no watermark
    await first.watcher.stop();
    await deliver('while away');
    const validity = dovecot.mailboxStatus(ALICE, 'INBOX').uidValidity;
    dovecot.setUidValidity(ALICE, 'INBOX', validity + 7);
    const resumed = record(auth.mailbox(accountId, FAST), { cursor: kept });
    await waitFor(() => (resumed.events.includes('resynced inbox uidvalidity') ? true : undefined));
    await deliver('later');
    await waitFor(() => (resumed.received.includes('later') ? true : undefined));
    // Nothing to resync from: the message of the gap is not guessed at (as a first watch starts from now).
    expect(resumed.received).toEqual(['later']);
    expect(resumed.watcher.cursor?.startsWith(`${validity + 7}:`)).toBe(true);
    await resumed.watcher.stop();
  });

  it('a bare UID cursor (an earlier version) counts in the current UIDVALIDITY: no resync', async () => {
    const { auth, accountId, deliver, dovecot } = await setup();
    await deliver('a');
    await deliver('b');
    const { uidValidity, uidNext } = dovecot.mailboxStatus(ALICE, 'INBOX');
    const { received, events, watcher } = record(auth.mailbox(accountId, FAST), {
      cursor: String(uidNext - 2), // after 'a'
    });
    await waitFor(() => (received.includes('b') ? true : undefined));
    expect(received).toEqual(['b']);
    expect(watcher.cursor?.startsWith(`${uidValidity}:${uidNext - 1}:`)).toBe(true);
    expect(watcher.lastUid).toBe(uidNext - 1);
    await deliver('c');
    await waitFor(() => (received.includes('c') ? true : undefined));
    expect(events).toEqual([]);
    await watcher.stop();
  });

  it('a cursor that is not an IMAP position stops the watch with InvalidArgumentError, before connecting', async () => {
    const { auth, accountId } = await setup();
    for (const cursor of ['12345:abc', '1:2', 'x', '1:2:3:4', `1:${'9'.repeat(20)}:0`]) {
      const watcher = auth.mailbox(accountId, FAST).watch(() => {}, { cursor, saveCursor: false });
      const err = await watcher.done.catch((e) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.message).toBe('cursor is not an IMAP watch position (use watcher.cursor of an IMAP watch)');
    }
  });
});
