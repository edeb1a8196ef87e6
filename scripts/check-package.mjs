#!/usr/bin/env node
// Pack the package once, then lint the tarball with publint (strict) and arethetypeswrong (ESM and CJS
// consumers). Run after `npm run build`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'oauth-mailbox-pack-'));
const run = (cmd, args) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
try {
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir]));
  const tarball = join(dir, packed[0].filename);
  console.log(`packed ${packed[0].filename}: ${packed[0].entryCount} files, ${packed[0].size} bytes`);
  for (const file of packed[0].files) console.log(`  ${file.path}`);
  execFileSync('npx', ['--no-install', 'publint', 'run', tarball, '--strict'], { stdio: 'inherit' });
  execFileSync('npx', ['--no-install', 'attw', tarball, '--profile', 'node16'], { stdio: 'inherit' });
  // Smoke: both builds load in a fresh Node process and round-trip a value.
  const smoke = () =>
    `const c = m.aesGcmCipher({ keys: { k: globalThis.crypto.getRandomValues(new Uint8Array(32)) }, current: 'k' });` +
    `if (c.decrypt(c.encrypt('ok', 'a'), 'a') !== 'ok') throw new Error('round trip failed');` +
    `if (!(new m.StorageError('x') instanceof m.MailboxAuthError)) throw new Error('error classes');`;
  execFileSync('node', ['-e', `const m = require('./dist/index.cjs'); ${smoke()}`], { stdio: 'inherit' });
  execFileSync(
    'node',
    ['--input-type=module', '-e', `const m = await import('./dist/index.js'); ${smoke()}`],
    {
      stdio: 'inherit',
    },
  );
  const testing = `if (typeof t.fakeGoogle !== 'function') throw new Error('testing entry');`;
  execFileSync('node', ['-e', `const t = require('./dist/testing.cjs'); ${testing}`], { stdio: 'inherit' });
  execFileSync(
    'node',
    ['--input-type=module', '-e', `const t = await import('./dist/testing.js'); ${testing}`],
    {
      stdio: 'inherit',
    },
  );
  // The dual-package hazard: an error from the CJS copy is recognized by the ESM copy's classes.
  execFileSync(
    'node',
    [
      '--input-type=module',
      '-e',
      `import { createRequire } from 'node:module'; const esm = await import('./dist/index.js');` +
        `const cjs = createRequire(import.meta.url)('./dist/index.cjs');` +
        `const e = new cjs.StorageError('x'); if (!(e instanceof esm.StorageError) || !(e instanceof esm.MailboxAuthError)) throw new Error('brand');`,
    ],
    { stdio: 'inherit' },
  );
  // The CLI runs from the packed layout.
  execFileSync('node', ['dist/cli.js', '--help'], { stdio: 'ignore' });
  console.log('ESM and CJS builds (main, testing and CLI entries) load and work; errors cross copies');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
