/** The PostgreSQL change feed: payload fallback, the lost LISTEN connection, one round trip per write. */
import { randomBytes } from 'node:crypto';
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
      const { store } = await fresh(pool);
      const { watch, next } = await watching(store);
      expect(pool.totalCount - pool.idleCount).toBe(1); // the listening client, held
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
    } finally {
      await pool.end();
    }
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
