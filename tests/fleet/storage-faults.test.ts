/**
 * The database goes away in the middle of a refresh (after the provider rotated the refresh token, before
 * it was stored): typed storage errors, the new tokens kept in memory, and stored when the database is back.
 */
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type AccountStore,
  ProviderRegistry,
  StorageError,
  TokenPersistence,
  TokenRefresher,
} from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';
import { redisStore } from '../../src/redis.js';
import { waitFor } from '../support/async.js';
import { testCipher } from '../support/auth.js';
import { recordingLogger } from '../support/refresh.js';
import { requireService } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { startTokenServer, tokenServerProvider } from '../support/token-server.js';

const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');
const REDIS_URL = requireService('REDIS_URL', 'Redis');

interface Harness {
  readonly name: string;
  open(proxyPort: number, namespace: string): Promise<{ store: AccountStore; close(): Promise<void> }>;
  readonly target: { host: string; port: number };
}

const harnesses: Harness[] = [];
if (DATABASE_URL) {
  const url = new URL(DATABASE_URL);
  harnesses.push({
    name: 'PostgreSQL',
    target: { host: url.hostname, port: Number(url.port || 5432) },
    async open(port, namespace) {
      const proxied = new URL(DATABASE_URL);
      proxied.port = String(port);
      const pool = new pg.Pool({ connectionString: proxied.href, max: 4, connectionTimeoutMillis: 1000 });
      pool.on('error', () => {}); // idle clients die with the connection; the pool replaces them
      const store = postgresStore({ client: pool, schema: namespace });
      await store.migrate();
      return {
        store,
        close: async () => {
          const direct = new pg.Client({ connectionString: DATABASE_URL });
          await direct.connect();
          await direct.query(`DROP SCHEMA ${namespace} CASCADE`);
          await direct.end();
          await pool.end().catch(() => {});
        },
      };
    },
  });
}
if (REDIS_URL) {
  const url = new URL(REDIS_URL);
  harnesses.push({
    name: 'Redis',
    target: { host: url.hostname, port: Number(url.port || 6379) },
    async open(port, namespace) {
      const client = new Redis({
        host: '127.0.0.1',
        port,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 100,
        enableOfflineQueue: false,
      });
      client.on('error', () => {}); // expected while the proxy is cut; ioredis reconnects
      await new Promise((resolve) => client.once('ready', resolve));
      return {
        store: redisStore({ client, prefix: namespace }),
        close: async () => {
          const direct = new Redis(REDIS_URL);
          const keys = await direct.keys(`${namespace}*`);
          if (keys.length > 0) await direct.del(...keys);
          await direct.quit();
          client.disconnect();
        },
      };
    },
  });
}

if (harnesses.length === 0) it.skip('storage faults (set DATABASE_URL and/or REDIS_URL)', () => {});

describe.each(harnesses)('storage faults: $name', (harness) => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('keeps rotated tokens through an outage and stores them when the database returns', async () => {
    const server = await startTokenServer({ latencyMs: 400 });
    const proxy: TcpProxy = await startTcpProxy(harness.target);
    closers.push(
      () => server.close(),
      () => proxy.close(),
    );
    const namespace =
      harness.name === 'Redis'
        ? `om-fault:${randomBytes(4).toString('hex')}:`
        : `om_fault_${randomBytes(4).toString('hex')}`;
    const { store, close } = await harness.open(proxy.port, namespace);
    closers.push(close);
    const persistence = new TokenPersistence({ store, cipher: testCipher() });
    const registry = new ProviderRegistry([
      tokenServerProvider(server.url, { identify: async () => ({ email: 'x@example.com' }) }),
    ]);
    const accounts = [];
    for (const email of ['a@example.com', 'b@example.com']) {
      const { account } = await persistence.connect({
        provider: 'rotating',
        owner: 'o',
        email,
        tokens: {
          accessToken: 'old',
          refreshToken: server.issueRefreshToken(email),
          expiresAt: Date.now() - 1,
        },
      });
      accounts.push(account);
    }
    const [a, b] = accounts as [(typeof accounts)[0], (typeof accounts)[0]];
    const logger = recordingLogger();
    const refresher = new TokenRefresher({ persistence, registry, logger, retry: { retries: 0 } });
    closers.push(async () => refresher.close());

    const pending = refresher.getAccessToken(a.id);
    // The refresh request is at the provider (the token rotated; its answer comes 400 ms later, a timer due
    // after the one that sees it arrive): the database goes away now.
    await waitFor(() => (server.stats.refreshes === 1 ? true : undefined));
    proxy.cut();
    const token = await pending;
    expect(token.accessToken).toBe(server.latest('a@example.com').accessToken);
    expect(refresher.pendingWrites()).toEqual([a.id]);
    expect(
      logger.lines.some((l) => l.includes('could not store refreshed tokens') && l.includes('ERR_STORAGE')),
    ).toBe(true);
    // The hot path still serves the new token; other accounts get typed storage errors.
    expect((await refresher.getAccessToken(a.id)).accessToken).toBe(token.accessToken);
    await expect(refresher.getAccessToken(b.id)).rejects.toBeInstanceOf(StorageError);

    // The background write is retried while the database is away (and fails), then it comes back.
    const retrying = () =>
      logger.lines.some((l) => l.includes('retrying the store write of refreshed tokens'));
    await waitFor(() => (retrying() ? true : undefined));
    proxy.restore();
    await waitFor(() => (refresher.pendingWrites().length === 0 ? true : undefined), 10_000).catch(() => {});
    expect(refresher.pendingWrites()).toEqual([]);
    const stored = await persistence.load(a.id);
    expect(stored.tokens?.refreshToken).toBe(server.latest('a@example.com').refreshToken);
    expect(stored.tokens?.accessToken).toBe(token.accessToken);
    expect(server.stats.invalidGrants).toBe(0);
    // And the next refresh uses the stored (newest) refresh token.
    await refresher.getAccessToken(a.id, { forceRefresh: true });
    expect(server.stats.invalidGrants).toBe(0);
  }, 30_000);
});
