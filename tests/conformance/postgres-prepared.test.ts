/**
 * Prepared statements on node-postgres: the store's parameterized statements are named (parsed and planned
 * once per connection), a plan PostgreSQL refuses to reuse after a table changed and a statement a pooler
 * dropped are recovered from, `preparedStatements: false` sends none, and PGlite is never sent one. The
 * whole contract runs prepared on PostgreSQL and unprepared on PGlite in `postgres.test.ts`.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { aesGcmCipher, ConfigurationError, TokenPersistence } from '../../src/index.js';
import { type PostgresStore, postgresStore } from '../../src/postgres.js';
import { requireService } from '../support/services.js';

const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');

describe.skipIf(!DATABASE_URL)('PostgreSQL prepared statements (DATABASE_URL)', () => {
  const open: { client: pg.Client; schema: string }[] = [];
  afterEach(async () => {
    for (const { client, schema } of open.splice(0)) {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  });

  /** A store on one connection (so that its prepared statements are the connection's), with one account. */
  async function setup(options: { preparedStatements?: boolean } = {}) {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    const schema = `om_prep_${randomBytes(5).toString('hex')}`;
    open.push({ client, schema });
    const store = postgresStore({ client, schema, ...options });
    await store.migrate();
    const persistence = new TokenPersistence({
      store,
      cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
    });
    const { account } = await persistence.connect({
      provider: 'local',
      owner: 'o',
      email: 'ada@example.com',
      tokens: { accessToken: 'at', refreshToken: 'rt', expiresAt: Date.now() + 3_600_000 },
    });
    const prepared = async () =>
      (
        await client.query<{ name: string }>(
          `SELECT name FROM pg_prepared_statements WHERE name LIKE 'om\\_%' ORDER BY name`,
        )
      ).rows.map((r) => r.name);
    return { client, schema, store: store as PostgresStore, persistence, id: account.id, prepared };
  }

  it('names the statements it sends: prepared once on the connection, then reused', async () => {
    const { store, id, prepared } = await setup();
    expect(await prepared()).not.toEqual([]); // connect() wrote and read through named statements
    await store.getAccount(id);
    const after = await prepared();
    for (let i = 0; i < 5; i++) expect((await store.getAccount(id))?.id).toBe(id);
    expect(await prepared()).toEqual(after); // the same statements, not one per call
    const page = await store.listAccounts({}, { limit: 10 });
    expect(page.records.map((a) => a.id)).toEqual([id]);
    expect((await prepared()).length).toBeGreaterThan(after.length);
  });

  it('preparedStatements: false sends every statement unnamed', async () => {
    const { store, id, prepared } = await setup({ preparedStatements: false });
    await store.getAccount(id);
    await store.listAccounts({}, { limit: 10 });
    expect(await prepared()).toEqual([]);
  });

  it('a plan PostgreSQL refuses after the table changed (0A000) is sent again, and prepared anew', async () => {
    const { client, schema, store, id, prepared } = await setup();
    expect((await store.getAccount(id))?.email).toBe('ada@example.com');
    const before = await prepared();
    // As a later migration might: the result type of the prepared SELECT changes under it.
    await client.query(
      `ALTER TABLE "${schema}"."oauth_mailbox_accounts" ALTER COLUMN email TYPE varchar(320)`,
    );
    expect((await store.getAccount(id))?.email).toBe('ada@example.com');
    expect((await store.getAccount(id))?.email).toBe('ada@example.com');
    const after = await prepared();
    expect(after.some((name) => !before.includes(name))).toBe(true); // a new generation of names
  });

  it('a statement a pooler dropped (26000: DEALLOCATE ALL, DISCARD ALL) is sent again, and nothing is prepared after', async () => {
    const { client, store, persistence, id, prepared } = await setup();
    await store.getAccount(id);
    await client.query('DEALLOCATE ALL');
    expect((await store.getAccount(id))?.id).toBe(id);
    // From then on every statement goes unnamed (a pooler would drop them again): writes too, none lost.
    await persistence.saveTokens(id, { accessToken: 'at2', expiresAt: Date.now() + 3_600_000 });
    expect((await persistence.load(id)).tokens?.accessToken).toBe('at2');
    expect((await store.getAccount(id))?.version).toBe(2);
    expect(await prepared()).toEqual([]);
  });

  it('a write whose prepared statement was dropped is written once', async () => {
    const { client, persistence, store, id } = await setup();
    await persistence.saveTokens(id, { accessToken: 'at2', expiresAt: Date.now() + 3_600_000 });
    await client.query('DEALLOCATE ALL');
    await persistence.saveTokens(id, { accessToken: 'at3', expiresAt: Date.now() + 3_600_000 });
    expect((await persistence.load(id)).tokens?.accessToken).toBe('at3');
    expect((await store.getAccount(id))?.version).toBe(3);
  });

  it('prepares at most 256 statements on a connection; past that they go unnamed, and still work', async () => {
    const { store, id, prepared } = await setup();
    // Listings of many shapes (metadata key counts × status lists × owner, provider and expiry filters or
    // not): far more than 256 distinct statements.
    const statuses = ['active', 'reauth_required', 'error', 'revoked'] as const;
    for (let keys = 1; keys <= 16; keys++) {
      const metadata = Object.fromEntries(Array.from({ length: keys }, (_, k) => [`k${k}`, 'v']));
      for (let mask = 1; mask < 16; mask++) {
        const status = statuses.filter((_, b) => (mask >> b) & 1);
        for (let extra = 0; extra < 4; extra++) {
          const page = await store.listAccounts({
            metadata,
            status: [...status],
            ...(extra & 1 ? { owner: 'o' } : {}),
            ...(extra & 2 ? { provider: 'local', expiresBefore: Date.now() } : {}),
          });
          expect(page.records).toEqual([]); // the account has no metadata
        }
      }
    }
    expect((await prepared()).length).toBe(256);
    expect((await store.listAccounts({ status: 'active' })).records.map((a) => a.id)).toEqual([id]);
  });

  it('an error of the statement itself is not retried', async () => {
    const { client, schema, store, id } = await setup();
    await client.query(`ALTER TABLE "${schema}"."oauth_mailbox_accounts" RENAME TO gone`);
    await expect(store.getAccount(id)).rejects.toMatchObject({ code: 'ERR_CONFIGURATION' });
    await client.query(`ALTER TABLE "${schema}".gone RENAME TO oauth_mailbox_accounts`);
  });
});

describe('postgresStore({ preparedStatements })', () => {
  it('is off for PGlite, and asking for it there is a ConfigurationError', async () => {
    const lite = new PGlite();
    try {
      expect(() => postgresStore({ client: lite, preparedStatements: true })).toThrow(ConfigurationError);
      expect(() => postgresStore({ client: lite, preparedStatements: true })).toThrow(
        'postgresStore: preparedStatements needs a node-postgres (pg) Pool or Client',
      );
      expect(() => postgresStore({ client: lite, preparedStatements: 'yes' as never })).toThrow(
        'postgresStore: preparedStatements must be a boolean',
      );
      const store = postgresStore({ client: lite });
      await store.migrate();
      expect((await store.listAccounts({}, { limit: 1 })).records).toEqual([]);
    } finally {
      await lite.close();
    }
  });
});
