/**
 * The property no peer library has: N processes sharing one store, M accounts expired at once, a token
 * server that rotates refresh tokens and answers any reuse with invalid_grant. Exactly M token requests,
 * zero invalid_grant, every worker ends with the valid token, every record holds the newest refresh token.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Redis from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { type AccountStore, aesGcmCipher, type RefreshReport, TokenPersistence } from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';
import { redisStore } from '../../src/redis.js';
import { waitFor } from '../support/async.js';
import { requireService } from '../support/services.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';
import type { WorkerConfig, WorkerResult } from './worker.js';

const WORKERS = 4;
const ACCOUNTS = 50;
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const WORKER = resolve('tests/fleet/worker.ts');

interface Engine {
  readonly name: 'postgres' | 'redis';
  readonly url: string;
  store(namespace: string): Promise<{ store: AccountStore; close(): Promise<void> }>;
}

const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');
const REDIS_URL = requireService('REDIS_URL', 'Redis');
const engines: Engine[] = [];
if (DATABASE_URL) {
  engines.push({
    name: 'postgres',
    url: DATABASE_URL,
    async store(namespace) {
      const pool = new pg.Pool({ connectionString: DATABASE_URL });
      const store = postgresStore({ client: pool, schema: namespace });
      await store.migrate();
      return {
        store,
        close: async () => {
          await pool.query(`DROP SCHEMA ${namespace} CASCADE`);
          await pool.end();
        },
      };
    },
  });
}
if (REDIS_URL) {
  engines.push({
    name: 'redis',
    url: REDIS_URL,
    async store(namespace) {
      const client = new Redis(REDIS_URL);
      return {
        store: redisStore({ client, prefix: namespace }),
        close: async () => {
          const keys = await client.keys(`${namespace}*`);
          if (keys.length > 0) await client.del(...keys);
          await client.quit();
        },
      };
    },
  });
}

function startWorker(config: WorkerConfig): {
  child: ChildProcess;
  ready: Promise<void>;
  done: Promise<WorkerResult[]>;
  report: Promise<RefreshReport>;
} {
  const child = fork(WORKER, [JSON.stringify(config)], {
    execArgv: ['--import', TSX],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  const message = new Promise<{ results?: WorkerResult[]; report?: RefreshReport }>((resolveDone, reject) => {
    child.on('message', (m: { ready?: boolean; results?: WorkerResult[]; report?: RefreshReport }) => {
      if (m.ready) onReady();
      if (m.results || m.report) resolveDone(m);
    });
    child.on('exit', (code, signal) =>
      reject(new Error(`worker exited (${code ?? signal}) before reporting`)),
    );
  });
  const field = <K extends 'results' | 'report'>(key: K) =>
    message.then((m) => {
      const value = m[key];
      if (value === undefined) throw new Error(`the worker reported no ${key}`);
      return value as NonNullable<(typeof m)[K]>;
    });
  return {
    child,
    ready,
    get done() {
      return field('results');
    },
    get report() {
      return field('report');
    },
  };
}

// Without DATABASE_URL and REDIS_URL there is nothing to run: say so instead of an empty file.
if (engines.length === 0)
  it.skip('exactly-once across processes (set DATABASE_URL and/or REDIS_URL)', () => {});

describe.each(engines)('exactly-once refresh across processes: $name', (engine) => {
  let server: TokenServer;
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
    await server?.close();
  });

  async function seed(accounts: number, tokens?: TokenServer) {
    server ??= await startTokenServer({ latencyMs: 20 });
    const issuer = tokens ?? server;
    const namespace =
      engine.name === 'postgres'
        ? `om_fleet_${randomBytes(5).toString('hex')}`
        : `om-fleet:${randomBytes(5).toString('hex')}:`;
    const { store, close } = await engine.store(namespace);
    cleanups.push(close);
    const key = randomBytes(32);
    const persistence = new TokenPersistence({
      store,
      cipher: aesGcmCipher({ keys: { k1: key }, current: 'k1' }),
    });
    const ids: string[] = [];
    for (let i = 0; i < accounts; i++) {
      const email = `user${i}-${randomBytes(3).toString('hex')}@example.com`;
      const { account } = await persistence.connect({
        provider: 'rotating',
        owner: 'fleet',
        email,
        tokens: {
          accessToken: 'expired',
          refreshToken: issuer.issueRefreshToken(email),
          expiresAt: Date.now() - 1000,
        },
        metadata: { email },
      });
      ids.push(account.id);
    }
    const config = (overrides: Partial<WorkerConfig> = {}): WorkerConfig => ({
      engine: engine.name,
      url: engine.url,
      namespace,
      keyHex: key.toString('hex'),
      tokenServer: issuer.url,
      ids,
      leaseTtlMs: 30_000,
      waitForOtherRefreshMs: 60_000,
      ...overrides,
    });
    return { persistence, ids, config };
  }

  it(`${WORKERS} workers × ${ACCOUNTS} expired accounts: exactly ${ACCOUNTS} token requests, no invalid_grant`, async () => {
    const { persistence, ids, config } = await seed(ACCOUNTS);
    const before = { ...server.stats };
    const workers = Array.from({ length: WORKERS }, () => startWorker(config()));
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.child.send({ go: true });
    const results = await Promise.all(workers.map((w) => w.done));

    expect(server.stats.refreshes - before.refreshes).toBe(ACCOUNTS);
    expect(server.stats.invalidGrants - before.invalidGrants).toBe(0);
    for (const [i, id] of ids.entries()) {
      const { account, tokens } = await persistence.load(id);
      const email = account.metadata.email as string;
      const newest = server.latest(email);
      expect(tokens?.refreshToken).toBe(newest.refreshToken);
      expect(tokens?.accessToken).toBe(newest.accessToken);
      expect(account.status).toBe('active');
      for (const workerResults of results) {
        const r = workerResults[i];
        expect(r).toEqual({ id, ok: true, token: newest.accessToken });
      }
    }
  }, 60_000);

  it('two instances running refreshExpiring at once split the accounts: each refreshed once, no leader', async () => {
    const accounts = 60;
    const tokens = await startTokenServer({ latencyMs: 5 });
    cleanups.push(() => tokens.close());
    const { persistence, ids, config } = await seed(accounts, tokens);
    // No answer until both instances have asked for a token: neither can finish the run alone, and an
    // instance that waited for the other's leases instead of moving on would never ask.
    tokens.holdUntilClients(2);
    const workers = ['instance-a', 'instance-b'].map((clientId) =>
      startWorker(config({ mode: 'refreshExpiring', clientId })),
    );
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.child.send({ go: true });
    const reports = await Promise.all(workers.map((w) => w.report));
    expect(tokens.stats.refreshes).toBe(accounts);
    expect(tokens.stats.invalidGrants).toBe(0);
    expect(reports.reduce((n, r) => n + r.refreshed, 0)).toBe(accounts);
    for (const [i, report] of reports.entries()) {
      expect(report.failed).toBe(0);
      expect(report.refreshed).toBeGreaterThan(0);
      expect(report.refreshed).toBe(tokens.byClient.get(i === 0 ? 'instance-a' : 'instance-b'));
      expect(report.refreshed + report.skipped + report.inProgressElsewhere).toBe(report.scanned);
    }
    expect(reports.reduce((n, r) => n + r.inProgressElsewhere, 0)).toBeGreaterThan(0);
    for (const id of ids) {
      const { account, tokens: stored } = await persistence.load(id);
      expect(stored?.refreshToken).toBe(tokens.latest(account.metadata.email as string).refreshToken);
    }
  }, 60_000);

  it.each([60, 300])(
    `tokens that live %i s: ${WORKERS} workers × 5 calls refresh each account once, all with the same token`,
    async (ttlS) => {
      const short = await startTokenServer({ latencyMs: 20, accessTokenTtlS: ttlS });
      cleanups.push(() => short.close());
      const accounts = 20;
      const { persistence, ids, config } = await seed(accounts, short);
      const workers = Array.from({ length: WORKERS }, () => startWorker(config({ calls: 5 })));
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.child.send({ go: true });
      const results = await Promise.all(workers.map((w) => w.done));
      // With the 5-minute skew unclamped, every call refreshed: up to 4 × 5 × 20 requests, diverging tokens.
      expect(short.stats.refreshes).toBe(accounts);
      expect(short.stats.invalidGrants).toBe(0);
      for (const [i, id] of ids.entries()) {
        const { account } = await persistence.load(id);
        const newest = short.latest(account.metadata.email as string);
        for (const workerResults of results)
          expect(workerResults[i]).toEqual({ id, ok: true, token: newest.accessToken });
      }
    },
    60_000,
  );

  it('a worker killed while holding a lease blocks the account only until the lease lapses', async () => {
    const { persistence, ids, config } = await seed(1);
    const id = ids[0] as string;
    const email = (await persistence.getAccount(id)).metadata.email as string;
    server.hang(email);
    const hangingBefore = server.stats.hanging;
    const doomed = startWorker(config({ leaseTtlMs: 1500 }));
    await doomed.ready;
    doomed.child.send({ go: true });
    await waitFor(() => (server.stats.hanging !== hangingBefore ? true : undefined), 5_000).catch(() => {});
    expect(server.stats.hanging).toBe(hangingBefore + 1);
    doomed.child.kill('SIGKILL');
    await doomed.done.catch(() => undefined);
    server.unhang(email);

    const survivor = startWorker(config({ leaseTtlMs: 1500 }));
    await survivor.ready;
    const started = Date.now();
    survivor.child.send({ go: true });
    const [result] = await survivor.done;
    const waited = Date.now() - started;
    expect(result).toEqual({ id, ok: true, token: server.latest(email).accessToken });
    expect(waited).toBeLessThan(1500 + 5000);
    expect((await persistence.load(id)).tokens?.refreshToken).toBe(server.latest(email).refreshToken);
  }, 60_000);
});
