/**
 * `npm run bench`: oauth-mailbox against its peers, side by side in one run, on this machine.
 * `npm run bench -- --smoke` runs every case with tiny sizes (CI keeps it from rotting).
 *
 * Writes bench/results.json, prints a table, and regenerates the results section of docs/performance.md
 * and docs/performance.svg (only in full runs).
 */
import { execFileSync, fork } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { OAuth2Client } from 'google-auth-library';
import { ImapFlow } from 'imapflow';
import Redis from 'ioredis';
import XOAuth2 from 'nodemailer/lib/xoauth2/index.js';
import pg from 'pg';
import {
  type AccountStore,
  aesGcmCipher,
  createMailboxAuth,
  memoryStore,
  ProviderRegistry,
  type StateStore,
  TokenPersistence,
  TokenRefresher,
} from '../src/index.js';
import { postgresStore } from '../src/postgres.js';
import { redisStore } from '../src/redis.js';
import type { WorkerConfig, WorkerResult } from '../tests/fleet/worker.js';
import { startDovecot } from '../tests/support/dovecot-server.js';
import { startTokenServer, type TokenServer } from '../tests/support/token-server.js';
import type { BulkWorkerInput, BulkWorkerResult } from './bulk-worker.js';
import { renderChart } from './chart.js';
import type { HeapWorkerInput, HeapWorkerResult } from './heap-worker.js';
import type { ScaleEngine, ScaleWorkerInput, ScaleWorkerResult } from './scale-worker.js';
import { benchProvider, runInFreshProcess, withTokenServerProcess } from './support.js';
import type { WatchersWorkerInput, WatchersWorkerResult } from './watchers-worker.js';

const SMOKE = process.argv.includes('--smoke');
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface CaseResult {
  readonly id: string;
  readonly title: string;
  readonly figures: Record<string, number | string>;
  readonly target: string;
  readonly met: boolean | null;
}
const results: CaseResult[] = [];
function report(result: CaseResult): void {
  results.push(result);
  const status = result.met === null ? 'info' : result.met ? 'MET' : 'MISSED';
  console.log(`\n[${status}] ${result.id}. ${result.title}`);
  for (const [k, v] of Object.entries(result.figures))
    console.log(`    ${k}: ${typeof v === 'number' ? round(v) : v}`);
  console.log(`    target: ${result.target}`);
}
const round = (n: number) => (Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 1000) / 1000);

/** Latency statistics of `fn` in microseconds. */
async function measure(
  fn: () => unknown,
  iterations: number,
  warmup = Math.min(1000, iterations),
): Promise<{ mean: number; p50: number; p99: number }> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await fn();
    samples[i] = (performance.now() - t) * 1000;
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return {
    mean,
    p50: sorted[Math.floor(sorted.length * 0.5)] as number,
    p99: sorted[Math.floor(sorted.length * 0.99)] as number,
  };
}

/** Throughput in a tight loop (calls per second), for sub-microsecond paths. */
async function throughput(fn: () => unknown, durationMs: number): Promise<number> {
  const batch = 1000;
  for (let i = 0; i < 20_000; i++) await fn();
  let calls = 0;
  const end = performance.now() + durationMs;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < batch; i++) await fn();
    calls += batch;
  }
  return calls / ((performance.now() - start) / 1000);
}

const provider = (server: Pick<TokenServer, 'url'>, id = 'local', imapPort = 1) =>
  benchProvider(server.url, { id, imapPort });

async function seed(
  persistence: TokenPersistence,
  server: TokenServer,
  count: number,
  expired: boolean,
  providerId = 'local',
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const email = `user${i}-${randomBytes(3).toString('hex')}@example.com`;
    const { account } = await persistence.connect({
      provider: providerId,
      owner: 'bench',
      email,
      tokens: {
        accessToken: `at-${randomBytes(16).toString('hex')}`,
        refreshToken: server.issueRefreshToken(email),
        expiresAt: expired ? Date.now() - 1000 : Date.now() + 3600_000,
      },
      metadata: { email },
    });
    ids.push(account.id);
  }
  return ids;
}

function tokenServerRequests(server: TokenServer) {
  return server.stats.refreshes;
}

