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
      // A Dovecot left running would have opened the port by now.
      await new Promise((resolve) => setTimeout(resolve, 1500));
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
