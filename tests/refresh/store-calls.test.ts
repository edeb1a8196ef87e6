/**
 * Store round trips per refresh: one call reads the account and takes its lease when the token is due, one
 * writes the refreshed tokens with the lease's release. A store without the optional calls still works.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import Redis from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { type AccountStore, memoryStore } from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';
import { redisStore } from '../../src/redis.js';
import { mswServer } from '../support/flow.js';
import { expiredAccount } from '../support/refresh.js';
import { requireService } from '../support/services.js';

const server = mswServer();
const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');
const REDIS_URL = requireService('REDIS_URL', 'Redis');

/** The store, recording the name of every contract method called on it. */
function counting(store: AccountStore, hide: readonly string[] = []) {
  const calls: string[] = [];
  const wrapped = new Proxy(store, {
    get(target, name) {
      if (typeof name === 'string' && hide.includes(name)) return undefined;
      const value = Reflect.get(target, name, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        // The change feed's subscription is opened once per refresher, not per refresh.
        if (typeof name === 'string' && name !== 'watchAccounts') calls.push(name);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as AccountStore;
  return { wrapped, calls };
}

async function oneRefresh(store: AccountStore, hide: readonly string[] = []) {
  const { wrapped, calls } = counting(store, hide);
  const { refresher, id, fake } = await expiredAccount(server, { store: wrapped });
  calls.length = 0;
  const r = refresher();
  await r.getAccessToken(id);
  const refresh = [...calls];
  // A second process (cold cache) reading the now valid token: one call, no lease.
  calls.length = 0;
  const second = refresher();
  await second.getAccessToken(id);
  const coldRead = [...calls];
  for (const each of [r, second]) {
    each.close(); // frees the change feed's listening connection
    await each.settled();
  }
  expect(fake.stats.refreshes).toBe(1);
  return { refresh, coldRead };
}

const engines: [string, () => Promise<{ store: AccountStore; done: () => Promise<void> }>, boolean][] = [
  ['memory', async () => ({ store: memoryStore(), done: async () => {} }), true],
  [
    'PGlite',
    async () => {
      const db = new PGlite();
      const store = postgresStore({ client: db as never, schema: 'calls' });
      await store.migrate();
      return { store, done: () => db.close() };
    },
    true,
  ],
  [
    'PostgreSQL',
    async () => {
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 }); // two refreshers: a listening connection each;
      const schema = `om_${randomBytes(6).toString('hex')}`;
      const store = postgresStore({ client: pool, schema });
      await store.migrate();
      return {
        store,
        done: async () => {
          await pool.query(`DROP SCHEMA ${schema} CASCADE`);
          await pool.end();
        },
      };
    },
    DATABASE_URL !== undefined,
  ],
  [
    'Redis',
    async () => {
      const client = new Redis(REDIS_URL as string);
      const prefix = `om-calls:${randomBytes(4).toString('hex')}:`;
      return {
        store: redisStore({ client, prefix }),
        done: async () => {
          const keys = await client.keys(`${prefix}*`);
          if (keys.length > 0) await client.del(...keys);
          await client.quit();
        },
      };
    },
    REDIS_URL !== undefined,
  ],
];

describe('store calls per refresh', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const done of cleanups) await done();
  });

  for (const [name, open, available] of engines) {
    it.skipIf(!available)(
      `${name}: 2 calls to refresh (read and lease, write and release), 1 to read a valid token`,
      async () => {
        const { store, done } = await open();
        cleanups.push(done);
        const { refresh, coldRead } = await oneRefresh(store);
        expect(refresh).toEqual(['readAndLease', 'putAccountAndRelease']);
        expect(coldRead).toEqual(['readAndLease']);
      },
    );
  }

  it('a store without the optional calls: read, lease, read again under the lease, write, release', async () => {
    const { refresh, coldRead } = await oneRefresh(memoryStore(), [
      'readAndLease',
      'putAccountAndRelease',
      'watchAccounts',
    ]);
    expect(refresh).toEqual(['getAccount', 'acquireLease', 'getAccount', 'putAccount', 'releaseLease']);
    expect(coldRead).toEqual(['getAccount']);
  });
});