// 1. Hot path ------------------------------------------------------------------------------------------
async function hotPath() {
  const server = await startTokenServer();
  const persistence = new TokenPersistence({
    store: memoryStore(),
    cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
  });
  const refresher = new TokenRefresher({ persistence, registry: new ProviderRegistry([provider(server)]) });
  const [id] = await seed(persistence, server, 1, false);
  await refresher.getAccessToken(id as string);
  const client = new OAuth2Client({ clientId: 'bench', clientSecret: 's' });
  client.setCredentials({ access_token: 'valid', refresh_token: 'r', expiry_date: Date.now() + 3600_000 });
  const ms = SMOKE ? 100 : 2000;
  const ours = await throughput(() => refresher.getAccessToken(id as string), ms);
  const theirs = await throughput(() => client.getAccessToken(), ms);
  const ratio = theirs / ours; // time per call, ours / theirs
  report({
    id: '1',
    title: 'Hot path: getAccessToken with a valid token held in process',
    figures: {
      'oauth-mailbox calls/s': ours,
      'google-auth-library calls/s': theirs,
      'time ratio (ours / theirs)': ratio,
    },
    target: 'ratio <= 1.0',
    met: SMOKE ? null : ratio <= 1.0,
  });
  await server.close();
}

// 2. Warm path -----------------------------------------------------------------------------------------
async function warmPath() {
  const server = await startTokenServer();
  const figures: Record<string, number> = {};
  const engines: {
    name: string;
    open: () => Promise<{ store: AccountStore & StateStore; close(): Promise<void> }>;
  }[] = [
    { name: 'memory', open: async () => ({ store: memoryStore(), close: async () => {} }) },
    {
      name: 'PGlite',
      open: async () => {
        const db = new PGlite();
        const store = postgresStore({ client: db });
        await store.migrate();
        return { store, close: () => db.close() };
      },
    },
    {
      name: 'PostgreSQL',
      open: async () => {
        const pool = new pg.Pool({ connectionString: DATABASE_URL });
        const schema = `bench_${randomBytes(4).toString('hex')}`;
        const store = postgresStore({ client: pool, schema });
        await store.migrate();
        return {
          store,
          close: async () => {
            await pool.query(`DROP SCHEMA ${schema} CASCADE`);
            await pool.end();
          },
        };
      },
    },
    {
      name: 'Redis',
      open: async () => {
        const client = new Redis(REDIS_URL);
        const prefix = `bench:${randomBytes(4).toString('hex')}:`;
        return {
          store: redisStore({ client, prefix }),
          close: async () => {
            const keys = await client.keys(`${prefix}*`);
            if (keys.length) await client.del(...keys);
            await client.quit();
          },
        };
      },
    },
  ];
  for (const engine of engines) {
    const { store, close } = await engine.open();
    const persistence = new TokenPersistence({
      store,
      cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
    });
    const refresher = new TokenRefresher({ persistence, registry: new ProviderRegistry([provider(server)]) });
    const [id] = await seed(persistence, server, 1, false);
    const stats = await measure(
      () => {
        refresher.invalidate(id as string);
        return refresher.getAccessToken(id as string);
      },
      SMOKE ? 20 : 2000,
      SMOKE ? 5 : 200,
    );
    figures[`${engine.name} median µs`] = stats.p50;
    figures[`${engine.name} p99 µs`] = stats.p99;
    refresher.close(); // frees what it holds (a change feed's connection) before the pool ends
    await refresher.settled();
    await close();
  }
  report({
    id: '2',
    title: 'Warm path: token not held in process (store read + decrypt)',
    figures,
    target: 'reported (median, p99)',
    met: null,
  });
  await server.close();
}

