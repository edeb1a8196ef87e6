/** The PostgreSQL change feed: payload fallback, the lost LISTEN connection, one round trip per write. */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { AccountChange, AccountStore } from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';
import { sampleAccountRecord } from '../../src/testing/index.js';
import { requireService } from '../support/services.js';

/** Changes awaited one at a time. */
async function watching(store: AccountStore) {
  const queued: AccountChange[] = [];
  const waiting: ((c: AccountChange) => void)[] = [];
  const watch = await (store.watchAccounts as NonNullable<AccountStore['watchAccounts']>)((c) => {
    const w = waiting.shift();
    if (w) w(c);
    else queued.push(c);
  });
  const next = () =>
    queued.length > 0
      ? Promise.resolve(queued.shift() as AccountChange)
      : new Promise<AccountChange>((r) => waiting.push(r));
  return { watch, next };
}

const big = () => ({ blob: 'x'.repeat(9000) });

describe('PostgreSQL change feed on PGlite', () => {
  const lite = new PGlite();
  afterAll(() => lite.close());

  it('a record too large for pg_notify arrives as written without the record', async () => {
    const store = postgresStore({ client: lite, schema: 'notify_big' });
    await store.migrate();
    const { watch, next } = await watching(store);
    await store.putAccount(sampleAccountRecord({ id: 'big', metadata: big() }), { expectedVersion: null });
    const change = await next();
    expect(change).toEqual({ kind: 'written', id: 'big', version: 1 });
    const small = await store.putAccount(sampleAccountRecord({ id: 'small' }), { expectedVersion: null });
    expect(await next()).toEqual({ kind: 'written', id: 'small', version: 1, record: small });
    await watch.close();
  });
});

const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');
describe.skipIf(!DATABASE_URL)('PostgreSQL change feed (DATABASE_URL)', () => {
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const schemas: string[] = [];
  afterAll(async () => {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });
  const fresh = async (client: pg.Pool | pg.Client) => {
    const schema = `om_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    // Migrated through the admin pool (migrate() on a single pg Client calls its connect(): not supported).
    await postgresStore({ client: admin, schema }).migrate();
    return { store: postgresStore({ client, schema }), schema };
  };

  it('a record too large for pg_notify arrives as written without the record', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
    try {
      const { store } = await fresh(pool);
      const { watch, next } = await watching(store);
      await store.putAccount(sampleAccountRecord({ id: 'big', metadata: big() }), { expectedVersion: null });
      expect(await next()).toEqual({ kind: 'written', id: 'big', version: 1 });
      await watch.close();
    } finally {
      await pool.end();
    }
  });

  it('reports reset once it listens again after its backend was terminated, and close() frees the client', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
    try {
      const { store, schema } = await fresh(pool);
      const { watch, next } = await watching(store);
      expect(pool.totalCount).toBe(0); // the listening connection is its own, outside the pool
      const { rows } = await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN "om_%' AND state = 'idle' AND pid <> pg_backend_pid()`,
      );
      const listening = rows.map((r) => r.pid);
      for (const pid of listening) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      expect(await next()).toEqual({ kind: 'reset', id: '' });
      // Listening again: changes arrive.
      await store.putAccount(sampleAccountRecord({ id: 'after' }), { expectedVersion: null });
      expect((await next()).id).toBe('after');
      await watch.close();
      await watch.close();
      expect(pool.totalCount - pool.idleCount).toBe(0);
      await listenersGone(schema);
    } finally {
      await pool.end();
    }
  });

  /** The backends that LISTEN on the schema's channel (other than the admin's). */
  const listeners = async (schema: string) =>
    (
      await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE query = $1 AND pid <> pg_backend_pid()`,
        [`LISTEN "${schema}_oauth_mailbox_changes"`],
      )
    ).rows.map((r) => r.pid);
  /** Polls the server (a condition, not a delay) until no backend listens on the schema's channel. */
  async function listenersGone(schema: string): Promise<void> {
    while ((await listeners(schema)).length > 0) await new Promise((r) => setTimeout(r, 20));
  }

  it('takes none of the pool’s clients: a pool of one still serves the store while it listens', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    try {
      const { store, schema } = await fresh(pool);
      const { watch, next } = await watching(store);
      expect(await listeners(schema)).toHaveLength(1);
      const written = await store.putAccount(sampleAccountRecord({ id: 'one' }), { expectedVersion: null });
      expect(await next()).toMatchObject({ kind: 'written', id: 'one', record: written });
      const read = await store.readAndLease('one', 'w', 60_000, { dueBefore: null });
      expect(read.lease?.holder).toBe('w');
      await watch.close();
      await listenersGone(schema);
    } finally {
      await pool.end();
    }
  });

  it('pool.end() without closing the watch resolves, and the watch then closes its connection', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const { store, schema } = await fresh(pool);
    await store.getAccount('warm'); // a pool client in use and idle, as in a host
    const { watch } = await watching(store);
    expect(await listeners(schema)).toHaveLength(1);
    await pool.end(); // would wait forever for a client the watch held
    await listenersGone(schema);
    await watch.close(); // still safe
  });

  it('does not keep a process alive: a host that lets its pool exit on idle exits with the watch open', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const { schema } = await fresh(pool);
    await pool.end();
    const script = `
      import pg from ${JSON.stringify(pathToFileURL(resolve('node_modules/pg/esm/index.mjs')).href)};
      import { postgresStore } from ${JSON.stringify(pathToFileURL(resolve('src/postgres.ts')).href)};
      const pool = new pg.Pool({ connectionString: ${JSON.stringify(DATABASE_URL)}, allowExitOnIdle: true });
      const store = postgresStore({ client: pool, schema: ${JSON.stringify(schema)} });
      await store.getAccount('x');
      await store.watchAccounts(() => {});
      process.send('listening');
    `;
    const file = join(tmpdir(), `om-watch-exit-${randomBytes(4).toString('hex')}.mts`);
    writeFileSync(file, script);
    const child = fork(file, [], {
      execArgv: ['--import', pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let listened = false;
    child.once('message', () => {
      listened = true;
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      expect(await exited).toBe(0);
      expect(listened).toBe(true);
    } finally {
      child.kill();
      rmSync(file, { force: true });
    }
    await listenersGone(schema);
  });

  it('listens on a single pg Client, and each write is one query', async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      const { store } = await fresh(client);
      const { watch, next } = await watching(store);
      const sent: string[] = [];
      const query = client.query.bind(client);
      (client as unknown as { query: (...a: unknown[]) => unknown }).query = (...args: unknown[]) => {
        sent.push(String(args[0]));
        return (query as (...a: unknown[]) => unknown)(...args);
      };
      const created = await store.putAccount(sampleAccountRecord({ id: 'one' }), { expectedVersion: null });
      expect(await next()).toMatchObject({ kind: 'written', id: 'one', record: created });
      const read = await store.readAndLease('one', 'w', 60_000, { dueBefore: null });
      expect(read.lease?.holder).toBe('w');
      const { version: _v, updatedAt: _u, ...input } = created;
      await store.putAccountAndRelease(input, { expectedVersion: 1, holder: 'w' });
      expect(await next()).toMatchObject({ kind: 'written', version: 2 });
      expect(sent).toHaveLength(3);
      await watch.close();
      (client as unknown as { query: unknown }).query = query;
      expect(client.listenerCount('notification')).toBe(0);
    } finally {
      await client.end();
    }
  });
});
