/**
 * The CLI as a real process, on every store: it exits as soon as it has printed, because it closes the auth
 * and calls the configuration's `close` export (a pg pool without an idle timeout, an ioredis client and a
 * PGlite instance each keep a process alive until closed). The deadline only bounds a failure: the test
 * waits for the process's `exit` event.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { requireService } from '../support/services.js';

const DATABASE_URL = requireService('DATABASE_URL', 'PostgreSQL');
const REDIS_URL = requireService('REDIS_URL', 'Redis');

// A failure bound only (PGlite alone takes seconds to start on a loaded machine).
const DEADLINE_MS = 30_000;
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const BIN = resolve('src/cli/bin.ts');
const require = createRequire(import.meta.url);
/** Imports a temporary directory can resolve (it has no node_modules). */
const module = (name: string) => JSON.stringify(pathToFileURL(require.resolve(name)).href);
const LIBRARY = JSON.stringify(pathToFileURL(resolve('src/index.ts')).href);
const POSTGRES = JSON.stringify(pathToFileURL(resolve('src/postgres.ts')).href);
const REDIS = JSON.stringify(pathToFileURL(resolve('src/redis.ts')).href);

const AUTH = `createMailboxAuth({ providers: [], store, cipher: aesGcmCipher({ keys: { k: Buffer.from('0123456789abcdef0123456789abcdef') }, current: 'k' }) })`;

/**
 * Stores a configuration may build, each with the `close` export that ends its client (and says so on
 * stderr: the CLI called it).
 */
const STORES = {
  memory: `import { createMailboxAuth, memoryStore, aesGcmCipher } from ${LIBRARY};
const store = memoryStore();
export default () => ${AUTH};`,
  pglite: `import { createMailboxAuth, aesGcmCipher } from ${LIBRARY};
import { postgresStore } from ${POSTGRES};
import { PGlite } from ${module('@electric-sql/pglite')};
const db = new PGlite();
const store = postgresStore({ client: db });
export default async () => { await store.migrate(); return ${AUTH}; };
export const close = async () => { await db.close(); process.stderr.write('closed\\n'); };`,
  postgres: `import { createMailboxAuth, aesGcmCipher } from ${LIBRARY};
import { postgresStore } from ${POSTGRES};
import pg from ${module('pg')};
// No idle timeout: the pool's connection keeps the process alive until pool.end().
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, idleTimeoutMillis: 0 });
const store = postgresStore({ client: pool });
export default async () => { await store.migrate(); return ${AUTH}; };
export const close = async () => { await pool.end(); process.stderr.write('closed\\n'); };`,
  redis: `import { createMailboxAuth, aesGcmCipher } from ${LIBRARY};
import { redisStore } from ${REDIS};
import Redis from ${module('ioredis')};
const client = new Redis(process.env.REDIS_URL);
const store = redisStore({ client, prefix: 'cli-process-test:' });
export default () => ${AUTH};
export const close = async () => { await client.quit(); process.stderr.write('closed\\n'); };`,
} as const;

interface Exited {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Wait for the child's `exit` event; past the deadline, kill it and fail. */
function exited(child: ChildProcess, what: string): Promise<Exited> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolvePromise, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not exit within ${DEADLINE_MS} ms (stderr: ${stderr.slice(0, 500)})`));
    }, DEADLINE_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(deadline);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Run `oauth-mailbox <args>` in a temporary directory holding `config` as its configuration module. */
function runCliProcess(config: string, args: readonly string[]): Promise<Exited> {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-mailbox-cli-process-'));
  writeFileSync(join(dir, 'oauth-mailbox.config.mts'), config);
  const child = spawn(
    process.execPath,
    ['--import', TSX, BIN, ...args, '--config', 'oauth-mailbox.config.mts'],
    { cwd: dir, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return exited(child, `oauth-mailbox ${args.join(' ')}`);
}

const services: Record<keyof typeof STORES, string | undefined> = {
  memory: 'always',
  pglite: 'always',
  postgres: DATABASE_URL,
  redis: REDIS_URL,
};

describe('the CLI process exits once it has printed', () => {
  for (const [name, config] of Object.entries(STORES) as [keyof typeof STORES, string][]) {
    it.skipIf(services[name] === undefined)(`on the ${name} store`, async () => {
      const owner = `nobody-${randomBytes(6).toString('hex')}`;
      const run = await runCliProcess(config, ['list', '--json', '--owner', owner]);
      // Closed by its close export (memory has none to call), not ended by the grace period.
      expect(run.stderr).toBe(name === 'memory' ? '' : 'closed\n');
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual([]);
    });
  }

  it('exits after a failed command too, having closed the configuration', async () => {
    const run = await runCliProcess(STORES.pglite, ['health', '--account', 'no-such-account']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/ERR_ACCOUNT_NOT_FOUND.*\nclosed\n$/);
  });

  it.skipIf(REDIS_URL === undefined)(
    'ends a process whose configuration has no close export, saying why',
    async () => {
      const config = STORES.redis.replace(/export const close.*$/m, '');
      const run = await runCliProcess(config, ['list', '--json', '--owner', 'nobody']);
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual([]);
      expect(run.stderr).toMatch(/left connections open; export a close\(\)/);
    },
  );
});
