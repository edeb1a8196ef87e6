/**
 * A worker process of the exactly-once test: its own store client, persistence, provider and refresher,
 * sharing only the database with its siblings. Started with `fork`; talks to the parent over IPC.
 */
import Redis from 'ioredis';
import pg from 'pg';
import {
  type AccountStore,
  ProviderRegistry,
  type RefreshReport,
  refreshExpiring,
  TokenPersistence,
  TokenRefresher,
} from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';
import { redisStore } from '../../src/redis.js';
import { testCipher } from '../support/auth.js';
import { tokenServerProvider } from '../support/token-server.js';

export interface WorkerConfig {
  readonly engine: 'postgres' | 'redis';
  readonly url: string;
  readonly namespace: string;
  readonly keyHex: string;
  readonly tokenServer: string;
  readonly ids: readonly string[];
  /** The refresher's `leaseTtlMs`. @default the refresher's default */
  readonly leaseTtlMs?: number;
  /** The refresher's `waitForOtherRefreshMs`. @default the refresher's default */
  readonly waitForOtherRefreshMs?: number;
  /** getAccessToken calls per account, one after another. @default 1 */
  readonly calls?: number;
  /** `refreshExpiring`: one bulk refresh of every expired account (concurrency 8) instead of the calls. */
  readonly mode?: 'get' | 'refreshExpiring';
  /** The OAuth client id (the token server counts requests per client). @default 'fleet-client' */
  readonly clientId?: string;
}

export type WorkerResult =
  | { readonly id: string; readonly ok: true; readonly token: string }
  | { readonly id: string; readonly ok: false; readonly code: string };

const config = JSON.parse(process.argv[2] as string) as WorkerConfig;
const pool =
  config.engine === 'postgres' ? new pg.Pool({ connectionString: config.url, max: 10 }) : undefined;
const redis = config.engine === 'redis' ? new Redis(config.url) : undefined;
/** Queries this process sent through the pool (each one round trip and one implicit transaction). */
let statements = 0;
if (pool !== undefined) {
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    statements++;
    return query(...args);
  };
}
const store: AccountStore = pool
  ? postgresStore({ client: pool, schema: config.namespace })
  : redisStore({ client: redis as Redis, prefix: config.namespace });
const persistence = new TokenPersistence({ store, cipher: testCipher(Buffer.from(config.keyHex, 'hex')) });
const registry = new ProviderRegistry([
  tokenServerProvider(config.tokenServer, {
    clientId: config.clientId ?? 'fleet-client',
    clientSecret: 'fleet-secret',
    redirectUri: 'http://127.0.0.1/callback',
  }),
]);
const refresher = new TokenRefresher({
  persistence,
  registry,
  holderId: `worker-${process.pid}`,
  ...(config.leaseTtlMs === undefined ? {} : { leaseTtlMs: config.leaseTtlMs }),
  ...(config.waitForOtherRefreshMs === undefined
    ? {}
    : { waitForOtherRefreshMs: config.waitForOtherRefreshMs }),
  retry: { retries: 2, minDelayMs: 20, maxDelayMs: 200 },
});

const finish = (message: unknown) =>
  process.send?.(message, () => {
    refresher.close();
    void Promise.all([pool?.end(), redis?.quit()]).finally(() => process.exit(0));
  });

process.on('message', async (message: { go?: boolean }) => {
  if (!message.go) return;
  if (config.mode === 'refreshExpiring') {
    const report: RefreshReport = await refreshExpiring(refresher, persistence, {
      withinMs: 60_000,
      concurrency: 8,
    });
    finish({ report });
    return;
  }
  const settled = await Promise.allSettled(
    config.ids.map(async (id) => {
      let token = await refresher.getAccessToken(id);
      for (let call = 1; call < (config.calls ?? 1); call++) token = await refresher.getAccessToken(id);
      return token;
    }),
  );
  const results: WorkerResult[] = settled.map((r, i) => {
    const id = config.ids[i] as string;
    return r.status === 'fulfilled'
      ? { id, ok: true, token: r.value.accessToken }
      : { id, ok: false, code: (r.reason as { code?: string }).code ?? String(r.reason) };
  });
  finish({ results, statements });
});
process.send?.({ ready: true });
