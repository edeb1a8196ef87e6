// The Redis store on every driver major it supports: node-redis (the `redis` devDependency, RESP3 as its
// default and RESP2) here, and, from REDIS_MAJORS_DIR (a node_modules directory that .ci/run fills with
// ioredis 6 and redis 5), the other majors. tests/conformance/redis.test.ts runs ioredis 5.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import Redis from 'ioredis';
import { createClient, RESP_TYPES } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigurationError, StorageError } from '../../src/index.js';
import { nodeRedisClient, type RedisClient, redisStore } from '../../src/redis.js';
import { describeStoreConformance, sampleAccountRecord } from '../../src/testing/index.js';
import { requireService } from '../support/services.js';

const REDIS_URL = requireService('REDIS_URL', 'Redis');
const MAJORS_DIR = requireService('REDIS_MAJORS_DIR', 'Redis on ioredis 6 and node-redis 5');

interface Driver {
  /** The driver's version, read from its package.json. */
  readonly version: string;
  /** A connected client. */
  connect(): Promise<{ client: RedisClient; close(): Promise<unknown> }>;
  /** A client that is not connected (and will not connect). */
  offline(): { client: RedisClient; close(): void };
}

type CreateClient = typeof createClient;

function nodeRedis(create: CreateClient, version: string, RESP: 2 | 3): Driver {
  return {
    version: `${version}, RESP${RESP}`,
    async connect() {
      const redis = await create({ url: REDIS_URL as string, RESP }).connect();
      return { client: nodeRedisClient(redis), close: () => redis.close() };
    },
    offline: () => ({ client: nodeRedisClient(create({ url: REDIS_URL as string, RESP })), close() {} }),
  };
}

function ioredis(Client: typeof Redis, version: string): Driver {
  return {
    version,
    async connect() {
      const redis = new Client(REDIS_URL as string, { maxRetriesPerRequest: 1 });
      return { client: redis, close: () => redis.quit() };
    },
    offline() {
      const redis = new Client(REDIS_URL as string, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
      });
      return { client: redis, close: () => redis.disconnect() };
    },
  };
}

const drivers: Record<string, Driver> = {};
const require = createRequire(import.meta.url);
const ownRedis = (require('redis/package.json') as { version: string }).version;
drivers[`node-redis ${ownRedis}`] = nodeRedis(createClient, ownRedis, 3);
drivers[`node-redis ${ownRedis} RESP2`] = nodeRedis(createClient, ownRedis, 2);
drivers[`node-redis ${ownRedis}, Buffer replies`] = {
  version: ownRedis,
  async connect() {
    const redis = await createClient({ url: REDIS_URL as string }).connect();
    const buffers = redis.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    return { client: nodeRedisClient(buffers), close: () => redis.close() };
  },
  offline: () => ({ client: nodeRedisClient(createClient({ url: REDIS_URL as string })), close() {} }),
};
if (MAJORS_DIR) {
  // Loaded from the directory, not from this project's node_modules (which holds ioredis 5 and redis 6).
  const fromDir = createRequire(join(MAJORS_DIR, 'package.json'));
  const version = (name: string) => (fromDir(`${name}/package.json`) as { version: string }).version;
  const io = fromDir('ioredis') as { default?: typeof Redis } & typeof Redis;
  const nr = fromDir('redis') as { createClient: CreateClient };
  if (!version('ioredis').startsWith('6.') || !version('redis').startsWith('5.')) {
    throw new Error(
      `REDIS_MAJORS_DIR must hold ioredis 6 and redis 5 (found ioredis ${version('ioredis')}, redis ${version('redis')})`,
    );
  }
  drivers[`ioredis ${version('ioredis')}`] = ioredis(io.default ?? io, version('ioredis'));
  drivers[`node-redis ${version('redis')}`] = nodeRedis(nr.createClient, version('redis'), 2);
}