// 3. In-process coalescing -----------------------------------------------------------------------------
async function coalescing() {
  const callers = SMOKE ? 50 : 1000;
  const server = await startTokenServer({ latencyMs: 20 });
  // Ours
  const persistence = new TokenPersistence({
    store: memoryStore(),
    cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
  });
  const refresher = new TokenRefresher({ persistence, registry: new ProviderRegistry([provider(server)]) });
  const [id] = await seed(persistence, server, 1, true);
  let before = tokenServerRequests(server);
  await Promise.all(Array.from({ length: callers }, () => refresher.getAccessToken(id as string)));
  const ours = tokenServerRequests(server) - before;
  // google-auth-library
  const gal = new OAuth2Client({
    clientId: 'bench',
    clientSecret: 's',
    endpoints: { oauth2TokenUrl: `${server.url}/token` },
  });
  gal.setCredentials({
    access_token: 'old',
    refresh_token: server.issueRefreshToken('gal@example.com'),
    expiry_date: Date.now() - 1000,
  });
  before = tokenServerRequests(server);
  await Promise.allSettled(Array.from({ length: callers }, () => gal.getAccessToken()));
  const theirs = tokenServerRequests(server) - before;
  // nodemailer XOAuth2
  const xo = new XOAuth2({
    user: 'nm@example.com',
    clientId: 'bench',
    clientSecret: 's',
    refreshToken: server.issueRefreshToken('nm@example.com'),
    accessUrl: `${server.url}/token`,
    accessToken: 'old',
    expires: Date.now() - 1000,
  } as never);
  before = tokenServerRequests(server);
  await Promise.allSettled(
    Array.from(
      { length: callers },
      () =>
        new Promise((resolveToken) =>
          (xo as unknown as { getToken(r: boolean, cb: (e: unknown, t?: string) => void): void }).getToken(
            false,
            (e, t) => resolveToken(e ?? t),
          ),
        ),
    ),
  );
  const nodemailer = tokenServerRequests(server) - before;
  report({
    id: '3',
    title: `In-process coalescing: ${callers} concurrent callers on an expired token`,
    figures: {
      'oauth-mailbox token requests': ours,
      'google-auth-library token requests': theirs,
      'nodemailer XOAuth2 token requests': nodemailer,
    },
    target: 'oauth-mailbox: 1',
    met: ours === 1,
  });
  await server.close();
}

// 4. Fleet across processes ----------------------------------------------------------------------------
/** Committed plus rolled-back transactions of the database, as the server counts them. */
async function pgTransactions(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number((rows[0] as { n: string }).n);
}

/**
 * The server's transaction count since `before`, once it has settled: backends flush their statistics
 * asynchronously (about once a second), so this reads until two reads a flush apart agree (bounded), and
 * subtracts its own reads (each one transaction).
 */
async function settledPgTransactions(pool: pg.Pool, before: number): Promise<number> {
  let own = 0;
  let last = -1;
  for (let i = 0; i < 10; i++) {
    await pool.query('SELECT pg_stat_clear_snapshot()');
    const now = await pgTransactions(pool);
    own += 2;
    if (now === last) return now - before - own;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 1100)); // one statistics flush interval
  }
  return last - before - own;
}

/** Commands the Redis server has processed (`INFO stats`). */
async function redisCommands(redis: Redis): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
}

