import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type AccountRecord, storeInput } from '../../src/index.js';
import { REDIS_SCHEMA_VERSION, type RedisClient, redisStore } from '../../src/redis.js';
import { sampleAccountRecord } from '../../src/testing/index.js';
import { requireService } from '../support/services.js';

const REDIS_URL = requireService('REDIS_URL', 'Redis');
const NOW = 1_900_000_000_000;

describe.skipIf(!REDIS_URL)('Redis indexes (REDIS_URL)', () => {
  const client = new Redis(REDIS_URL as string, { maxRetriesPerRequest: 1 });
  const prefixes: string[] = [];
  const fresh = () => {
    const prefix = `om-test:${randomBytes(6).toString('hex')}:`;
    prefixes.push(prefix);
    return prefix;
  };
  afterEach(async () => {
    for (const prefix of prefixes.splice(0)) {
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(...keys);
    }
  });
  afterAll(() => client.quit());

  /** The client, counting the records read (HGET of an account's JSON, alone or in a pipeline). */
  function counting(): { client: RedisClient; reads: () => number } {
    let reads = 0;
    const wrapped = new Proxy(client, {
      get(target, name, receiver) {
        if (name === 'hget')
          return (...args: Parameters<Redis['hget']>) => {
            reads++;
            return target.hget(...args);
          };
        if (name === 'pipeline')
          return () => {
            const pipeline = target.pipeline();
            return new Proxy(pipeline, {
              get(p, key) {
                const value = Reflect.get(p, key, p);
                if (key !== 'hget') return typeof value === 'function' ? value.bind(p) : value;
                return (...args: Parameters<Redis['hget']>) => {
                  reads++;
                  return pipeline.hget(...args);
                };
              },
            });
          };
        const value = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as RedisClient;
    return { client: wrapped, reads: () => reads };
  }

  /** Write `count` accounts through a pipeline of stores' scripts (putAccount, 50 at a time). */
  async function seed(
    store: ReturnType<typeof redisStore>,
    count: number,
    expiresAt: (i: number) => number | null,
  ): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, count - i) }, (_, k) =>
          store.putAccount(sampleAccountRecord({ tokenExpiresAt: expiresAt(i + k) }), {
            expectedVersion: null,
          }),
        ),
      );
      ids.push(...batch.map((r) => r.id));
    }
    return ids;
  }

  async function walkDue(store: ReturnType<typeof redisStore>, limit: number): Promise<string[]> {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await store.listAccounts({ status: 'active', expiresBefore: NOW }, { cursor, limit });
      seen.push(...page.records.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    return seen;
  }

  it('an expiry walk reads only the due records (none when nothing is due)', async () => {
    const prefix = fresh();
    const ids = await seed(redisStore({ client, prefix }), 1000, (i) =>
      i % 400 === 7 ? NOW - 1 : NOW + 3_600_000,
    );
    const { client: spy, reads } = counting();
    const store = redisStore({ client: spy, prefix });
    expect(await walkDue(store, 100)).toEqual(ids.filter((_, i) => i % 400 === 7).sort());
    expect(reads()).toBe(3);
    const nothing = await store.listAccounts({ status: 'active', expiresBefore: NOW - 10 });
    expect(nothing).toEqual({ records: [], nextCursor: null });
    expect(reads()).toBe(3);
  });

  it('walks thousands of due accounts (beyond the by-score bound) exactly once, in id order', async () => {
    const prefix = fresh();
    const ids = await seed(redisStore({ client, prefix }), 2600, (i) => (i % 13 === 0 ? NOW + 1 : NOW - i));
    const due = ids.filter((_, i) => i % 13 !== 0).sort();
    expect(due.length).toBeGreaterThan(2000);
    const { client: spy, reads } = counting();
    const store = redisStore({ client: spy, prefix });
    expect(await walkDue(store, 500)).toEqual(due);
    // Each page peeks at one record past its end, to know whether another page follows.
    expect(reads()).toBeLessThanOrEqual(due.length + Math.ceil(due.length / 500));
  });

  it('indexes a version-1 store in place before its first indexed read; migrate() is idempotent', async () => {
    const prefix = fresh();
    const writer = redisStore({ client, prefix });
    await seed(writer, 30, (i) => (i % 3 === 0 ? NOW - 1 : i % 3 === 1 ? NOW + 1000 : null));
    const records = (await writer.listAccounts({}, { limit: 1000 })).records as AccountRecord[];
    const failing = records[4] as AccountRecord;
    await writer.putAccount(
      {
        ...failing,
        status: 'error',
        consecutiveFailures: 2,
        lastError: { code: 'ERR_TOKEN_REFRESH', message: 'failed', at: NOW - 5 },
      },
      { expectedVersion: failing.version },
    );
    const query = { now: NOW, expiringBefore: NOW + 600_000, failedSince: NOW - 86_400_000 };
    const expected = storeInput.tallyAccounts(
      (await writer.listAccounts({}, { limit: 1000 })).records,
      query,
    );
    // What a version-1 store left: the records and the id set, no index, no schema version.
    const indexKeys = [
      'schema',
      'status:active',
      'status:reauth_required',
      'status:error',
      'status:revoked',
      'expiry',
      'errors',
      'failing',
    ].map((k) => `${prefix}${k}`);
    await client.del(...indexKeys);
    const upgraded = redisStore({ client, prefix });
    expect(await upgraded.countAccounts(query)).toEqual(expected);
    expect(await client.get(`${prefix}schema`)).toBe(String(REDIS_SCHEMA_VERSION));
    const due = (await upgraded.listAccounts({ status: 'active', expiresBefore: NOW }, { limit: 1000 }))
      .records;
    expect(due.map((r) => r.id)).toEqual(
      records.filter((r, i) => i !== 4 && r.tokenExpiresAt === NOW - 1).map((r) => r.id),
    );
    expect(await upgraded.migrate()).toBe(REDIS_SCHEMA_VERSION);
    expect(await upgraded.countAccounts(query)).toEqual(expected);
  });

  it('a failed layout check is a StorageError and is tried again on the next read', async () => {
    const prefix = fresh();
    await seed(redisStore({ client, prefix }), 3, () => NOW - 1);
    await client.del(`${prefix}schema`);
    let failGet = true;
    const flaky = new Proxy(client, {
      get(target, name) {
        if (name === 'get' && failGet)
          return () => {
            failGet = false;
            return Promise.reject(new Error('connection reset'));
          };
        const value = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as RedisClient;
    const store = redisStore({ client: flaky, prefix });
    const query = { now: NOW, expiringBefore: NOW + 1, failedSince: 0 };
    await expect(store.countAccounts(query)).rejects.toMatchObject({ code: 'ERR_STORAGE' });
    expect(await store.countAccounts(query)).toMatchObject({ total: 3, activeExpired: 3 });
  });

  it('an empty store starts at the current layout (nothing to index)', async () => {
    const prefix = fresh();
    const store = redisStore({ client, prefix });
    await store.putAccount(sampleAccountRecord(), { expectedVersion: null });
    expect(await client.get(`${prefix}schema`)).toBe(String(REDIS_SCHEMA_VERSION));
  });
});
