/** The Redis change feed: reset after the subscriber's connection is killed, on ioredis and node-redis. */
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { type AccountChange, ConfigurationError } from '../../src/index.js';
import { nodeRedisClient, type RedisClient, redisStore } from '../../src/redis.js';
import { sampleAccountRecord } from '../../src/testing/index.js';
import { requireService } from '../support/services.js';

const REDIS_URL = requireService('REDIS_URL', 'Redis');

describe.skipIf(!REDIS_URL)('Redis change feed (REDIS_URL)', () => {
  const admin = new Redis(REDIS_URL as string, { maxRetriesPerRequest: 1 });
  afterAll(() => admin.quit());
  const pubsubIds = async () =>
    new Set(
      String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
        .split('\n')
        .map((line) => /\bid=(\d+)/.exec(line)?.[1])
        .filter((id): id is string => id !== undefined),
    );

  const drivers: [string, () => Promise<{ client: RedisClient; close(): Promise<unknown> }>][] = [
    [
      'ioredis',
      async () => {
        const r = new Redis(REDIS_URL as string, { maxRetriesPerRequest: 1 });
        return { client: r, close: () => r.quit() };
      },
    ],
    [
      'node-redis',
      async () => {
        const r = await createClient({ url: REDIS_URL as string }).connect();
        return { client: nodeRedisClient(r), close: () => r.close() };
      },
    ],
  ];

  for (const [name, connect] of drivers) {
    it(`${name}: reports reset once subscribed again after CLIENT KILL of the subscriber, then a refresh (readAndLease, putAccountAndRelease) is seen`, async () => {
      const { client, close } = await connect();
      const prefix = `om-test:${randomBytes(6).toString('hex')}:`;
      const store = redisStore({ client, prefix });
      const queued: AccountChange[] = [];
      const waiting: ((c: AccountChange) => void)[] = [];
      const next = () =>
        queued.length > 0
          ? Promise.resolve(queued.shift() as AccountChange)
          : new Promise<AccountChange>((r) => waiting.push(r));
      try {
        const before = await pubsubIds();
        const watch = await store.watchAccounts((c) => {
          const w = waiting.shift();
          if (w) w(c);
          else queued.push(c);
        });
        const ours = [...(await pubsubIds())].filter((id) => !before.has(id));
        expect(ours).toHaveLength(1);
        await admin.call('CLIENT', 'KILL', 'ID', ours[0] as string);
        expect(await next()).toEqual({ kind: 'reset', id: '' });
        const created = await store.putAccount(sampleAccountRecord({ id: 'a' }), { expectedVersion: null });
        expect(await next()).toEqual({ kind: 'written', id: 'a', version: 1, record: created });
        // A refresh: read and lease, then write and release (each one script).
        const read = await store.readAndLease('a', 'w', 60_000, { dueBefore: null });
        expect(read.lease?.holder).toBe('w');
        const { version: _v, updatedAt: _u, ...input } = created;
        await store.putAccountAndRelease(input, { expectedVersion: 1, holder: 'w' });
        expect(await next()).toMatchObject({ kind: 'written', version: 2 });
        expect(await admin.exists(`${prefix}lease:a`)).toBe(0);
        await watch.close();
        await watch.close();
        const after = await pubsubIds();
        for (const id of ours) expect(after.has(id)).toBe(false);
      } finally {
        const keys = await admin.keys(`${prefix}*`);
        if (keys.length > 0) await admin.del(...keys);
        await close();
      }
    });
  }

  it('a client without duplicate() has no watch: a ConfigurationError says so', async () => {
    const { duplicate: _d, ...plain } = { ...nodeRedisClient(createClient({ url: REDIS_URL as string })) };
    const store = redisStore({ client: plain as RedisClient });
    await expect(store.watchAccounts(() => {})).rejects.toBeInstanceOf(ConfigurationError);
  });
});
