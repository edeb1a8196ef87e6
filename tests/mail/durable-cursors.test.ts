/**
 * Durable watch positions on the Gmail API and Graph emulations (IMAP: durable-cursors-imap.test.ts): a
 * takeover after a crash and a restart after a deploy resume from the position saved in the store, so that
 * the message that arrived in between is delivered once and nothing delivered before is delivered again;
 * and the options (`saveCursor`, an explicit `cursor`) and a failing save.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MemoryStore } from '../../src/index.js';
import { waitFor } from '../support/async.js';
import { describeDurableWatch } from '../support/durable-watch.js';
import { mswServer } from '../support/flow.js';
import { FAST_API, gmailSetup, graphSetup } from '../support/mail-api.js';

const server = mswServer();
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describeDurableWatch([
  [
    'Gmail API',
    true,
    async () => {
      const { auth, store, gmail, accountId } = await gmailSetup(server);
      return {
        first: auth,
        second: auth,
        store: store as MemoryStore,
        accountId,
        mailbox: { transport: 'gmail-api', api: FAST_API },
        key: 'gmail-api:INBOX',
        deliver: async (subject) => void gmail.deliver({ subject }),
        close: async () => auth.close(),
      };
    },
  ],
  [
    'Microsoft Graph',
    true,
    async () => {
      const { auth, make, store, graph, accountId } = await graphSetup(server, { mailTransport: 'graph' });
      const second = make(); // a second instance on the same store
      return {
        first: auth,
        second,
        store: store as MemoryStore,
        accountId,
        mailbox: { transport: 'graph', api: FAST_API },
        key: 'graph:INBOX',
        deliver: async (subject) => void graph.deliver({ subject }),
        close: async () => {
          await second.close();
          await auth.close();
        },
      };
    },
  ],
]);

describe('durable watch positions: options and stores', () => {
  it('saveCursor: false starts from now and saves nothing; an explicit cursor wins over the stored one', async () => {
    const setup = await gmailSetup(server);
    const { auth, gmail, accountId } = setup;
    const store = setup.store as MemoryStore;
    closers.push(() => auth.close());
    const mailbox = { transport: 'gmail-api', api: FAST_API } as const;
    const seen: string[] = [];
    const first = auth.mailbox(accountId, mailbox).watch((m) => {
      seen.push(m.subject as string);
    });
    await first.ready;
    const beforeA = first.cursor as string;
    gmail.deliver({ subject: 'a' });
    await waitFor(() => (seen.includes('a') ? true : undefined));
    const afterA = first.cursor as string;
    await first.stop();
    gmail.deliver({ subject: 'b' });
    // Not saving: starts from now ('b' is before it) and leaves the stored position alone.
    const fresh: string[] = [];
    const unsaved = auth.mailbox(accountId, mailbox).watch(
      (m) => {
        fresh.push(m.subject as string);
      },
      { saveCursor: false },
    );
    await unsaved.ready;
    gmail.deliver({ subject: 'c' });
    await waitFor(() => (fresh.includes('c') ? true : undefined));
    await unsaved.stop();
    expect(fresh).toEqual(['c']);
    expect(await store.getWatchCursor(accountId, 'gmail-api:INBOX')).toBe(afterA);
    // Given a position (here the start of the first watch, before 'a'): starts there, whatever the store holds, and saves on.
    const replay: string[] = [];
    const given = auth.mailbox(accountId, mailbox).watch(
      (m) => {
        replay.push(m.subject as string);
      },
      { cursor: beforeA },
    );
    await waitFor(() => (replay.includes('c') ? true : undefined));
    await given.stop();
    expect(replay).toEqual(['a', 'b', 'c']);
    expect(await store.getWatchCursor(accountId, 'gmail-api:INBOX')).toBe(given.cursor);
    expect(() => auth.mailbox(accountId, mailbox).watch(() => {}, { saveCursor: 'yes' as never })).toThrow(
      'saveCursor must be a boolean',
    );
  });

  it('a failing save is reported in health and does not stop the watch; the next save goes through', async () => {
    const setup = await gmailSetup(server);
    const { auth, gmail, accountId } = setup;
    const store = setup.store as MemoryStore;
    closers.push(() => auth.close());
    let failSaves = true;
    const put = store.putWatchCursor.bind(store);
    store.putWatchCursor = async (...args) => {
      if (failSaves) throw Object.assign(new Error('database down'), { code: 'ECONNREFUSED' });
      return put(...args);
    };
    const mailbox = auth.mailbox(accountId, { transport: 'gmail-api', api: FAST_API });
    const seen: string[] = [];
    const watcher = mailbox.watch((m) => {
      seen.push(m.subject as string);
    });
    await watcher.ready;
    gmail.deliver({ subject: 'while the store is down' });
    await waitFor(() => (seen.length === 1 ? true : undefined));
    expect(mailbox.health().lastError?.code).toBe('ERR_STORAGE');
    expect(mailbox.health().watching).toBe(true);
    failSaves = false;
    gmail.deliver({ subject: 'after' });
    await waitFor(() => (seen.length === 2 ? true : undefined));
    await watcher.stop();
    expect(await store.getWatchCursor(accountId, 'gmail-api:INBOX')).toBe(watcher.cursor);
  });
});

describe('several folders per account (Gmail API labels)', () => {
  it('watches each folder with its own saved position; a takeover resumes both', async () => {
    const setup = await gmailSetup(server);
    const { auth, gmail, accountId } = setup;
    const store = setup.store as MemoryStore;
    closers.push(() => auth.close());
    const received: string[] = [];
    const start = (name: string) => {
      const o = auth.watchOrchestrator({
        holderId: name,
        leaseTtlMs: 900,
        mailbox: { transport: 'gmail-api', api: FAST_API },
        onMessage: (_id, message) => {
          received.push(`${name} ${message.mailbox} ${message.subject}`);
        },
      });
      closers.push(() => o.stopAll());
      o.add(accountId, { mailboxes: ['INBOX', 'SPAM'] });
      return o;
    };
    expect(() => auth.watchOrchestrator({ onMessage: () => {} }).add(accountId, { mailboxes: [] })).toThrow(
      'mailboxes must be 1 to 20 distinct non-empty strings',
    );
    expect(() =>
      auth
        .watchOrchestrator({ onMessage: () => {} })
        .add(accountId, { mailbox: 'INBOX', mailboxes: ['SPAM'] }),
    ).toThrow('give mailbox or mailboxes, not both');
    const a = start('a');
    // Each folder's watch has taken its starting point once its position is in the store.
    await waitFor(async () =>
      a.health()[0]?.state === 'watching' &&
      (await store.getWatchCursor(accountId, 'gmail-api:INBOX')) !== null &&
      (await store.getWatchCursor(accountId, 'gmail-api:SPAM')) !== null
        ? true
        : undefined,
    );
    gmail.deliver({ subject: 'ham' });
    gmail.deliver({ subject: 'spam', labelIds: ['SPAM', 'UNREAD'] });
    await waitFor(() => (received.length === 2 ? true : undefined));
    expect(received.sort()).toEqual(['a INBOX ham', 'a SPAM spam']);
    expect(a.health()[0]?.messagesLast24h).toBe(2); // the folders' figures summed
    const inbox = await store.getWatchCursor(accountId, 'gmail-api:INBOX');
    const spam = await store.getWatchCursor(accountId, 'gmail-api:SPAM');
    expect(inbox).not.toBeNull();
    expect(spam).not.toBeNull();
    // A crash; mail in both folders; the takeover delivers both from their own positions.
    await a.stopAll({ releaseLeases: false });
    gmail.deliver({ subject: 'ham 2' });
    gmail.deliver({ subject: 'spam 2', labelIds: ['SPAM', 'UNREAD'] });
    const b = start('b');
    await store.releaseLease(`watch:${accountId}`, 'a');
    await waitFor(() => (received.length === 4 ? true : undefined));
    expect(received.slice(2).sort()).toEqual(['b INBOX ham 2', 'b SPAM spam 2']);
    expect(b.health()).toHaveLength(1);
  });
});
