/**
 * The queries that walk accounts are served by indexes, not a scan and sort of the whole table: at 20,000
 * rows, the plan of each query the store really sends (captured from the store, explained on the same
 * database) reads an index and no sequential scan of the accounts table. `connect()`'s identity lookup uses
 * its unique index without fresh statistics. On PGlite always, on PostgreSQL with DATABASE_URL.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  POSTGRES_SCHEMA_VERSION,
  postgresMigrations,
  postgresStore,
  type Queryable,
} from '../../src/postgres.js';
import { requireService } from '../support/services.js';

const ROWS = 20_000;

interface Db {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** A client that records what the store sends, then forwards it. */
function recording(db: Db) {
  const sent: { text: string; params: unknown[] }[] = [];
  const client: Queryable = {
    query: (text, params = []) => {
      sent.push({ text, params });
      return db.query(text, params) as ReturnType<Queryable['query']>;
    },
  };
  return { client, sent };
}

/** The plan of a statement, as the text of every node (`Index Scan using …`, `Seq Scan on …`). */
async function plan(db: Db, text: string, params: unknown[]): Promise<string[]> {
  const { rows } = await db.query(`EXPLAIN (FORMAT JSON) ${text}`, params);
  const root = (rows[0] as Record<string, unknown>)['QUERY PLAN'];
  const json = (typeof root === 'string' ? JSON.parse(root) : root) as { Plan: Node }[];
  interface Node {
    'Node Type': string;
    'Relation Name'?: string;
    'Index Name'?: string;
    Plans?: Node[];
  }
  const out: string[] = [];
  const walk = (node: Node) => {
    out.push(
      `${node['Node Type']}${node['Index Name'] ? ` using ${node['Index Name']}` : ''}${node['Relation Name'] ? ` on ${node['Relation Name']}` : ''}`,
    );
    for (const child of node.Plans ?? []) walk(child);
  };
  walk((json[0] as { Plan: Node }).Plan);
  return out;
}

function servedByIndex(nodes: string[]): void {
  expect(nodes.filter((n) => n.startsWith('Seq Scan') && n.endsWith('oauth_mailbox_accounts'))).toEqual([]);
  expect(nodes.some((n) => / using oauth_mailbox_accounts_/.test(n))).toBe(true);
}

async function fill(db: Db, schema: string, analyze: boolean): Promise<void> {
  const now = Date.now();
  await db.query(
    `INSERT INTO "${schema}".oauth_mailbox_accounts (id, provider, owner, email, email_key, scopes, status, token_expires_at, version, created_at, updated_at, last_refreshed_at, last_error, consecutive_failures, metadata, secret)
     SELECT md5(i::text), CASE WHEN i % 3 = 0 THEN 'microsoft' ELSE 'google' END, 'owner-' || (i % 500), 'u' || i || '@example.com', 'u' || i || '@example.com',
            '[]'::jsonb, CASE WHEN i % 50 = 0 THEN 'reauth_required' ELSE 'active' END, $1::bigint + (i % 2880) * 60000, 1, $1::bigint, $1::bigint, NULL, NULL, 0, '{}'::jsonb, 'x'
     FROM generate_series(1, ${ROWS}) AS i`,
    [now],
  );
  if (analyze) await db.query(`ANALYZE "${schema}".oauth_mailbox_accounts`);
}

