/**
 * readAndLease on PostgreSQL reads the record AFTER taking the lease: a lease freed by another holder's
 * write-and-release comes with that write. (One statement would read from a snapshot taken before the write
 * committed, and the refresher would refresh again with a rotated-away refresh token: invalid_grant.)
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountRecordInput } from '../../src/index.js';
import { POSTGRES_SCHEMA_VERSION, postgresMigrations, postgresStore } from '../../src/postgres.js';
import { recording } from '../support/recording.js';
import { requireService } from '../support/services.js';

const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');

function record(id: string, tokenExpiresAt: number): AccountRecordInput {
  return {
    id,
    provider: 'google',
    owner: 'u1',
    email: `${id}@example.com`,
    scopes: [],
    status: 'active',
    tokenExpiresAt,
    createdAt: 1,
    lastRefreshedAt: 1,
    lastError: null,
    consecutiveFailures: 0,
    metadata: {},
    secret: 'v1.sealed',
  };
}

/** Migrate to `version` only (an older schema: version 2 has no read-and-lease function). */
async function migrateTo(pool: pg.Pool, schema: string, version: number): Promise<void> {
  await pool.query(`CREATE SCHEMA ${schema}`);
  await pool.query(
    `CREATE TABLE ${schema}.migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)`,
  );
  for (const migration of postgresMigrations({ schema, tablePrefix: '' })) {
    if (migration.version > version) break;
    for (const statement of migration.statements) await pool.query(statement);
    await pool.query(`INSERT INTO ${schema}.migrations VALUES ($1, 0)`, [migration.version]);
  }
}

describe.skipIf(!DATABASE_URL)('readAndLease against a concurrent write-and-release (DATABASE_URL)', () => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  const schemas: string[] = [];
  afterAll(async () => {
    for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
  });

  // Version 3 reads through the schema's function; version 2 (not migrated since) through two statements.
  for (const version of [POSTGRES_SCHEMA_VERSION, 2]) {
    it(`waits for the holder’s write to commit and returns the record it wrote, with the lease (schema version ${version})`, async () => {
      let now = 1_000_000;
      const schema = `om_${randomBytes(6).toString('hex')}`;
      schemas.push(schema);
      await migrateTo(pool, schema, version);
      const { client: recorded, texts } = recording(pool);
      const store = postgresStore({ client: recorded, schema, tablePrefix: '', now: () => now });
      expect(await store.migrate()).toBe(POSTGRES_SCHEMA_VERSION); // idempotent; it is what the test drops
      if (version < POSTGRES_SCHEMA_VERSION) {
        // migrate() upgraded it: take the function out again to exercise the fallback.
        await pool.query(`DROP FUNCTION ${schema}.read_and_lease`);
      }
      const stored = await store.putAccount(record('a1', now - 1), { expectedVersion: null });
      expect(await store.acquireLease('a1', 'holder-a', 60_000)).not.toBeNull();
      // Holder A was slow: its lease has lapsed when it finally writes (a live lease is skipped without waiting).
      now += 61_000;

      // Holder A writes the refreshed record and releases its lease in one transaction, left open.
      const a = await pool.connect();
      try {
        await a.query('BEGIN');
        await a.query(
          `UPDATE ${schema}.accounts SET token_expires_at = $2, version = version + 1 WHERE id = $1`,
          ['a1', now + 3_600_000],
        );
        await a.query(`DELETE FROM ${schema}.leases WHERE account_id = $1`, ['a1']);
        // B asks while A's transaction is open: it finds the lapsed lease, and blocks on its row until A commits.
        const b = store.readAndLease('a1', 'holder-b', 60_000, { dueBefore: now + 300_000 });
        // A condition, not a delay: poll the server until B's backend waits for A's lock.
        for (;;) {
          const { rows } = await pool.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
            [`%${schema}%lease%`],
          );
          if ((rows[0] as { n: number }).n > 0) break;
        }
        await a.query('COMMIT');
        const read = await b;
        // What A wrote, not the snapshot from before it: the token is no longer due.
        expect(read.record?.version).toBe(stored.version + 1);
        expect(read.record?.tokenExpiresAt).toBe(now + 3_600_000);
        expect(read.busy).toBe(false);
      } finally {
        a.release();
      }
      // Due again: B takes the lease, and a second holder finds it busy, in the same form.
      now += 3_600_000;
      const leased = await store.readAndLease('a1', 'holder-b', 60_000, { dueBefore: now + 300_000 });
      expect(leased.lease?.holder).toBe('holder-b');
      const busy = await store.readAndLease('a1', 'holder-c', 60_000, { dueBefore: now + 300_000 });
      expect(busy).toMatchObject({ lease: null, busy: true });
      const viaFunction = texts.filter((t) => t.includes('read_and_lease"($1::text[]')).length;
      // The function on version 3; on version 2, one refused try of it, then the statements only.
      expect(viaFunction).toBe(version === POSTGRES_SCHEMA_VERSION ? 3 : 1);
    });
  }
});

