import { describe, expect, it } from 'vitest';
import { progressLine } from '../../src/cli/progress.js';
import { EXIT, runCli } from '../../src/cli/run.js';
import { createMailboxAuth, StorageError } from '../../src/index.js';
import { cliIo } from '../support/cli.js';
import { mswServer } from '../support/flow.js';
import { expiredAccount } from '../support/refresh.js';

const server = mswServer();

const io = cliIo;

/** A fleet whose store refuses every scan: a command that walks the accounts fails. */
async function noScanFleet(accounts: number) {
  const setup = await expiredAccount(server, { accounts });
  const auth = createMailboxAuth({
    providers: setup.registry,
    store: setup.store as never,
    cipher: setup.cipher,
    refresh: { retry: { retries: 0 } },
  });
  let scans = 0;
  Object.defineProperty(auth.persistence, 'listAccounts', {
    value: async () => {
      scans++;
      throw new StorageError('no scan expected');
    },
  });
  return { ...setup, auth, scans: () => scans };
}

describe('CLI commands', () => {
  it.each([
    [
      'refresh',
      /^Usage: oauth-mailbox refresh --expiring-within D /,
      ['--concurrency N', '--dry-run', '--account ID'],
    ],
    ['list', /^Usage: oauth-mailbox list /, ['--status S', '--account ID']],
    ['health', /^Usage: oauth-mailbox health /, ['--account ID']],
    ['rotate-keys', /^Usage: oauth-mailbox rotate-keys /, ['--batch-size N', '--cursor C']],
  ])('prints the usage of %s with --help (exit 0, nothing loaded)', async (command, head, options) => {
    for (const argv of [
      [command, '--help'],
      ['help', command],
      [command, '-h'],
    ]) {
      const t = io(undefined); // no configuration is loaded for help
      expect(await runCli(argv, t.io)).toBe(EXIT.OK);
      const text = t.out.join('');
      expect(text).toMatch(head);
      for (const option of options) expect(text).toContain(option);
      expect(text).toContain('--config FILE');
      expect(text).toContain('Exit codes');
      expect(t.err).toEqual([]);
    }
    const other = io(undefined);
    await runCli([command, '--help'], other.io);
    for (const name of ['list', 'health', 'refresh', 'rotate-keys'].filter((n) => n !== command)) {
      expect(other.out.join('')).not.toContain(`oauth-mailbox ${name}`);
    }
  });

  it('lists every command in the general help, and refuses help for an unknown one', async () => {
    const t = io(undefined);
    expect(await runCli(['--help'], t.io)).toBe(EXIT.OK);
    for (const name of ['list', 'health', 'refresh', 'rotate-keys'])
      expect(t.out.join('')).toMatch(new RegExp(`^  ${name} `, 'm'));
    const unknown = io(undefined);
    expect(await runCli(['frobnicate', '--help'], unknown.io)).toBe(EXIT.USAGE);
    expect(unknown.err.join('')).toMatch(/unknown command "frobnicate"/);
    const extra = io(undefined);
    expect(await runCli(['help', 'refresh', 'more'], extra.io)).toBe(EXIT.USAGE);
    expect(extra.err.join('')).toMatch(/unexpected argument "more"/);
  });

  it('refreshes exactly the --account ids, read directly, without a walk over the fleet', async () => {
    const { auth, ids, scans, fake } = await noScanFleet(3);
    const t = io(auth);
    const argv = ['refresh', '--expiring-within', '7d', '--json', '--account', ids[0] as string];
    expect(await runCli([...argv, '--account', ids[2] as string], t.io)).toBe(EXIT.OK);
    expect(JSON.parse(t.out.join(''))).toMatchObject({ scanned: 2, refreshed: 2, skipped: 0, failed: 0 });
    expect(fake.stats.refreshes).toBe(2);
    expect(scans()).toBe(0);
    // Refreshed now: no longer expiring within 30 minutes, so not scanned again; a revoked one fails.
    fake.revokeUser('user1@contoso.com');
    const again = io(auth);
    expect(
      await runCli(
        ['refresh', '--expiring-within', '30m', '--json', ...ids.flatMap((id) => ['--account', id])],
        again.io,
      ),
    ).toBe(EXIT.DEGRADED);
    expect(JSON.parse(again.out.join(''))).toMatchObject({
      scanned: 1,
      failed: 1,
      failures: { ERR_REAUTHORIZATION_REQUIRED: 1 },
    });
    expect(scans()).toBe(0);
  });

  it('lists and checks the health of --account ids without a scan', async () => {
    const { auth, ids, scans, persistence } = await noScanFleet(2);
    const list = io(auth);
    expect(await runCli(['list', '--json', '--account', ids[1] as string], list.io)).toBe(EXIT.OK);
    expect(JSON.parse(list.out.join('')).map((a: { id: string }) => a.id)).toEqual([ids[1]]);
    const filtered = io(auth);
    expect(await runCli(['list', '--account', ids[1] as string, '--provider', 'google'], filtered.io)).toBe(
      EXIT.OK,
    );
    expect(filtered.out.join('')).toBe('No accounts.\n');
    await persistence.recordFailure(
      ids[0] as string,
      { code: 'ERR_REAUTHORIZATION_REQUIRED', message: 'x' },
      { status: 'reauth_required' },
    );
    const health = io(auth);
    expect(
      await runCli(['health', '--account', ids[0] as string, '--account', ids[1] as string], health.io),
    ).toBe(EXIT.DEGRADED);
    expect(health.out.join('')).toMatch(
      /reauth_required.*last error ERR_REAUTHORIZATION_REQUIRED\n.*: active/s,
    );
    const json = io(auth);
    expect(await runCli(['health', '--json', '--account', ids[1] as string], json.io)).toBe(EXIT.OK);
    expect(JSON.parse(json.out.join(''))).toMatchObject([{ accountId: ids[1], connected: true }]);
    const missing = io(auth);
    expect(await runCli(['list', '--account', 'no-such-account'], missing.io)).toBe(EXIT.FAILURE);
    expect(missing.err.join('')).toContain('ERR_ACCOUNT_NOT_FOUND');
    expect(scans()).toBe(0);
  });

  it('throttles the progress line on a TTY and clears it when done', async () => {
    const setup = await expiredAccount(server, { accounts: 5 });
    const fleet = createMailboxAuth({
      providers: setup.registry,
      store: setup.store as never,
      cipher: setup.cipher,
    });
    const t = io(fleet, { tty: true, now: () => 0 }); // the clock never moves: one update only
    expect(await runCli(['refresh', '--expiring-within', '7d', '--dry-run'], t.io)).toBe(EXIT.OK);
    expect(t.err).toEqual(['\rscanned 1  refreshed 1  skipped 0  failed 0\x1b[K', '\r\x1b[K']);
    expect(t.out.join('')).toMatch(/would refresh 5 of 5 scanned/);
    const json = io(fleet, { tty: true });
    await runCli(['refresh', '--expiring-within', '7d', '--dry-run', '--json'], json.io);
    expect(json.err).toEqual([]); // no progress with --json
  });

  it('writes at most one progress update per interval, the first at once', () => {
    const writes: string[] = [];
    let clock = 0;
    const line = progressLine({ write: (text: string) => writes.push(text) }, { now: () => clock });
    for (let i = 1; i <= 50; i++) {
      clock += 10; // 50 updates over 500 ms
      line.update(`step ${i}`);
    }
    line.done();
    expect(writes).toEqual([
      '\rstep 1\x1b[K',
      '\rstep 11\x1b[K',
      '\rstep 21\x1b[K',
      '\rstep 31\x1b[K',
      '\rstep 41\x1b[K',
      '\r\x1b[K',
    ]);
    const silent = progressLine(undefined);
    silent.update('x');
    silent.done();
    const untouched: string[] = [];
    progressLine({ write: (text: string) => untouched.push(text) }).done();
    expect(untouched).toEqual([]); // nothing written, nothing to clear
  });

  it('clears the progress line when a command fails mid-way', async () => {
    const setup = await expiredAccount(server, { accounts: 2 });
    const auth = createMailboxAuth({
      providers: setup.registry,
      store: setup.store as never,
      cipher: setup.cipher,
    });
    const failing = {
      ...auth,
      refreshExpiring: async (options: { onProgress?: (p: object) => void }) => {
        options.onProgress?.({ scanned: 1, refreshed: 1, skipped: 0, failed: 0 });
        throw new StorageError('The account store failed (listAccounts)');
      },
    };
    const t = io(failing, { tty: true });
    expect(await runCli(['refresh', '--expiring-within', '7d'], t.io)).toBe(EXIT.FAILURE);
    expect(t.err[0]).toMatch(/^\rscanned 1/);
    expect(t.err[1]).toBe('\r\x1b[K');
    expect(t.err[2]).toContain('ERR_STORAGE');
  });
});
