/**
 * readAndLease on PostgreSQL reads the record AFTER taking the lease: a lease freed by another holder's
 * write-and-release comes with that write. (One statement would read from a snapshot taken before the write
 * committed, and the refresher would refresh again with a rotated-away refresh token: invalid_grant.)
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { AccountRecordInput } from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';
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

describe.skipIf(!DATABASE_URL)('readAndLease against a concurrent write-and-release (DATABASE_URL)', () => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  const schema = `om_${randomBytes(6).toString('hex')}`;
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
  });

  it('waits for the holder’s write to commit and returns the record it wrote, with the lease', async () => {
    let now = 1_000_000;
    const store = postgresStore({ client: pool, schema, tablePrefix: '', now: () => now });
    await store.migrate();
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
          [`%${schema}%leases%`],
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
  });
});
