import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigurationError, StorageError } from '../../src/index.js';
import { POSTGRES_SCHEMA_VERSION, postgresMigrations, postgresStore } from '../../src/postgres.js';
import { describeStoreConformance, sampleAccountRecord } from '../../src/testing/index.js';
import { requireService } from '../support/services.js';

// PGlite: one in-memory database for the file, a fresh schema per test.
const lite = new PGlite();
afterAll(() => lite.close());
let n = 0;
describeStoreConformance(
  'PGlite',
  async () => {
    const schema = `t${++n}`;
    let offset = 0;
    const now = () => Date.now() + offset;
    const store = postgresStore({ client: lite, schema, now });
    await store.migrate();
    return {
      store,
      // One PGlite instance is one connection: the peer is another store object on it.
      peer: async () => postgresStore({ client: lite, schema, now }),
      advanceClock: (ms: number) => {
        offset += ms;
      },
      cleanup: async () => void (await lite.query(`DROP SCHEMA ${schema} CASCADE`)),
    };
  },
  { describe, it },
);

const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');
describe.skipIf(!DATABASE_URL)('PostgreSQL (DATABASE_URL)', () => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
  afterAll(() => pool.end());
  describeStoreConformance(
    'PostgreSQL',
    async () => {
      const schema = `om_${randomBytes(6).toString('hex')}`;
      let offset = 0;
      const now = () => Date.now() + offset;
      const store = postgresStore({ client: pool, schema, now });
      await store.migrate();
      // Another process's view: its own pool (its own connections, its own LISTEN).
      let other: pg.Pool | undefined;
      return {
        store,
        peer: async () => {
          other = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
          return postgresStore({ client: other, schema, now });
        },
        advanceClock: (ms: number) => {
          offset += ms;
        },
        cleanup: async () => {
          await other?.end();
          await pool.query(`DROP SCHEMA ${schema} CASCADE`);
        },
      };
    },
    { describe, it },
  );

  it('migrates idempotently, also from concurrent processes', async () => {
    const schema = `om_${randomBytes(6).toString('hex')}`;
    const stores = Array.from({ length: 4 }, () => postgresStore({ client: pool, schema }));
    const v = POSTGRES_SCHEMA_VERSION;
    expect(await Promise.all(stores.map((s) => s.migrate()))).toEqual([v, v, v, v]);
    expect(await stores[0]?.migrate()).toBe(v);
    const { rows } = await pool.query(
      `SELECT version FROM ${schema}.oauth_mailbox_migrations ORDER BY version`,
    );
    expect(rows).toEqual(Array.from({ length: v }, (_, i) => ({ version: i + 1 })));
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
  });

  it('a connection lost during migrate() is a rejected ERR_STORAGE, not an uncaught exception in the host', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const poolErrors: unknown[] = [];
    pool.on('error', (err) => poolErrors.push(err)); // what a host sets; the lent client is the library's
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    const holder = new pg.Client({ connectionString: DATABASE_URL });
    await holder.connect();
    const schema = `om_${randomBytes(6).toString('hex')}`;
    try {
      // Hold migrate()'s advisory lock so that its transaction waits on it, then terminate its backend.
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
        `oauth-mailbox:${schema}.oauth_mailbox_`,
      ]);
      const migrating = postgresStore({ client: pool, schema }).migrate();
      const outcome = migrating.then(
        () => 'migrated',
        (err: unknown) => err,
      );
      for (;;) {
        const { rows } = await pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT pg_advisory_xact_lock%'`,
        );
        if (rows[0]) {
          await pool.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
          break;
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const err = await outcome;
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).retryable).toBe(true);
      // The pool still works (the broken client was destroyed, not lent again) and nothing escaped.
      await holder.query('ROLLBACK');
      expect(await postgresStore({ client: pool, schema }).migrate()).toBe(POSTGRES_SCHEMA_VERSION);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await holder.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await holder.end();
      await pool.end();
    }
  });

  it('reports a lost connection as StorageError, never as "not found"', async () => {
    const broken = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const store = postgresStore({ client: broken, schema: 'does_not_matter' });
    await broken.end();
    await expect(store.getAccount('a')).rejects.toBeInstanceOf(StorageError);
    await expect(store.takeState('k')).rejects.toBeInstanceOf(StorageError);
    await expect(store.listAccounts()).rejects.toBeInstanceOf(StorageError);
    await expect(store.putAccount(sampleAccountRecord(), { expectedVersion: null })).rejects.toBeInstanceOf(
      StorageError,
    );
    // The unsynced lease release, and the aggregate behind health().
    await expect(store.releaseLease('a', 'h')).rejects.toBeInstanceOf(StorageError);
    await expect(store.releaseLease('a', 'h')).rejects.toBeInstanceOf(StorageError);
    const now = Date.now();
    await expect(store.countAccounts({ now, expiringBefore: now, failedSince: 0 })).rejects.toBeInstanceOf(
      StorageError,
    );
  });
});

describe('postgresStore', () => {
  it('ships its schema as SQL for hosts that run their own migrations', () => {
    const [v1] = postgresMigrations({ schema: 'app', tablePrefix: 'om_' });
    expect(v1?.version).toBe(1);
    expect(v1?.statements.join('\n')).toContain('CREATE TABLE IF NOT EXISTS "app"."om_accounts"');
    expect(v1?.statements.join('\n')).toContain(
      'ON "app"."om_accounts" (token_expires_at) WHERE status = \'active\'',
    );
  });

  it('refuses unsafe identifiers and a missing client', () => {
    expect(() => postgresStore({ client: lite, schema: 'bad; drop table x' })).toThrow(/schema must match/);
    expect(() => postgresStore({ client: lite, tablePrefix: 'A-' })).toThrow(/tablePrefix must match/);
    expect(() => postgresStore({ client: {} as never })).toThrow(/client must be/);
  });

  it('a store that was never migrated is ERR_CONFIGURATION naming migrate(), not a transient failure', async () => {
    const store = postgresStore({ client: lite, schema: 'never_migrated' });
    for (const attempt of [
      store.getAccount('a'),
      store.putState(
        'k',
        { owner: 'o', provider: 'p', payload: '', createdAt: 1, expiresAt: 2 },
        { maxPerOwner: 5 },
      ),
    ]) {
      await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
      await expect(attempt).rejects.toMatchObject({
        code: 'ERR_CONFIGURATION',
        category: 'configuration',
        message: expect.stringContaining('call store.migrate()'),
      });
    }
  });

  it('sweeps expired states', async () => {
    const store = postgresStore({ client: lite, schema: 'sweep' });
    await store.migrate();
    const now = Date.now();
    for (let i = 0; i < 5; i++) {
      await store.putState(
        `k${i}`,
        { owner: `o${i}`, provider: 'p', payload: '', createdAt: now - 10, expiresAt: now - 1 },
        { maxPerOwner: 5 },
      );
    }
    await store.putState(
      'live',
      { owner: 'x', provider: 'p', payload: '', createdAt: now, expiresAt: now + 60_000 },
      { maxPerOwner: 5 },
    );
    // Each put already sweeps expired states in bounded batches.
    expect(await store.sweepStates()).toBe(0);
    expect(await store.takeState('live')).not.toBeNull();
  });
});