function suite(name: string, open: () => Promise<{ db: Db; close: () => Promise<void> }>) {
  describe(`${name}: account walks at ${ROWS.toLocaleString('en')} rows`, () => {
    it('pages (first and next), the expiry walk and a filtered page read an index, never the whole table', async () => {
      const { db, close } = await open();
      const schema = `plans_${randomBytes(4).toString('hex')}`;
      try {
        const { client, sent } = recording(db);
        const store = postgresStore({ client, schema });
        expect(await store.migrate()).toBe(POSTGRES_SCHEMA_VERSION);
        await fill(db, schema, true);
        const checked: string[] = [];
        const check = async (what: string, run: () => Promise<unknown>) => {
          sent.length = 0;
          await run();
          const statement = sent.find((s) => s.text.includes('FROM "') && s.text.includes('_accounts'));
          expect(statement, what).toBeDefined();
          servedByIndex(await plan(db, statement?.text as string, statement?.params as unknown[]));
          checked.push(what);
        };
        const first = await store.listAccounts({}, { limit: 100 });
        expect(first.records).toHaveLength(100);
        await check('first page', () => store.listAccounts({}, { limit: 100 }));
        await check('next page', () => store.listAccounts({}, { limit: 100, cursor: first.nextCursor }));
        // What refreshExpiring asks for: active accounts whose token expires within the hour.
        const expiry = { status: 'active' as const, expiresBefore: Date.now() + 3_600_000 };
        await check('expiry walk', () => store.listAccounts(expiry, { limit: 100 }));
        await check('expiry walk, next page', async () => {
          const page = await store.listAccounts(expiry, { limit: 20 });
          sent.length = 0;
          await store.listAccounts(expiry, { limit: 20, cursor: page.nextCursor });
        });
        await check('by status', () => store.listAccounts({ status: 'reauth_required' }, { limit: 100 }));
        expect(checked).toHaveLength(5);
      } finally {
        await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await close();
      }
    });

    it("connect()'s identity lookup uses its unique index before any ANALYZE", async () => {
      const { db, close } = await open();
      const schema = `plans_${randomBytes(4).toString('hex')}`;
      try {
        const { client, sent } = recording(db);
        const store = postgresStore({ client, schema });
        await store.migrate();
        await fill(db, schema, false);
        sent.length = 0;
        const found = await store.findAccountByIdentity({
          provider: 'google',
          owner: 'owner-1',
          email: 'u1@example.com',
        });
        expect(found?.email).toBe('u1@example.com');
        const statement = sent.find((s) => s.text.includes('_accounts'));
        servedByIndex(await plan(db, statement?.text as string, statement?.params as unknown[]));
      } finally {
        await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await close();
      }
    });
  });
}

suite('PGlite', async () => {
  const lite = new PGlite();
  return { db: lite, close: () => lite.close() };
});

const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');
describe.skipIf(!DATABASE_URL)('PostgreSQL (DATABASE_URL)', () => {
  const pool = DATABASE_URL ? new pg.Pool({ connectionString: DATABASE_URL, max: 2 }) : undefined;
  afterAll(() => pool?.end());
  suite('PostgreSQL', async () => ({ db: pool as pg.Pool, close: async () => {} }));
});

describe('postgresMigrations', () => {
  it('version 2 adds the page and expiry indexes, and a v1 database upgrades in place', async () => {
    const [, v2] = postgresMigrations({ schema: 'app', tablePrefix: 'om_' });
    expect(v2?.version).toBe(2);
    expect(v2?.statements.join('\n')).toContain('ON "app"."om_accounts" (id COLLATE "C")');
    const lite = new PGlite();
    try {
      const [v1] = postgresMigrations({ schema: 'up', tablePrefix: 'oauth_mailbox_' });
      await lite.query('CREATE SCHEMA up');
      for (const statement of v1?.statements ?? []) await lite.query(statement);
      await lite.query(
        'CREATE TABLE up.oauth_mailbox_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)',
      );
      await lite.query('INSERT INTO up.oauth_mailbox_migrations VALUES (1, 0)');
      expect(await postgresStore({ client: lite, schema: 'up' }).migrate()).toBe(POSTGRES_SCHEMA_VERSION);
      const { rows } = await lite.query<{ indexname: string }>(
        `SELECT indexname FROM pg_indexes WHERE schemaname = 'up' ORDER BY indexname`,
      );
      expect(rows.map((r) => r.indexname)).toEqual(
        expect.arrayContaining(['oauth_mailbox_accounts_id_c', 'oauth_mailbox_accounts_status_expiry']),
      );
    } finally {
      await lite.close();
    }
  });
});