async function fleet() {
  const processes = SMOKE ? 2 : 8;
  const accounts = SMOKE ? 10 : 200;
  const tsx = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
  const figures: Record<string, number> = {};
  let met = true;
  for (const engine of ['postgres', 'redis'] as const) {
    const server = await startTokenServer({ latencyMs: 20 });
    const namespace =
      engine === 'postgres'
        ? `bench_fleet_${randomBytes(4).toString('hex')}`
        : `bench-fleet:${randomBytes(4).toString('hex')}:`;
    const pool = engine === 'postgres' ? new pg.Pool({ connectionString: DATABASE_URL }) : undefined;
    const redis = engine === 'redis' ? new Redis(REDIS_URL) : undefined;
    const store = pool
      ? postgresStore({ client: pool, schema: namespace })
      : redisStore({ client: redis as Redis, prefix: namespace });
    if (pool) await (store as ReturnType<typeof postgresStore>).migrate();
    const key = randomBytes(32);
    const persistence = new TokenPersistence({
      store,
      cipher: aesGcmCipher({ keys: { k1: key }, current: 'k1' }),
    });
    const ids = await seed(persistence, server, accounts, true, 'rotating'); // the workers' provider id
    const config: WorkerConfig = {
      engine,
      url: engine === 'postgres' ? DATABASE_URL : REDIS_URL,
      namespace,
      keyHex: key.toString('hex'),
      tokenServer: server.url,
      ids,
      // The refresher's defaults (lease 60 s, wait for another process 20 s): the issue's setting.
    };
    const workers = Array.from({ length: processes }, () => {
      const child = fork(resolve('tests/fleet/worker.ts'), [JSON.stringify(config)], {
        execArgv: ['--import', tsx],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const ready = new Promise<void>((r) => child.on('message', (m: { ready?: boolean }) => m.ready && r()));
      const done = new Promise<{ results: WorkerResult[]; statements: number }>((r) =>
        child.on(
          'message',
          (m: { results?: WorkerResult[]; statements?: number }) =>
            m.results && r({ results: m.results, statements: m.statements ?? 0 }),
        ),
      );
      return { child, ready, done };
    });
    await Promise.all(workers.map((w) => w.ready));
    const before = { ...server.stats };
    const serverBefore = pool ? await pgTransactions(pool) : redis ? await redisCommands(redis) : 0;
    const t = performance.now();
    for (const w of workers) w.child.send({ go: true });
    const finished = await Promise.all(workers.map((w) => w.done));
    const wall = performance.now() - t;
    const outcomes = finished.flatMap((f) => f.results);
    if (pool) {
      // Round trips the workers sent (each its own implicit transaction), and the server's own count.
      const statements = finished.reduce((sum, f) => sum + f.statements, 0);
      // Each statement the workers send is one round trip and one (implicit) transaction.
      figures['postgres transactions per account'] = statements / accounts;
      // The server's count, informational: it includes every other session on the database (autovacuum).
      figures['postgres server transactions per account (all sessions)'] =
        (await settledPgTransactions(pool, serverBefore)) / accounts;
    }
    if (redis)
      figures['redis commands per account'] = ((await redisCommands(redis)) - serverBefore - 1) / accounts;
    const requests = server.stats.refreshes - before.refreshes;
    const invalid = server.stats.invalidGrants - before.invalidGrants;
    const failed = outcomes.filter((o) => !o.ok).length;
    figures[`${engine} token requests`] = requests;
    figures[`${engine} invalid_grant`] = invalid;
    figures[`${engine} failed calls`] = failed;
    figures[`${engine} wall ms`] = wall;
    met &&= requests === accounts && invalid === 0 && failed === 0;
    if (pool) met &&= (figures['postgres transactions per account'] as number) <= 10;
    if (pool) {
      await pool.query(`DROP SCHEMA ${namespace} CASCADE`);
      await pool.end();
    }
    if (redis) {
      const keys = await redis.keys(`${namespace}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
    await server.close();
  }
  figures['postgres wall / redis wall'] =
    (figures['postgres wall ms'] as number) / (figures['redis wall ms'] as number);
  met &&= (figures['postgres wall / redis wall'] as number) <= 2;
  // Contrast: independent google-auth-library clients (one per process) on the same accounts.
  const server = await startTokenServer({ latencyMs: 20 });
  const tokens = Array.from({ length: accounts }, (_, i) => server.issueRefreshToken(`gal${i}@example.com`));
  const before = { ...server.stats };
  await Promise.allSettled(
    Array.from({ length: processes }).flatMap(() =>
      tokens.map((refresh_token) => {
        const c = new OAuth2Client({
          clientId: 'bench',
          clientSecret: 's',
          endpoints: { oauth2TokenUrl: `${server.url}/token` },
        });
        c.setCredentials({ access_token: 'old', refresh_token, expiry_date: Date.now() - 1000 });
        return c.getAccessToken();
      }),
    ),
  );
  figures['google-auth-library (independent clients) token requests'] =
    server.stats.refreshes - before.refreshes;
  figures['google-auth-library invalid_grant'] = server.stats.invalidGrants - before.invalidGrants;
  await server.close();
  report({
    id: '4',
    title: `Fleet: ${processes} processes × ${accounts} accounts expired at once, rotating token server`,
    figures,
    target: `exactly ${accounts} token requests and 0 invalid_grant on each engine; PostgreSQL ≤ 10 transactions per account, wall ≤ 2× Redis (refresher defaults)`,
    met,
  });
}

// 10. Heap slope with caller signals -------------------------------------------------------------------
async function heapSlope() {
  const perRound = SMOKE ? 500 : 10_000;
  const rounds = SMOKE ? 2 : 5;
  const run = (mode: HeapWorkerInput['mode']) =>
    runInFreshProcess<HeapWorkerInput, HeapWorkerResult>('bench/heap-worker.ts', { perRound, rounds, mode });
  const plain = await run('plain');
  const signal = await run('signal');
  report({
    id: '10',
    title: `Heap slope: ${perRound * rounds} forced refreshes through auth.getAccessToken, with a caller AbortSignal each and without (in-process token source, fresh process, after GC)`,
    figures: {
      'KB per 1,000 refreshes with a caller signal': signal.kbPer1000,
      'KB per 1,000 refreshes, no signal (floor)': plain.kbPer1000,
    },
    target: 'with a caller signal ≤ 10 KB per 1,000 refreshes',
    met: SMOKE || signal.kbPer1000 <= 10,
  });
}

// 5. Bulk proactive refresh ----------------------------------------------------------------------------
/** Run one case-5 measurement in a fresh process (bench/bulk-worker.ts). */
const bulkRun = (input: BulkWorkerInput) =>
  runInFreshProcess<BulkWorkerInput, BulkWorkerResult>('bench/bulk-worker.ts', input);

async function bulk() {
  const count = SMOKE ? 200 : 10_000;
  const concurrency = 50;
  const latency = 20;
  // The provider is another process, as in production; each measurement runs in a fresh process of its
  // own, so its memory figure is its own.
  const { floor, ours, requests } = await withTokenServerProcess(latency, async (url) => {
    const stats = async () =>
      (await (await fetch(`${url}/stats`, { method: 'POST' })).json()) as TokenServer['stats'];
    const floor = await bulkRun({ url, count, concurrency, mode: 'floor' });
    const requestsBefore = (await stats()).refreshes;
    const ours = await bulkRun({ url, count, concurrency, mode: 'library' });
    return { floor, ours, requests: (await stats()).refreshes - requestsBefore };
  });
  const ideal = (count * latency) / concurrency;
  report({
    id: '5',
    title: `Bulk proactive refresh: ${count} accounts, token server ${latency} ms (another process), concurrency ${concurrency}`,
    figures: {
      refreshed: ours.refreshed,
      failed: ours.failed,
      'token requests': requests,
      'wall ms': ours.wallMs,
      'ideal ms': ideal,
      'ratio to ideal': ours.wallMs / ideal,
      'peak RSS growth MB': ours.rssGrowthMb,
      'peak heap growth MB': ours.heapGrowthMb,
      'floor (provider.refresh alone) wall ms': floor.wallMs,
      'floor peak RSS growth MB': floor.rssGrowthMb,
    },
    target: 'ratio <= 1.25, RSS growth < 50 MB',
    met: SMOKE
      ? null
      : ours.wallMs / ideal <= 1.25 && ours.rssGrowthMb < 50 && ours.failed === 0 && requests === count,
  });
}

// 9. Stores at scale -----------------------------------------------------------------------------------
/** Sizes per engine: 1k, 10k and 50k everywhere; 100k where an engine is meant for large fleets. */
// BENCH_SCALE_SIZES=10000,50000 measures only those sizes (on every engine), for a quicker look.
const ONLY_SIZES = process.env.BENCH_SCALE_SIZES?.split(',').map(Number);
const SCALE_SIZES: Record<ScaleEngine, readonly number[]> = SMOKE
  ? { memory: [200], PGlite: [200], PostgreSQL: [200], Redis: [200] }
  : ONLY_SIZES !== undefined
    ? { memory: ONLY_SIZES, PGlite: ONLY_SIZES, PostgreSQL: ONLY_SIZES, Redis: ONLY_SIZES }
    : {
        memory: [1000, 10_000, 50_000, 100_000],
        PGlite: [1000, 10_000, 50_000],
        PostgreSQL: [1000, 10_000, 50_000, 100_000],
        Redis: [1000, 10_000, 50_000, 100_000],
      };

// BENCH_SCALE_ENGINES=memory,PostgreSQL measures only those engines (a partial run, for a quicker look).
const ONLY_ENGINES = process.env.BENCH_SCALE_ENGINES?.split(',');
if (ONLY_ENGINES !== undefined) {
  for (const engine of Object.keys(SCALE_SIZES) as ScaleEngine[])
    if (!ONLY_ENGINES.includes(engine)) delete (SCALE_SIZES as Partial<typeof SCALE_SIZES>)[engine];
}

async function scale() {
  const concurrency = 50;
  const latency = 20;
  const { floors, measured } = await withTokenServerProcess(latency, async (url) => {
    const sizes = [...new Set(Object.values(SCALE_SIZES).flat())].sort((a, b) => a - b);
    const floors = new Map<number, number>();
    for (const count of sizes) {
      floors.set(count, (await bulkRun({ url, count, concurrency, mode: 'floor' })).wallMs);
    }
    const measured = new Map<string, ScaleWorkerResult>();
    for (const engine of Object.keys(SCALE_SIZES) as ScaleEngine[]) {
      for (const count of SCALE_SIZES[engine]) {
        const input: ScaleWorkerInput = {
          url,
          engine,
          count,
          concurrency,
          databaseUrl: DATABASE_URL,
          redisUrl: REDIS_URL,
        };
        measured.set(
          `${engine}@${count}`,
          await runInFreshProcess<ScaleWorkerInput, ScaleWorkerResult>(
            'bench/scale-worker.ts',
            input,
            1_800_000,
          ),
        );
      }
    }
    return { floors, measured };
  });
  const k = (n: number) => (n >= 1000 ? `${n / 1000}k` : String(n));
  const get = (engine: ScaleEngine, count: number) => measured.get(`${engine}@${count}`);
  for (const engine of Object.keys(SCALE_SIZES) as ScaleEngine[]) {
    const figures: Record<string, number | string> = {};
    for (const count of SCALE_SIZES[engine]) {
      const m = get(engine, count) as ScaleWorkerResult;
      const floor = floors.get(count) as number;
      figures[`bulk ms @${k(count)}`] = m.bulkMs;
      figures[`bulk / floor @${k(count)}`] = m.bulkMs / floor;
      figures[`walk ms @${k(count)}`] = m.walkMs;
      if (m.walkFloorMs !== null) figures[`walk floor ms @${k(count)}`] = m.walkFloorMs;
      figures[`health ms @${k(count)}`] = m.healthMs;
      if (m.healthFloorMs !== null) figures[`health floor ms @${k(count)}`] = m.healthFloorMs;
      figures[`RSS growth MB @${k(count)}`] = m.rssGrowthMb;
      figures[`connect µs per account @${k(count)}`] = (m.seedMs * 1000) / count;
      if (m.failed > 0 || m.refreshed !== count)
        figures[`refreshed @${k(count)}`] = `${m.refreshed} (${m.failed} failed)`;
    }
    const largest = Math.max(...SCALE_SIZES[engine]);
    const walk10 = get(engine, 10_000)?.walkMs;
    const walk50 = get(engine, 50_000)?.walkMs;
    const all = SCALE_SIZES[engine].map((n) => get(engine, n) as ScaleWorkerResult);
    const complete = all.every((m, i) => m.failed === 0 && m.refreshed === SCALE_SIZES[engine][i]);
    const bulkTarget = engine === 'PostgreSQL' ? 1.5 : engine === 'Redis' ? 1.3 : undefined;
    const bulkRatio =
      bulkTarget === undefined || get(engine, 10_000) === undefined
        ? undefined
        : (get(engine, 10_000)?.bulkMs ?? Number.NaN) / (get('memory', 10_000)?.bulkMs ?? Number.NaN);
    if (bulkRatio !== undefined && !Number.isNaN(bulkRatio)) figures['bulk @10k / memory @10k'] = bulkRatio;
    if (walk10 !== undefined && walk50 !== undefined) figures['walk @50k / walk @10k'] = walk50 / walk10;
    const healthLargest = get(engine, largest)?.healthMs ?? Number.NaN;
    const targets = [
      'every account refreshed once',
      'walk @50k ≤ 5.5 × walk @10k',
      ...(bulkTarget === undefined ? [] : [`bulk @10k ≤ ${bulkTarget} × memory @10k`]),
      ...(engine === 'PostgreSQL' || engine === 'Redis' ? [`health() < 1 s @${k(largest)}`] : []),
      // PGlite's database lives in the process: its pages count in the RSS.
      ...(engine === 'PGlite' ? [] : ['RSS growth < 50 MB @10k']),
    ];
    const met =
      complete &&
      (walk10 === undefined || walk50 === undefined || walk50 / walk10 <= 5.5) &&
      (bulkRatio === undefined || bulkRatio <= (bulkTarget as number)) &&
      (!(engine === 'PostgreSQL' || engine === 'Redis') || healthLargest < 1000) &&
      (engine === 'PGlite' || (get(engine, 10_000)?.rssGrowthMb ?? 0) < 50);
    report({
      id: `9-${engine}`,
      title: `Stores at scale, ${engine}: bulk refresh (token server ${latency} ms, concurrency ${concurrency}; floor = provider.refresh alone), full walk, health() at ${SCALE_SIZES[engine].map(k).join(', ')} accounts`,
      figures,
      target: targets.join('; '),
      met: SMOKE ? null : met,
    });
  }
}

// 6. Encryption ----------------------------------------------------------------------------------------
async function encryption() {
  const key = randomBytes(32);
  const cipher = aesGcmCipher({ keys: { k: key }, current: 'k' });
  const plaintext = JSON.stringify({
    v: 1,
    at: `ya29.${randomBytes(120).toString('base64url')}`,
    rt: `1//${randomBytes(70).toString('base64url')}`,
    it: null,
    tt: 'Bearer',
  });
  const aad = 'oauth-mailbox/account/8f14e45f-ceea-467a-9575-2bd5e1f5a1a3';
  const raw = () => {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    const tag = c.getAuthTag();
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]).toString('utf8');
  };
  const ours = () => cipher.decrypt(cipher.encrypt(plaintext, aad), aad);
  const n = SMOKE ? 200 : 50_000;
  const a = await measure(ours, n);
  const b = await measure(raw, n);
  report({
    id: '6',
    title: 'Encryption: encrypt + decrypt of a token blob',
    figures: { 'oauth-mailbox mean µs': a.mean, 'raw node:crypto mean µs': b.mean, ratio: a.mean / b.mean },
    target: 'ratio <= 1.2',
    met: SMOKE ? null : a.mean / b.mean <= 1.2,
  });
}

// 7. Mail ----------------------------------------------------------------------------------------------
async function mail() {
  const server = await startTokenServer();
  const dovecot = await startDovecot({
    introspectionUrl: `${server.url}/introspect`,
    maxConnections: SMOKE ? 100 : 2000,
  });
  const store = memoryStore();
  const auth = createMailboxAuth({
    providers: [provider(server, 'local', dovecot.imapPort)],
    store,
    cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
  });
  const email = 'bench@example.com';
  const { account } = await auth.persistence.connect({
    provider: 'local',
    owner: 'bench',
    email,
    tokens: { accessToken: 'x', refreshToken: server.issueRefreshToken(email), expiresAt: Date.now() - 1 },
  });
  const token = (await auth.getAccessToken(account.id)).accessToken;
  // Interleaved (ours, raw, ours, raw, ...) so that machine noise hits both alike; medians, not means.
  const n = SMOKE ? 3 : 100;
  const connectOurs = async () => {
    const c = await auth.connectImap(account.id, { allowInsecureHosts: ['127.0.0.1'] });
    await c.logout();
  };
  const connectRaw = async () => {
    const c = new ImapFlow({
      host: '127.0.0.1',
      port: dovecot.imapPort,
      secure: false,
      doSTARTTLS: false,
      auth: { user: email, accessToken: token },
      logger: false,
    });
    await c.connect();
    await c.logout();
  };
  for (let i = 0; i < 5; i++) {
    await connectOurs();
    await connectRaw();
  }
  const oursSamples: number[] = [];
  const rawSamples: number[] = [];
  for (let i = 0; i < n; i++) {
    let t = performance.now();
    await connectOurs();
    oursSamples.push(performance.now() - t);
    t = performance.now();
    await connectRaw();
    rawSamples.push(performance.now() - t);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const ours = { median: median(oursSamples) };
  const raw = { median: median(rawSamples) };
  // Memory per idle watcher, in fresh processes (bench/watchers-worker.ts): ours, then raw imapflow.
  const watchers = SMOKE ? 20 : 500;
  const watch = async (mode: WatchersWorkerInput['mode']) =>
    watchersRun({
      url: server.url,
      imapPort: dovecot.imapPort,
      email,
      refreshToken: server.issueRefreshToken(email),
      accessToken: token,
      count: watchers,
      mode,
    });
  const oursIdle = await watch('library');
  const rawIdle = await watch('raw');
  const connected = oursIdle.connected;
  report({
    id: '7',
    title: 'Mail: connectImap vs raw imapflow (same token, same Dovecot); idle watchers',
    figures: {
      'connectImap median ms': ours.median,
      'raw imapflow median ms': raw.median,
      ratio: ours.median / raw.median,
      'watchers connected': connected,
      'RSS per idle watcher KB': oursIdle.rssPerWatcherKb,
      'JS memory per idle watcher KB (heap + buffers, after GC)': oursIdle.usedPerWatcherKb,
      'raw imapflow IDLE connections': rawIdle.connected,
      'raw imapflow RSS per idle connection KB': rawIdle.rssPerWatcherKb,
      'raw imapflow JS memory per idle connection KB': rawIdle.usedPerWatcherKb,
    },
    target: `ratio <= 1.1; RSS per idle watcher reported (${watchers} watchers, raw imapflow beside it)`,
    met: SMOKE
      ? null
      : ours.median / raw.median <= 1.1 && connected === watchers && rawIdle.connected === watchers,
  });
  auth.refresher.close();
  await dovecot.stop();
  await server.close();
}

/** Run one case-7 memory measurement in a fresh process (bench/watchers-worker.ts). */
const watchersRun = (input: WatchersWorkerInput) =>
  runInFreshProcess<WatchersWorkerInput, WatchersWorkerResult>('bench/watchers-worker.ts', input);

// 8. Import cost ---------------------------------------------------------------------------------------
async function importCost() {
  const runs = SMOKE ? 2 : 10;
  const esm: number[] = [];
  const driversLoaded: string[] = [];
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const t = performance.now(); await import('./dist/index.js'); console.log(performance.now() - t);",
      ],
      { encoding: 'utf8' },
    );
    esm.push(Number(out.trim()));
  }
  const loaded = execFileSync(
    process.execPath,
    ['-e', "require('./dist/index.cjs'); console.log(JSON.stringify(Object.keys(require.cache)))"],
    { encoding: 'utf8' },
  );
  for (const driver of [
    '/node_modules/pg/',
    '/node_modules/ioredis/',
    '/node_modules/@electric-sql/pglite/',
    '/node_modules/imapflow/',
    '/node_modules/nodemailer/',
    '/node_modules/@opentelemetry/',
  ]) {
    if (loaded.includes(driver)) driversLoaded.push(driver);
  }
  esm.sort((a, b) => a - b);
  report({
    id: '8',
    title: "Cost of import('oauth-mailbox') in a fresh process; drivers loaded by the main entry",
    figures: {
      'median import ms': esm[Math.floor(esm.length / 2)] as number,
      'drivers loaded': driversLoaded.length === 0 ? 'none' : driversLoaded.join(', '),
    },
    target:
      'pg / ioredis / PGlite not loaded (imapflow, nodemailer and @opentelemetry/api load on first use)',
    met: driversLoaded.length === 0,
  });
}

