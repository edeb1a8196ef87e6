/**
 * Watching across real processes, as a fleet runs it: two worker processes of a host app share a PostgreSQL
 * store, a token server and a Dovecot mailbox; one holds the account's watch lease, the other stands by.
 * The holder is killed (SIGKILL: nothing released, nothing flushed); a message arrives while nobody watches;
 * the survivor takes the lease and delivers it once, from the position saved in the store. The mailbox health
 * the parent reads from the store counts what both processes did.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/postgres.js';
import { waitFor } from '../support/async.js';
import { testCipher } from '../support/auth.js';
import { dovecotAvailable } from '../support/dovecot-server.js';
import { type MailSetup, mailSetup } from '../support/mail.js';
import { requireService } from '../support/services.js';
import type { WatchWorkerConfig, WatchWorkerMessage } from './watch-worker.js';

const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const WORKER = resolve('tests/fleet/watch-worker.ts');
const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');
const DOVECOT = dovecotAvailable();

interface Worker {
  readonly child: ChildProcess;
  readonly received: string[];
  readonly failed: string[];
  readonly events: WatchWorkerMessage['kind'][];
}

function startWorker(config: WatchWorkerConfig): Worker {
  const child = fork(WORKER, [JSON.stringify(config)], {
    execArgv: ['--import', TSX],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const worker: Worker = { child, received: [], failed: [], events: [] };
  child.on('message', (m: WatchWorkerMessage) => {
    worker.events.push(m.kind);
    if (m.kind === 'message') worker.received.push(m.subject);
    if (m.kind === 'failed') worker.failed.push(m.messageId);
  });
  return worker;
}

const exited = (child: ChildProcess) =>
  new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once('exit', () => done());
  });

describe.skipIf(!DATABASE_URL || !DOVECOT)('watch takeover across processes (PostgreSQL, Dovecot)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('a killed holder: the survivor delivers the gap message once; health counts both processes', async () => {
    const schema = `om_watch_${randomBytes(5).toString('hex')}`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    const store = postgresStore({ client: pool, schema });
    await store.migrate();
    cleanups.push(async () => {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    });
    const key = randomBytes(32);
    const setup: MailSetup = await mailSetup({ store, cipher: testCipher(key) });
    cleanups.push(() => setup.close());
    const { accountId } = setup;
    const config = (holderId: string): WatchWorkerConfig => ({
      url: DATABASE_URL as string,
      schema,
      keyHex: key.toString('hex'),
      tokenServer: setup.tokens.url,
      imapPort: setup.dovecot.imapPort,
      accountId,
      holderId,
      leaseTtlMs: 3_000,
    });
    const a = startWorker(config('instance-a'));
    cleanups.push(async () => {
      a.child.kill('SIGKILL');
      await exited(a.child);
    });
    await waitFor(() => (a.events.includes('watching') ? true : undefined), 30_000);
    // The standby starts once A holds the lease: it waits for it.
    const b = startWorker(config('instance-b'));
    cleanups.push(async () => {
      b.child.kill('SIGKILL');
      await exited(b.child);
    });
    // A's starting point is in the store before any message: a crash from now on loses nothing.
    await waitFor(async () =>
      (await store.getWatchCursor(accountId, 'imap:INBOX')) === null ? undefined : true,
    );

    await setup.deliver('one');
    await waitFor(() => (a.received.includes('one') ? true : undefined), 30_000);
    // Its figures reach the store while it runs (every 20 ms here).
    await waitFor(async () => {
      const [h] = await setup.auth.mailboxHealth([accountId]);
      return h?.processedLast24h === 1 ? true : undefined;
    }, 30_000);
    const positionAfterOne = await waitFor(async () => {
      const saved = await store.getWatchCursor(accountId, 'imap:INBOX');
      return saved !== null && saved !== undefined ? saved : undefined;
    });

    // A dies: no lease released, nothing flushed, no goodbye.
    a.child.kill('SIGKILL');
    await exited(a.child);
    await setup.deliver('while nobody watched');
    expect(b.events).not.toContain('watching');
    // The lease lapses (what its expiry does, without waiting for the clock to run out).
    expect(await store.releaseLease(`watch:${accountId}`, 'instance-a')).toBe(true);
    await waitFor(() => (b.received.includes('while nobody watched') ? true : undefined), 30_000);
    await setup.deliver('poison');
    await setup.deliver('after the takeover');
    await waitFor(() => (b.received.includes('after the takeover') ? true : undefined), 30_000);

    expect(a.received).toEqual(['one']);
    expect(b.received).toEqual(['while nobody watched', 'after the takeover']);
    expect(b.failed).toHaveLength(1); // the poison message: skipped after its (zero) retries, not blocking
    expect(await store.getWatchCursor(accountId, 'imap:INBOX')).not.toBe(positionAfterOne);

    // B stops gracefully: its figures are written; the parent's one call answers for both processes.
    b.child.send({ stop: true });
    await waitFor(() => (b.events.includes('stopped') ? true : undefined), 30_000);
    await exited(b.child);
    const [fleet] = await setup.auth.mailboxHealth([accountId]);
    expect(fleet).toMatchObject({ accountId, processedLast24h: 3, failedLast24h: 1 });
    expect(fleet?.averageHandlerMs).not.toBeNull();
    expect(fleet?.lastSuccessAt).toBeInstanceOf(Date);
    // And B released its lease on the way out: a new instance would take over at once.
    expect(await store.acquireLease(`watch:${accountId}`, 'instance-c', 1_000)).not.toBeNull();
  }, 120_000);
});
