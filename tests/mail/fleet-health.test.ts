/**
 * Mailbox health shared across instances: what each instance's watchers and clients did is counted in the
 * store, so that one `mailboxHealth()` call on any instance answers for the fleet (on the Graph emulation;
 * tests/fleet/watch-takeover.test.ts does it across processes on PostgreSQL and Dovecot).
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AccountStore,
  ConfigurationError,
  InvalidArgumentError,
  type MailboxAuth,
  memoryStore,
  type StateStore,
} from '../../src/index.js';
import { waitFor } from '../support/async.js';
import { mswServer } from '../support/flow.js';
import { FAST_API, graphSetup } from '../support/mail-api.js';

const server = mswServer();
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const GRAPH = { transport: 'graph', api: FAST_API } as const;

/** A memory store whose `addMailboxActivity` fails while `failing`, or that has no activity methods at all. */
function storeWith(mode: { failing: boolean; without?: boolean }): AccountStore & StateStore {
  const base = memoryStore();
  return new Proxy(base, {
    get(target, property) {
      if (property === 'addMailboxActivity' || property === 'getMailboxActivity') {
        if (mode.without) return undefined;
        if (property === 'addMailboxActivity' && mode.failing)
          return async () => {
            throw new Error('connection to the database lost');
          };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Watch with `auth` until `subjects` were handled (delivered or skipped), then stop (which writes the figures). */
async function watchThrough(auth: MailboxAuth, accountId: string, deliver: () => void, count: number) {
  const handled: string[] = [];
  const mailbox = auth.mailbox(accountId, GRAPH);
  mailbox.on('messageFailed', () => handled.push('failed'));
  const watcher = mailbox.watch(
    async (message) => {
      if (message.subject === 'poison') throw Object.assign(new Error('cannot parse'), { code: 'E_PARSE' });
      handled.push(message.subject as string);
    },
    { retry: { retries: 0 } },
  );
  await watcher.ready;
  deliver();
  await waitFor(() => (handled.length === count ? true : undefined), 10_000, {
    message: () => `handled: ${handled.join(', ')}`,
  });
  await watcher.stop();
  return { handled, local: mailbox.health() };
}

describe('mailbox health shared across instances', () => {
  it('two instances count into one figure: one call on either answers for both', async () => {
    const { auth, make, graph, accountId } = await graphSetup(server, { mailTransport: 'graph' });
    const second = make();
    closers.push(
      () => second.close(),
      () => auth.close(),
    );
    const a = await watchThrough(
      auth,
      accountId,
      () => {
        graph.deliver({ subject: 'a1' });
        graph.deliver({ subject: 'poison' });
        graph.deliver({ subject: 'a2' });
      },
      3,
    );
    expect(a.handled.sort()).toEqual(['a1', 'a2', 'failed']);
    const b = await watchThrough(second, accountId, () => void graph.deliver({ subject: 'b1' }), 1);
    // Each instance's own figures count its own work only; the store's count the fleet's.
    expect(a.local.messagesLast24h).toBe(2);
    expect(b.local.messagesLast24h).toBe(1);
    const [fleet, unknown] = await auth.mailboxHealth([accountId, 'acc-without-activity']);
    expect(fleet).toMatchObject({
      accountId,
      processedLast24h: 3,
      failedLast24h: 1,
      errorsLast24h: 0,
      lastError: null,
    });
    expect(fleet?.averageHandlerMs).toBeGreaterThanOrEqual(0);
    expect(fleet?.lastSuccessAt).toBeInstanceOf(Date);
    expect(unknown).toEqual({
      accountId: 'acc-without-activity',
      processedLast24h: 0,
      failedLast24h: 0,
      errorsLast24h: 0,
      averageHandlerMs: null,
      lastSuccessAt: null,
      lastError: null,
    });
    expect(await second.mailboxHealth([accountId])).toEqual([fleet]);
    // A day later the counts are gone; the last success stays.
    const [later] = await auth.mailboxHealth([accountId], { now: Date.now() + 25 * 3_600_000 });
    expect(later).toMatchObject({ processedLast24h: 0, failedLast24h: 0, averageHandlerMs: null });
    expect(later?.lastSuccessAt).toEqual(fleet?.lastSuccessAt);
  });

  it('figures are written while a watch runs (every mailboxActivityFlushMs), not only when it stops', async () => {
    const { auth, make, graph, accountId } = await graphSetup(server, { mailTransport: 'graph' });
    const watching = make({ mailboxActivityFlushMs: 20 });
    closers.push(
      () => watching.close(),
      () => auth.close(),
    );
    const seen: string[] = [];
    const watcher = watching.mailbox(accountId, GRAPH).watch((m) => {
      seen.push(m.subject as string);
    });
    await watcher.ready;
    graph.deliver({ subject: 'one' });
    graph.deliver({ subject: 'two' });
    // The other instance reads them from the store, the watch still running.
    const [fleet] = await waitFor(async () => {
      const read = await auth.mailboxHealth([accountId]);
      return read[0]?.processedLast24h === 2 ? read : undefined;
    });
    expect(fleet?.failedLast24h).toBe(0);
    expect(watching.mailbox(accountId, GRAPH).health().messagesLast24h).toBe(0); // another client: its own
    await watcher.stop();
  });

  it('an error is counted with its code and no secret; a failed write keeps its counts for the next one', async () => {
    const mode = { failing: true };
    const store = storeWith(mode);
    const { auth, make, graph, accountId } = await graphSetup(server, { mailTransport: 'graph', store });
    const reader = make();
    closers.push(
      () => reader.close(),
      () => auth.close(),
    );
    const { accessToken } = await auth.getAccessToken(accountId);
    const mailbox = auth.mailbox(accountId, GRAPH);
    graph.failNext({ status: 400 });
    const failure = await (async () => {
      for await (const _ of mailbox.fetchUnread()) break;
    })().catch((err: Error & { code: string }) => err);
    expect(failure).toBeInstanceOf(Error);
    const code = (failure as { code: string }).code;
    await mailbox.disconnect(); // writes: the store fails, the counts are kept
    mode.failing = false;
    expect((await reader.mailboxHealth([accountId]))[0]?.errorsLast24h).toBe(0);
    // The next write (here: the read on the instance that holds them) carries them.
    const [fleet] = await auth.mailboxHealth([accountId]);
    expect(fleet).toMatchObject({ errorsLast24h: 1, lastError: { code } });
    expect(fleet?.lastError?.at).toBeInstanceOf(Date);
    expect(await reader.mailboxHealth([accountId])).toEqual([fleet]);
    const text = JSON.stringify(await store.getMailboxActivity?.([accountId], 0));
    expect(text).toContain(code);
    expect(text).not.toContain(accessToken);
  });

  it('refuses bad ids without writing, and a store that keeps no activity is a ConfigurationError', async () => {
    const { auth, accountId } = await graphSetup(server, { mailTransport: 'graph' });
    closers.push(() => auth.close());
    for (const ids of [[], [''], [accountId, accountId], Array.from({ length: 1001 }, (_, i) => `a${i}`)]) {
      await expect(auth.mailboxHealth(ids)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(auth.mailboxHealth('acc' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(auth.mailboxHealth([accountId], { now: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);

    const without = storeWith({ failing: false, without: true });
    const {
      auth: plain,
      graph,
      accountId: id,
    } = await graphSetup(server, {
      mailTransport: 'graph',
      store: without,
    });
    closers.push(() => plain.close());
    // Watching works as before: the figures stay per client.
    const local = await watchThrough(plain, id, () => void graph.deliver({ subject: 'x' }), 1);
    expect(local.local.messagesLast24h).toBe(1);
    await expect(plain.mailboxHealth([id])).rejects.toBeInstanceOf(ConfigurationError);
  });

  it('close() writes what the stopped clients recorded', async () => {
    const { auth, make, graph, accountId } = await graphSetup(server, { mailTransport: 'graph' });
    const closing = make();
    closers.push(() => auth.close());
    const seen: string[] = [];
    const watcher = closing.mailbox(accountId, GRAPH).watch((m) => {
      seen.push(m.subject as string);
    });
    await watcher.ready;
    graph.deliver({ subject: 'before close' });
    await waitFor(() => (seen.length === 1 ? true : undefined));
    await closing.close();
    expect((await auth.mailboxHealth([accountId]))[0]?.processedLast24h).toBe(1);
  });

  it('rejects a bad mailboxActivityFlushMs at creation', async () => {
    const { make } = await graphSetup(server, { mailTransport: 'graph' });
    for (const value of [0, -1, 1.5, '10', 86_400_001]) {
      expect(() => make({ mailboxActivityFlushMs: value as number })).toThrow(ConfigurationError);
    }
  });
});
