/**
 * Run by tests/examples/dovecot.test.ts as another (non-root) user: start the shared Dovecot harness, check
 * that IMAP greets, stop it, and report `{ ok, rootless }` (or `{ error }`) to the parent.
 */
import { connect } from 'node:net';
import { startDovecot } from '../../examples/dev/dovecot.js';

async function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(5000, () => reject(new Error('no greeting')));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString());
    });
    socket.once('error', reject);
  });
}

async function run() {
  const dovecot = await startDovecot({
    introspectionUrl: 'http://127.0.0.1:9/introspect',
    startTimeoutMs: 10_000,
  });
  try {
    const greeted = /^\* OK/.test(await greeting(dovecot.imapPort));
    const { readFileSync } = await import('node:fs');
    const rootless = readFileSync(`${dovecot.dir}/dovecot.conf`, 'utf8').includes('chroot =');
    return { ok: greeted, rootless };
  } finally {
    await dovecot.stop();
  }
}

run().then(
  (result) => process.send?.(result, () => process.exit(0)),
  (error: unknown) => process.send?.({ error: String(error).slice(0, 2000) }, () => process.exit(1)),
);