describe.skipIf(!REDIS_URL)('Redis store on each driver (REDIS_URL)', () => {
  // Keys are listed and dropped through one ioredis 5 client, whatever the driver under test.
  const admin = new Redis(REDIS_URL as string, { maxRetriesPerRequest: 1 });
  const closing: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const close of closing) await close();
    await admin.quit();
  });
  const drop = async (prefix: string) => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
  };

  for (const [name, driver] of Object.entries(drivers)) {
    describe(name, () => {
      let connected: Promise<RedisClient> | undefined;
      const client = () => {
        connected ??= driver.connect().then(({ client, close }) => {
          closing.push(close);
          return client;
        });
        return connected;
      };

      describeStoreConformance(
        `Redis (${name})`,
        async () => {
          const prefix = `om-test:${randomBytes(6).toString('hex')}:`;
          let other: { close(): Promise<unknown> } | undefined;
          return {
            store: redisStore({ client: await client(), prefix }),
            // Another process's view: a connection of its own, on the same driver.
            peer: async () => {
              const connected = await driver.connect();
              other = connected;
              return redisStore({ client: connected.client, prefix });
            },
            cleanup: async () => {
              await other?.close();
              await drop(prefix);
            },
          };
        },
        { describe, it },
      );

      it('loads its scripts again after SCRIPT FLUSH', async () => {
        const prefix = `om-test:${randomBytes(6).toString('hex')}:`;
        const store = redisStore({ client: await client(), prefix });
        try {
          await store.putAccount(sampleAccountRecord({ id: 'a' }), { expectedVersion: null });
          await admin.script('FLUSH');
          expect(await store.acquireLease('a', 'h', 60_000)).not.toBeNull();
          expect(await store.acquireLease('a', 'other', 60_000)).toBeNull();
          expect((await store.listAccounts()).records.map((r) => r.id)).toEqual(['a']);
        } finally {
          await drop(prefix);
        }
      });

      it('reads the figures of health() and a missing state as on ioredis (numbers, null)', async () => {
        const prefix = `om-test:${randomBytes(6).toString('hex')}:`;
        const store = redisStore({ client: await client(), prefix });
        try {
          await store.putAccount(sampleAccountRecord({ id: 'a', tokenExpiresAt: 1_000 }), {
            expectedVersion: null,
          });
          const counts = await store.countAccounts({ now: 2_000, expiringBefore: 3_000, failedSince: 0 });
          expect(counts).toMatchObject({ total: 1, activeExpired: 1, activeExpiring: 0 });
          expect(await store.takeState('missing')).toBeNull();
          expect(await store.releaseLease('a', 'nobody')).toBe(false);
          expect(await store.migrate()).toBe(2);
        } finally {
          await drop(prefix);
        }
      });

      it('reports a failed command of a pipeline as StorageError', async () => {
        const prefix = `om-test:${randomBytes(6).toString('hex')}:`;
        const store = redisStore({ client: await client(), prefix });
        try {
          await store.putAccount(sampleAccountRecord({ id: 'a' }), { expectedVersion: null });
          await admin.set(`${prefix}account:a`, 'not a hash'); // HGET fails with WRONGTYPE
          await expect(store.listAccounts()).rejects.toMatchObject({
            code: 'ERR_STORAGE',
            cause: expect.objectContaining({ message: expect.stringContaining('WRONGTYPE') }),
          });
        } finally {
          await drop(prefix);
        }
      });

      it('reports a lost connection as StorageError, never as "not found"', async () => {
        const { client, close } = driver.offline();
        const store = redisStore({ client });
        try {
          await expect(store.getAccount('a')).rejects.toBeInstanceOf(StorageError);
          await expect(store.takeState('k')).rejects.toBeInstanceOf(StorageError);
          await expect(store.acquireLease('a', 'h', 100)).rejects.toMatchObject({
            code: 'ERR_STORAGE',
            cause: expect.any(Error),
          });
          await expect(store.listAccounts()).rejects.toBeInstanceOf(StorageError);
        } finally {
          close();
        }
      });
    });
  }
});

describe('nodeRedisClient', () => {
  it('refuses what is not a node-redis client, and redisStore asks for the adapter', () => {
    expect(() => nodeRedisClient({} as never)).toThrow(ConfigurationError);
    const unwrapped = createClient({ url: 'redis://127.0.0.1:1' });
    expect(() => redisStore({ client: unwrapped as never })).toThrow(/nodeRedisClient\(\)/);
  });
});
