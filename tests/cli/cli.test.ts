import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { describe, expect, it } from 'vitest';
import { EXIT, parseDuration, runCli } from '../../src/cli/run.js';
import { type AccountStore, createMailboxAuth, type StateStore } from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';
import { cliIo } from '../support/cli.js';
import { mswServer } from '../support/flow.js';
import { expiredAccount } from '../support/refresh.js';

const server = mswServer();

const io = cliIo;

async function fleet(accounts = 3, store?: AccountStore & StateStore) {
  const setup = await expiredAccount(server, { accounts, ...(store ? { store } : {}) });
  const auth = createMailboxAuth({
    providers: setup.registry,
    store: setup.store as never,
    cipher: setup.cipher,
    refresh: { retry: { retries: 0 } },
  });
  return { ...setup, auth };
}

describe('oauth-mailbox CLI', () => {
  it('lists accounts as a table and as JSON, with filters', async () => {
    const { auth, ids } = await fleet(2);
    const t = io(auth);
    expect(await runCli(['list'], t.io)).toBe(EXIT.OK);
    const text = t.out.join('');
    expect(text).toMatch(/^ID\s+PROVIDER\s+OWNER\s+EMAIL\s+STATUS\s+EXPIRES\s+FAILURES/);
    expect(text).toContain('user1@contoso.com');
    const j = io(auth);
    expect(await runCli(['list', '--json', '--status', 'active'], j.io)).toBe(EXIT.OK);
    const listed = JSON.parse(j.out.join(''));
    expect(listed.map((a: { id: string }) => a.id).sort()).toEqual([...ids].sort());
    expect(j.out.join('')).not.toMatch(/secret|accessToken|refreshToken/);
    const none = io(auth);
    await runCli(['list', '--provider', 'google'], none.io);
    expect(none.out.join('')).toBe('No accounts.\n');
  });

  it('refreshes expiring accounts with progress on a TTY and a JSON report', async () => {
    const { auth, fake } = await fleet(3);
    fake.revokeUser('user2@contoso.com');
    const tty = io(auth, { tty: true });
    const code = await runCli(['refresh', '--expiring-within', '7d', '--concurrency', '2'], tty.io);
    expect(code).toBe(EXIT.DEGRADED);
    expect(tty.err.join('')).toContain('\rscanned');
    expect(tty.out.join('')).toMatch(/refreshed 2 of 3 scanned \(skipped 0, failed 1\)/);
    expect(tty.out.join('')).toContain('ERR_REAUTHORIZATION_REQUIRED: 1');
    const again = io(auth);
    expect(await runCli(['refresh', '--expiring-within', '30m', '--json'], again.io)).toBe(EXIT.OK);
    expect(JSON.parse(again.out.join(''))).toMatchObject({ scanned: 0, refreshed: 0, failed: 0 });
  });

  it('supports --dry-run and --account', async () => {
    const { auth, ids, fake } = await fleet(2);
    const dry = io(auth);
    expect(
      await runCli(
        ['refresh', '--expiring-within', '30m', '--dry-run', '--account', ids[0] as string, '--json'],
        dry.io,
      ),
    ).toBe(EXIT.OK);
    expect(JSON.parse(dry.out.join(''))).toMatchObject({ scanned: 1, refreshed: 1, dryRun: true });
    expect(fake.stats.tokenRequests).toBe(0);
  });

  it('reports health with a meaningful exit code', async () => {
    const { auth, ids, persistence } = await fleet(2);
    const ok = io(auth);
    expect(await runCli(['health'], ok.io)).toBe(EXIT.OK);
    expect(ok.out.join('')).toContain('status: healthy');
    await persistence.recordFailure(
      ids[0] as string,
      { code: 'ERR_REAUTHORIZATION_REQUIRED', message: 'x' },
      { status: 'reauth_required' },
    );
    const bad = io(auth);
    expect(await runCli(['health', '--json'], bad.io)).toBe(EXIT.DEGRADED);
    expect(JSON.parse(bad.out.join(''))).toMatchObject({
      total: 2,
      byStatus: { reauth_required: 1 },
      healthy: false,
    });
  });

  it('rotates keys', async () => {
    const { auth } = await fleet(2);
    const t = io(auth);
    expect(await runCli(['rotate-keys', '--batch-size', '1', '--json'], t.io)).toBe(EXIT.OK);
    expect(JSON.parse(t.out.join(''))).toMatchObject({ scanned: 2, reencrypted: 0, failed: 0, cursor: null });
  });

  it.each([
    [[], EXIT.USAGE, /Usage/],
    [['frobnicate'], EXIT.USAGE, /unknown command "frobnicate"/],
    [['refresh'], EXIT.USAGE, /needs --expiring-within/],
    [['refresh', '--expiring-within', 'soon'], EXIT.USAGE, /invalid duration "soon"/],
    [
      ['refresh', '--expiring-within', '7d', '--concurrency', '0'],
      EXIT.USAGE,
      /--concurrency must be a positive integer/,
    ],
    [
      ['refresh', '--expiring-within', '7d', '--concurrency', '40000'],
      EXIT.USAGE,
      /--concurrency must be a positive integer of at most 256 \(got "40000"\)/,
    ],
    [
      ['refresh', '--expiring-within', '7d', '--concurrency', '4294967296'],
      EXIT.USAGE,
      /--concurrency must be a positive integer of at most 256/,
    ],
    [
      ['rotate-keys', '--batch-size', '5000'],
      EXIT.USAGE,
      /--batch-size must be a positive integer of at most 1000/,
    ],
    [['list', '--status', 'sleeping'], EXIT.USAGE, /--status must be one of/],
    [['list', '--dry-run'], EXIT.USAGE, /--dry-run does not apply to "list"/],
    [['list', '--bogus'], EXIT.USAGE, /Unknown option '--bogus'/],
    [['list', 'extra'], EXIT.USAGE, /unexpected argument "extra"/],
  ])('refuses bad arguments: %j', async (argv, code, message) => {
    const t = io({});
    expect(await runCli(argv, t.io)).toBe(code);
    expect(t.err.join('')).toMatch(message);
  });

  it('prints help on --help', async () => {
    const t = io({});
    expect(await runCli(['--help'], t.io)).toBe(EXIT.OK);
    expect(t.out.join('')).toContain('Exit codes');
  });

  it('explains a missing or invalid configuration', async () => {
    const missing = io({});
    expect(await runCli(['list', '--config', 'nope.mjs'], missing.io)).toBe(EXIT.CONFIG);
    expect(missing.err.join('')).toMatch(/no configuration found \(looked for nope\.mjs\)/);
    const invalid = io({ not: 'an auth' });
    expect(await runCli(['list'], invalid.io)).toBe(EXIT.CONFIG);
    expect(invalid.err.join('')).toMatch(/must export default a MailboxAuth/);
  });

  it('accepts a config function and reports store failures', async () => {
    const { auth } = await fleet(1);
    const broken = {
      ...auth,
      persistence: {
        listAccounts: async () => {
          const { StorageError } = await import('../../src/index.js');
          throw new StorageError('The account store failed (listAccounts)');
        },
      },
    };
    const t = io(() => Promise.resolve(broken));
    expect(await runCli(['list'], t.io)).toBe(EXIT.FAILURE);
    expect(t.err.join('')).toContain('ERR_STORAGE: The account store failed (listAccounts)');
  });

  it('parses durations', () => {
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('12h')).toBe(43_200_000);
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2w')).toBe(1_209_600_000);
    expect(parseDuration('1500')).toBe(1500);
    expect(() => parseDuration('-1d')).toThrow();
  });

  it('runs as a process (bin entry, config module, exit code)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-mailbox-bin-'));
    const src = resolve('src/index.ts');
    writeFileSync(
      join(dir, 'oauth-mailbox.config.mts'),
      `import { createMailboxAuth, memoryStore, aesGcmCipher } from ${JSON.stringify(src)};
export default () => createMailboxAuth({ providers: [], store: memoryStore(), cipher: aesGcmCipher({ keys: { k: Buffer.from('0123456789abcdef0123456789abcdef') }, current: 'k' }) });`,
    );
    const run = promisify(execFile);
    const tsx = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        tsx,
        resolve('src/cli/bin.ts'),
        'health',
        '--json',
        '--config',
        'oauth-mailbox.config.mts',
      ],
      {
        cwd: dir,
      },
    );
    expect(JSON.parse(stdout)).toMatchObject({ total: 0, healthy: true });
    const failed = await run(process.execPath, ['--import', tsx, resolve('src/cli/bin.ts'), 'nope'], {
      cwd: dir,
    }).catch((e) => e);
    expect(failed.code).toBe(EXIT.USAGE);
  });

  it('runs every command against a PGlite-backed store', async () => {
    const db = new PGlite();
    const store = postgresStore({ client: db });
    await store.migrate();
    const { auth, fake } = await fleet(3, store);
    fake.revokeUser('user1@contoso.com');
    const list = io(auth);
    expect(await runCli(['list', '--json'], list.io)).toBe(EXIT.OK);
    expect(JSON.parse(list.out.join(''))).toHaveLength(3);
    const refresh = io(auth);
    expect(await runCli(['refresh', '--expiring-within', '7d', '--json'], refresh.io)).toBe(EXIT.DEGRADED);
    expect(JSON.parse(refresh.out.join(''))).toMatchObject({ scanned: 3, refreshed: 2, failed: 1 });
    const healthCheck = io(auth);
    expect(await runCli(['health', '--json'], healthCheck.io)).toBe(EXIT.DEGRADED);
    expect(JSON.parse(healthCheck.out.join(''))).toMatchObject({
      byStatus: { active: 2, reauth_required: 1 },
    });
    const rotate = io(auth);
    expect(await runCli(['rotate-keys', '--json'], rotate.io)).toBe(EXIT.OK);
    expect(JSON.parse(rotate.out.join(''))).toMatchObject({ scanned: 3, failed: 0 });
    await db.close();
  });
});
