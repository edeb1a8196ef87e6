/**
 * A lease release does not wait for the disk on PostgreSQL (its own transaction commits with
 * synchronous_commit off); PGlite, which takes one statement per query, gets the plain DELETE.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/postgres.js';
import { recording } from '../support/recording.js';
import { requireService } from '../support/services.js';

async function releaseTwice(store: ReturnType<typeof postgresStore>) {
  await store.migrate();
  expect(await store.acquireLease('acc-1', 'h1', 60_000)).not.toBeNull();
  expect(await store.releaseLease('acc-1', 'h1')).toBe(true);
  expect(await store.releaseLease('acc-1', 'h1')).toBe(false);
  expect(await store.acquireLease('acc-1', 'h2', 60_000)).not.toBeNull(); // released for real
}

const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');
describe.skipIf(!DATABASE_URL)('lease release on PostgreSQL (DATABASE_URL)', () => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const schema = `om_${randomBytes(6).toString('hex')}`;
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
  });

  it('commits without waiting for the disk, in one query', async () => {
    const { client, texts } = recording(pool);
    await releaseTwice(postgresStore({ client, schema }));
    const releases = texts.filter(
      (t) => t.includes('DELETE FROM') && t.includes('leases') && !t.startsWith('CREATE'),
    );
    expect(releases).toHaveLength(2);
    // The release and its notification: one simple query, unsynced.
    for (const text of releases) {
      expect(text).toMatch(/^SET LOCAL synchronous_commit TO OFF; WITH d AS \(DELETE FROM/);
      expect(text).toContain('pg_notify(');
    }
  });
});

describe('lease release on PGlite', () => {
  const lite = new PGlite();
  afterAll(() => lite.close());
  it('falls back to the parameterized DELETE once, then keeps to it', async () => {
    const { client, texts } = recording(lite);
    await releaseTwice(postgresStore({ client, schema: 'lite' }));
    const releases = texts.filter(
      (t) => t.includes('DELETE FROM') && t.includes('leases') && !t.startsWith('CREATE'),
    );
    // The first release tries the two-statement query, is refused, and uses the DELETE; the second goes
    // straight to the DELETE.
    expect(releases.map((t) => t.startsWith('SET LOCAL'))).toEqual([true, false, false]);
  });
});