describe.skipIf(!DATABASE_URL)('readAndLease batches of a refresh storm (DATABASE_URL)', () => {
  const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: DATABASE_URL, max: 3 }));
  const schema = `om_${randomBytes(6).toString('hex')}`;
  const pool = pools[0] as pg.Pool;
  beforeAll(() => postgresStore({ client: pool, schema, tablePrefix: '' }).migrate());
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await Promise.all(pools.map((p) => p.end()));
  });

  /** The store on `client`, with the text of every query it sends. */
  function recorded(client: pg.Pool, now: () => number) {
    const { client: proxy, texts } = recording(client);
    return { store: postgresStore({ client: proxy, schema, tablePrefix: '', now }), texts };
  }

  it('sends the calls of one turn as one statement, each caller getting its own outcome', async () => {
    const now = 5_000_000;
    const { store, texts } = recorded(pool, () => now);
    await store.migrate();
    const ids = Array.from({ length: 30 }, (_, i) => `b${i}`);
    // Even ids are due, odd ones are not; one id is asked twice (it goes in a second statement), and one
    // does not exist.
    for (const [i, id] of ids.entries())
      await store.putAccount(record(id, i % 2 === 0 ? now - 1 : now + 3_600_000), { expectedVersion: null });
    texts.length = 0;
    const reads = await Promise.all([
      ...ids.map((id) => store.readAndLease(id, 'h1', 60_000, { dueBefore: now + 300_000 })),
      store.readAndLease('b0', 'h1', 60_000, { dueBefore: now + 300_000 }),
      store.readAndLease('missing', 'h1', 60_000, { dueBefore: now + 300_000 }),
    ]);
    expect(texts.filter((t) => t.includes('read_and_lease"('))).toHaveLength(2);
    for (const [i, read] of reads.slice(0, 30).entries()) {
      expect(read.record?.id).toBe(`b${i}`);
      expect(read.lease).toEqual(i % 2 === 0 ? { holder: 'h1', expiresAt: now + 60_000 } : null);
      expect(read.busy).toBe(false);
    }
    // The second call for b0, after the first: the same holder renews its lease.
    expect(reads[30]?.lease?.holder).toBe('h1');
    expect(reads[31]).toEqual({ record: null, lease: null, busy: false });
    // Another holder's batch in the same turn finds the due ones busy.
    const other = await Promise.all(
      ids.slice(0, 4).map((id) => store.readAndLease(id, 'h2', 60_000, { dueBefore: now + 300_000 })),
    );
    expect(other.map((r) => [r.lease, r.busy])).toEqual([
      [null, true],
      [null, false],
      [null, true],
      [null, false],
    ]);
  });

  it('a failed statement fails each of its callers with ERR_STORAGE, and later calls go through', async () => {
    const now = 6_000_000;
    const client = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const store = postgresStore({ client, schema, tablePrefix: '', now: () => now });
    await store.putAccount(record('f1', now - 1), { expectedVersion: null });
    // Another session holds f1's lease row locked: the batch's statement blocks on it, and its connection is
    // terminated, from the server, while the statement waits (so the failure is that statement's).
    const blocker = await pool.connect();
    const errors: unknown[] = [];
    client.on('error', (err) => errors.push(err));
    try {
      await blocker.query('BEGIN');
      await blocker.query(
        `INSERT INTO "${schema}".leases (account_id, holder, expires_at) VALUES ('f1', 'h0', 0)`,
      );
      const settled = Promise.allSettled(
        ['f1', 'f1x'].map((id) => store.readAndLease(id, 'h1', 60_000, { dueBefore: now + 300_000 })),
      );
      let pid: number | undefined;
      while (pid === undefined) {
        const { rows } = await pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%read_and_lease%'`,
        );
        pid = rows[0]?.pid;
        if (pid === undefined) await new Promise((r) => setImmediate(r));
      }
      await pool.query('SELECT pg_terminate_backend($1)', [pid]);
      const outcomes = await settled;
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason.code).toBe('ERR_STORAGE');
      }
      await blocker.query('ROLLBACK');
      const read = await store.readAndLease('f1', 'h1', 60_000, { dueBefore: now + 300_000 });
      expect(read.lease?.holder).toBe('h1');
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      blocker.release();
      await client.end();
    }
  });

  it('batches of several processes over the same accounts in any order: one lease each, no deadlock', async () => {
    const now = 7_000_000;
    const ids = Array.from({ length: 200 }, (_, i) => `s${String(i).padStart(3, '0')}`);
    const seed = recorded(pool, () => now).store;
    for (const id of ids) await seed.putAccount(record(id, now - 1), { expectedVersion: null });
    const stores = pools.map((p) => postgresStore({ client: p, schema, tablePrefix: '', now: () => now }));
    for (let round = 0; round < 3; round++) {
      // Each store asks for every account, in its own order (reversed, shuffled), in one turn.
      const results = await Promise.all(
        stores.map((store, k) => {
          const order = k % 2 === 0 ? [...ids] : [...ids].reverse();
          if (k >= 2) order.sort(() => (randomBytes(1)[0] as number) - 128);
          return Promise.all(
            order.map((id) =>
              store
                .readAndLease(id, `holder-${round}-${k}`, 60_000, { dueBefore: now + 300_000 })
                .then((read) => ({ id, read })),
            ),
          );
        }),
      );
      for (const id of ids) {
        const leases = results.flat().filter((r) => r.id === id && r.read.lease !== null);
        expect(leases).toHaveLength(1);
        expect(
          results.flat().filter((r) => r.id === id && r.read.lease === null && r.read.busy),
        ).toHaveLength(stores.length - 1);
      }
      await pool.query(`DELETE FROM ${schema}.leases`);
    }
  });
});
