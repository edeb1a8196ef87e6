import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/index.js';
import { redisStore } from '../../src/redis.js';
import { describeStoreConformance, sampleAccountRecord } from '../../src/testing/index.js';
import { requireService } from '../support/services.js';

const REDIS_URL = requireService('REDIS_URL', 'Redis');

describe.skipIf(!REDIS_URL)('Redis (REDIS_URL)', () => {
  const client = new Redis(REDIS_URL as string, { maxRetriesPerRequest: 1 });
  afterAll(() => client.quit());

  describeStoreConformance(
    'Redis',
    async () => {
      const prefix = `om-test:${randomBytes(6).toString('hex')}:`;
      let other: Redis | undefined;
      return {
        store: redisStore({ client, prefix }),
        // Another process's view: its own connection (and its own subscriber).
        peer: async () => {
          other = new Redis(REDIS_URL as string, { maxRetriesPerRequest: 1 });
          return redisStore({ client: other, prefix });
        },
        cleanup: async () => {
          await other?.quit();
          const keys = await client.keys(`${prefix}*`);
          if (keys.length > 0) await client.del(...keys);
        },
      };
    },
    { describe, it },
  );

  it('loads its scripts again after SCRIPT FLUSH', async () => {
    const store = redisStore({ client, prefix: `om-test:${randomBytes(6).toString('hex')}:` });
    await store.putAccount(sampleAccountRecord(), { expectedVersion: null });
    await client.script('FLUSH');
    expect(await store.acquireLease('a', 'h', 1000)).not.toBeNull();
  });

  it('reports a lost connection as StorageError, never as "not found"', async () => {
    const broken = new Redis(REDIS_URL as string, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    const store = redisStore({ client: broken });
    await expect(store.getAccount('a')).rejects.toBeInstanceOf(StorageError);
    await expect(store.takeState('k')).rejects.toBeInstanceOf(StorageError);
    await expect(store.acquireLease('a', 'h', 100)).rejects.toBeInstanceOf(StorageError);
    // The indexed reads (their one-time layout check fails too, and is tried again on the next call).
    const now = Date.now();
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(store.countAccounts({ now, expiringBefore: now, failedSince: 0 })).rejects.toBeInstanceOf(
        StorageError,
      );
      await expect(store.listAccounts({ status: 'active', expiresBefore: now })).rejects.toBeInstanceOf(
        StorageError,
      );
    }
    await expect(store.migrate()).rejects.toBeInstanceOf(StorageError);
    broken.disconnect();
  });
});

describe('redisStore', () => {
  it('refuses a missing client', () => {
    expect(() => redisStore({ client: {} as never })).toThrow(/client must be an ioredis client/);
  });
});