async function main() {
  const started = Date.now();
  console.log(
    `oauth-mailbox benchmarks${SMOKE ? ' (smoke)' : ''}: Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
  );
  const only = process.argv
    .find((a) => a.startsWith('--only='))
    ?.slice('--only='.length)
    .split(',');
  const cases = {
    '1': hotPath,
    '2': warmPath,
    '3': coalescing,
    '4': fleet,
    '5': bulk,
    '6': encryption,
    '7': mail,
    '8': importCost,
    '9': scale,
    '10': heapSlope,
  };
  for (const [id, run] of Object.entries(cases)) if (only === undefined || only.includes(id)) await run();
  const machine = {
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
  const output = {
    date: new Date().toISOString(),
    smoke: SMOKE,
    machine,
    durationMs: Date.now() - started,
    results,
  };
  console.log(
    `\n${results.filter((r) => r.met === true).length} met, ${results.filter((r) => r.met === false).length} missed, ${results.filter((r) => r.met === null).length} informational in ${Math.round((Date.now() - started) / 1000)} s`,
  );
  if (SMOKE || only !== undefined) return; // partial runs do not overwrite the recorded results
  writeFileSync('bench/results.json', `${JSON.stringify(output, null, 2)}\n`);
  writeFileSync('docs/performance.svg', renderChart(output));
  const doc = readFileSync('docs/performance.md', 'utf8');
  const table = [
    `Run on ${output.date.slice(0, 10)}: Node ${machine.node}, ${machine.cpus} × ${machine.cpu}, ${machine.memoryGiB} GiB (\`npm run bench\`, ${Math.round(output.durationMs / 1000)} s).`,
    '',
    '| Case | Figures | Target | Result |',
    '|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.id}. ${r.title} | ${Object.entries(r.figures)
          .map(([k, v]) => `${k}: **${typeof v === 'number' ? round(v) : v}**`)
          .join('<br>')} | ${r.target} | ${r.met === null ? 'info' : r.met ? 'met' : 'missed'} |`,
    ),
  ].join('\n');
  writeFileSync(
    'docs/performance.md',
    doc.replace(/<!-- results -->[\s\S]*<!-- \/results -->/, `<!-- results -->\n${table}\n<!-- /results -->`),
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
