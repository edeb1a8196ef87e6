/**
 * The shared Dovecot harness (examples/dev/dovecot.ts) when start-up fails: Dovecot holds loopback ports
 * (and may run as root), and its temp folder holds a TLS key, so a failed start must leave neither behind.
 */
import { fork } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dovecotAvailable, startDovecot, startIntrospection } from '../support/dovecot-server.js';
import { listening } from '../support/loopback.js';

/** The harness's temp folders whose config has a listener on `port`. */
function foldersWithPort(port: number): string[] {
  return readdirSync(tmpdir())
    .filter((name) => name.startsWith('om-dovecot-'))
    .map((name) => join(tmpdir(), name, 'dovecot.conf'))
    .filter((conf) => existsSync(conf) && readFileSync(conf, 'utf8').includes(`port = ${port}\n`));
}

/** This process's child processes running Dovecot (their pids), from /proc. */
function dovecotChildren(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        return []; // ended meanwhile
      }
      // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so split after its last ')'.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return ppid === process.pid && comm === 'dovecot' ? [Number(pid)] : [];
    });
}

describe.runIf(dovecotAvailable())('examples/dev/dovecot start-up failure', () => {
  it('stops Dovecot and removes its folder when the listeners do not answer in time', async () => {
    const introspection = await startIntrospection();
    try {
      // No time at all: the first look at the IMAP port fails while Dovecot is still starting.
      const error = await startDovecot({ introspectionUrl: introspection.url, startTimeoutMs: 0 }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      const port = Number(/did not open port (\d+) in time/.exec(error?.message ?? '')?.[1]);
      expect(port, String(error)).toBeGreaterThan(0);
      expect(foldersWithPort(port)).toEqual([]);
      // Dovecot runs in the foreground (-F) as this process's child: one left running would be there still,
      // and open the port sooner or later. It was stopped (and reaped) before the error was thrown.
      expect(dovecotChildren()).toEqual([]);
      expect(await listening(port)).toBe(false);
    } finally {
      await introspection.close();
    }
  });

  // Dovecot is started by whoever runs the tests: root drops its processes to nobody; any other user gets a
  // rootless Dovecot (no chroot, no chown), even a user that is itself called nobody, as in many containers.
  it.runIf(process.getuid?.() === 0)(
    'runs rootless for a non-root user, even one called nobody',
    async () => {
      const tsx = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
      const child = fork(resolve('tests/support/dovecot-as-user.ts'), [], {
        execArgv: ['--import', tsx],
        uid: 65534,
        gid: 65534,
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env: { ...process.env, HOME: tmpdir() },
      });
      let stderr = '';
      child.stderr?.on('data', (chunk) => {
        stderr += chunk;
      });
      try {
        const result = await new Promise<unknown>((resolvePromise, reject) => {
          child.once('message', resolvePromise);
          child.once('exit', (code) => reject(new Error(`exited with ${code}: ${stderr.slice(-2000)}`)));
          setTimeout(() => reject(new Error(`no answer in 20 s: ${stderr.slice(-2000)}`)), 20_000);
        });
        expect(result).toEqual({ ok: true, rootless: true });
      } finally {
        child.kill('SIGKILL'); // a start-up that hangs must not leave the child behind
      }
    },
    30_000,
  );
});
