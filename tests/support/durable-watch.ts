/**
 * The durable-watch scenarios, the same on every transport: a takeover after a crash, and a restart after a
 * deploy (tests/mail/durable-cursors*.test.ts run them on Dovecot and on the API emulations).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MailboxAuth, MailboxClientOptions, MemoryStore, WatchOrchestrator } from '../../src/index.js';
import { waitFor } from './async.js';

export interface Transport {
  /** The instance that crashes, and the one that takes over / is deployed (each its own facade where possible). */
  readonly first: MailboxAuth;
  readonly second: MailboxAuth;
  readonly store: MemoryStore;
  readonly accountId: string;
  readonly mailbox: MailboxClientOptions;
  /** The key the position is saved under. */
  readonly key: string;
  deliver(subject: string): Promise<void>;
  close(): Promise<void>;
}

const closers: (() => Promise<void>)[] = [];

function instance(t: Transport, auth: MailboxAuth, name: string) {
  const received: string[] = [];
  const orchestrator: WatchOrchestrator = auth.watchOrchestrator({
    holderId: name,
    leaseTtlMs: 900,
    mailbox: t.mailbox,
    onMessage: (_id, message) => {
      received.push(message.subject as string);
    },
  });
  closers.push(() => orchestrator.stopAll());
  orchestrator.add(t.accountId);
  const watching = () =>
    waitFor(() =>
      orchestrator.health().some((h) => h.state === 'watching' && h.leased && h.lastSuccessAt !== null)
        ? true
        : undefined,
    );
  return { orchestrator, received, watching };
}

/** Register the scenarios for each transport (skipped where `available` is false). */
export function describeDurableWatch(
  transports: readonly [string, boolean, () => Promise<Transport>][],
): void {
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  for (const [name, available, setUp] of transports) {
    describe.skipIf(!available)(`durable watch positions: ${name}`, () => {
      it('a takeover after a crash delivers the message that arrived in between, once, and nothing again', async () => {
        const t = await setUp();
        closers.push(() => t.close());
        const a = instance(t, t.first, 'instance-a');
        await a.watching();
        // The baseline ("from now") is in the store before any message: a crash now loses nothing either.
        await waitForStored(t);
        await t.deliver('before the crash');
        await waitFor(() => (a.received.includes('before the crash') ? true : undefined));
        const afterFirst = await waitForStored(t, (c) => c !== undefined);
        // Instance A crashes: its lease is not released, its process is gone.
        await a.orchestrator.stopAll({ releaseLeases: false });
        await t.deliver('while nobody watched');
        const b = instance(t, t.second, 'instance-b');
        // B waits for A's lease; it lapses (what the lease's expiry does, without waiting for the clock).
        expect(b.orchestrator.health()[0]?.leased).toBe(false);
        expect(await t.store.releaseLease(`watch:${t.accountId}`, 'instance-a')).toBe(true);
        await waitFor(() => (b.received.includes('while nobody watched') ? true : undefined));
        await t.deliver('after the takeover');
        await waitFor(() => (b.received.includes('after the takeover') ? true : undefined));
        expect(a.received).toEqual(['before the crash']);
        expect(b.received).toEqual(['while nobody watched', 'after the takeover']);
        // And B's position moved on in the store.
        expect(await t.store.getWatchCursor(t.accountId, t.key)).not.toBe(afterFirst);
      }, 40_000);

      it('a restart after a deploy resumes from the saved position: what arrived while down, in order', async () => {
        const t = await setUp();
        closers.push(() => t.close());
        const first = t.first.mailbox(t.accountId, t.mailbox);
        const delivered: string[] = [];
        const watcher = first.watch((message) => {
          delivered.push(message.subject as string);
        });
        await watcher.ready;
        await t.deliver('one');
        await waitFor(() => (delivered.includes('one') ? true : undefined));
        await watcher.stop(); // the deploy: the position is in the store once stop() resolves
        expect(await t.store.getWatchCursor(t.accountId, t.key)).toBe(watcher.cursor);
        await t.deliver('two');
        await t.deliver('three');
        const again: string[] = [];
        const next = t.second.mailbox(t.accountId, t.mailbox).watch((message) => {
          again.push(message.subject as string);
        });
        closers.push(() => next.stop());
        await waitFor(() => (again.length >= 2 ? true : undefined));
        await t.deliver('four');
        await waitFor(() => (again.includes('four') ? true : undefined));
        expect(again).toEqual(['two', 'three', 'four']);
        expect(delivered).toEqual(['one']);
      }, 40_000);
    });
  }
}

/** The saved position of the account, once `check` accepts it (by default: once there is one). */
function waitForStored(
  t: Transport,
  check: (cursor: string | undefined) => boolean = (c) => c !== undefined,
): Promise<string> {
  return waitFor(async () => {
    const cursor = (await t.store.getWatchCursor(t.accountId, t.key)) ?? undefined;
    return check(cursor) && cursor !== undefined ? cursor : undefined;
  });
}
