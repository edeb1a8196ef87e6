/**
 * Case 9 in a fresh process: one store engine at one size. Seeds `count` connected accounts whose access
 * tokens have expired (real refresh tokens of the token server at `url`, encrypted as in production), then
 * measures, beside the engine's raw floor where one exists:
 * - `health()` (the store's aggregate) and the same figures as one raw query;
 * - a full walk (`iterateAccounts`, pages of 500) and the same keyset scan through the driver alone;
 * - the bulk refresh (`refreshExpiring`, concurrency 50) of every account, its wall time and memory growth.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import Redis from 'ioredis';
import pg from 'pg';
import {
  type AccountStore,
  aesGcmCipher,
  health,
  iterateAccounts,
  memoryStore,
  ProviderRegistry,
  refreshExpiring,
  TokenPersistence,
  TokenRefresher,
} from '../src/index.js';
import { postgresStore } from '../src/postgres.js';
import { redisStore } from '../src/redis.js';
import { benchProvider, serveOnce } from './support.js';

export type ScaleEngine = 'memory' | 'PGlite' | 'PostgreSQL' | 'Redis';

export interface ScaleWorkerInput {
  readonly url: string;
  readonly engine: ScaleEngine;
  readonly count: number;
  readonly concurrency: number;
  readonly databaseUrl: string;
  readonly redisUrl: string;
}

export interface ScaleWorkerResult {
  readonly seedMs: number;
  readonly healthMs: number;
  /** The same figures through the driver alone (`null`: no raw query to compare with). */
  readonly healthFloorMs: number | null;
  readonly walkMs: number;
  readonly walkFloorMs: number | null;
  readonly walked: number;
  readonly bulkMs: number;
  readonly refreshed: number;
  readonly failed: number;
  readonly rssGrowthMb: number;
}

interface Engine {
  readonly store: AccountStore;
  /** The health figures through the driver alone. */
  readonly healthFloor?: () => Promise<unknown>;
  /** A keyset scan of every record through the driver alone, pages of 500; resolves to the count. */
  readonly walkFloor?: () => Promise<number>;
  readonly close: () => Promise<void>;
}

async function openEngine(input: ScaleWorkerInput): Promise<Engine> {
  if (input.engine === 'memory') return { store: memoryStore(), close: async () => {} };
  if (input.engine === 'Redis') {
    const client = new Redis(input.redisUrl);
    const prefix = `om-bench:${randomBytes(5).toString('hex')}:`;
    return {
      store: redisStore({ client, prefix }),
      walkFloor: async () => {
        let after = '-';
        let n = 0;
        for (;;) {
          const ids = await client.zrangebylex(`${prefix}ids`, after, '+', 'LIMIT', 0, 500);
          if (ids.length === 0) return n;
          const pipeline = client.pipeline();
          for (const id of ids) pipeline.hget(`${prefix}account:${id}`, 'json');
          for (const [, json] of (await pipeline.exec()) ?? []) {
            JSON.parse(json as string);
            n++;
          }
          if (ids.length < 500) return n;
          after = `(${ids[ids.length - 1]}`;
        }
      },
      close: async () => {
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          if (keys.length > 0) await client.unlink(...keys);
          cursor = next;
        } while (cursor !== '0');
        await client.quit();
      },
    };
  }
  const schema = `om_bench_${randomBytes(5).toString('hex')}`;
  const pool =
    input.engine === 'PGlite' ? undefined : new pg.Pool({ connectionString: input.databaseUrl, max: 16 });
  const lite = input.engine === 'PGlite' ? new PGlite() : undefined;
  const db = (pool ?? lite) as pg.Pool;
  const store = postgresStore({ client: db, schema });
  await store.migrate();
  const table = `"${schema}"."oauth_mailbox_accounts"`;
  return {
    store,
    healthFloor: () =>
      db.query(`SELECT status, count(*) FROM ${table} WHERE token_expires_at IS NOT NULL GROUP BY status`),
    walkFloor: async () => {
      let after = '';
      let n = 0;
      for (;;) {
        const { rows } = await db.query(
          `SELECT * FROM ${table} WHERE id COLLATE "C" > $1 ORDER BY id COLLATE "C" LIMIT 500`,
          [after],
        );
        n += rows.length;
        if (rows.length < 500) return n;
        after = (rows[rows.length - 1] as { id: string }).id;
      }
    },
    close: async () => {
      await db.query(`DROP SCHEMA "${schema}" CASCADE`);
      await (pool?.end() ?? lite?.close());
    },
  };
}

/** The median of `runs` timings of `fn`, in milliseconds. */
async function time(fn: () => Promise<unknown>, runs: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)] as number;
}

async function run(input: ScaleWorkerInput): Promise<ScaleWorkerResult> {
  const { url, count, concurrency } = input;
  const engine = await openEngine(input);
  try {
    const emails = Array.from(
      { length: count },
      (_, i) => `scale-${randomBytes(4).toString('hex')}-${i}@example.com`,
    );
    const refreshTokens: string[] = [];
    for (let i = 0; i < count; i += 10_000) {
      const batch = emails.slice(i, i + 10_000);
      refreshTokens.push(
        ...((await (
          await fetch(`${url}/issue`, { method: 'POST', body: JSON.stringify(batch) })
        ).json()) as string[]),
      );
    }
    const persistence = new TokenPersistence({
      store: engine.store,
      cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
    });
    const refresher = new TokenRefresher({
      persistence,
      registry: new ProviderRegistry([benchProvider(url)]),
    });
    const seedStarted = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < count) {
          const i = next++;
          await persistence.connect({
            provider: 'local',
            owner: `owner-${i % 97}`,
            email: emails[i] as string,
            tokens: {
              accessToken: `at-${i}`,
              refreshToken: refreshTokens[i] as string,
              expiresAt: Date.now() - 1000,
            },
          });
        }
      }),
    );
    const seedMs = performance.now() - seedStarted;
    const runs = count <= 50_000 ? 5 : 3;
    const healthMs = await time(() => health(persistence, refresher), runs);
    const healthFloorMs = engine.healthFloor === undefined ? null : await time(engine.healthFloor, runs);
    let walked = 0;
    const walkMs = await time(async () => {
      walked = 0;
      for await (const _ of iterateAccounts(engine.store, {}, { pageSize: 500 })) walked++;
    }, runs);
    const walkFloorMs = engine.walkFloor === undefined ? null : await time(engine.walkFloor, runs);

    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const t = performance.now();
    const report = await refreshExpiring(refresher, persistence, { withinMs: 60_000, concurrency });
    const bulkMs = performance.now() - t;
    clearInterval(sampler);
    refresher.close();
    return {
      seedMs,
      healthMs,
      healthFloorMs,
      walkMs,
      walkFloorMs,
      walked,
      bulkMs,
      refreshed: report.refreshed,
      failed: report.failed,
      rssGrowthMb: (peak - before) / 1024 / 1024,
    };
  } finally {
    await engine.close();
  }
}

serveOnce(run);
