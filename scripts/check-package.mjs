#!/usr/bin/env node
// Pack the package once, then check the tarball: every entry point of package.json resolves to a packed
// file, publint (strict) and arethetypeswrong (ESM and CJS consumers) pass, the builds load, and a store
// adapter written outside this repository (tests/package/third-party-adapter/) installs the tarball and
// passes the exported conformance suite; the tarball installs with plain `npm install` beside the newest major of
// every driver (ioredis, redis, pg, PGlite) and its store entries load and work with them. Run after
// `npm run build`.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entries } from './entries.mjs';

const dir = mkdtempSync(join(tmpdir(), 'oauth-mailbox-pack-'));
const run = (cmd, args) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
try {
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir]));
  const tarball = join(dir, packed[0].filename);
  console.log(`packed ${packed[0].filename}: ${packed[0].entryCount} files, ${packed[0].size} bytes`);
  for (const file of packed[0].files) console.log(`  ${file.path}`);
  // Every entry point resolves to a packed file, and every built entry is an entry point (or the CLI).
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
  const inTarball = new Set(packed[0].files.map((f) => f.path));
  const leaves = (target) => (typeof target === 'string' ? [target] : Object.values(target).flatMap(leaves));
  const targets = [pkg.main, pkg.module, pkg.types, ...leaves(pkg.bin), ...leaves(pkg.exports)];
  const unresolved = targets.filter((t) => !inTarball.has(t.replace(/^\.\//, '')));
  if (unresolved.length > 0)
    throw new Error(`package.json points at files the tarball lacks: ${unresolved.join(', ')}`);
  const bins = leaves(pkg.bin).map((b) => b.replace(/^\.\/dist\/|\.js$/g, ''));
  const built = readdirSync('dist').flatMap((f) => /^(?!chunk-)([\w-]+)\.js$/.exec(f)?.slice(1) ?? []);
  const stray = built.filter((name) => !bins.includes(name) && !entries.some((e) => e.name === name));
  if (stray.length > 0)
    throw new Error(`dist/ holds entries package.json does not export: ${stray.join(', ')}`);
  console.log(
    `${entries.length} entry points (${entries.map((e) => e.specifier).join(', ')}) resolve in the tarball`,
  );
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
  // OpenTelemetry: importing the main entry does not load @opentelemetry/api; both builds find it on first use
  // (a span of a failed connectImap reaches a tracer provider registered globally by the host's own copy).
  const otelLoaded = execFileSync(
    'node',
    [
      '-e',
      "require('./dist/index.cjs'); console.log(Object.keys(require.cache).some((k) => k.includes('@opentelemetry')))",
    ],
    { encoding: 'utf8' },
  ).trim();
  if (otelLoaded !== 'false') throw new Error('importing the main entry loads @opentelemetry/api');
  const traced = (load) =>
    `const { trace } = await import('@opentelemetry/api'); const sdk = await import('@opentelemetry/sdk-trace-base');` +
    `const spans = new sdk.InMemorySpanExporter(); trace.setGlobalTracerProvider(new sdk.BasicTracerProvider({ spanProcessors: [new sdk.SimpleSpanProcessor(spans)] }));` +
    `const m = ${load}; const cipher = m.aesGcmCipher({ keys: { k: globalThis.crypto.getRandomValues(new Uint8Array(32)) }, current: 'k' });` +
    `const auth = m.createMailboxAuth({ providers: [], store: m.memoryStore(), cipher });` +
    `await auth.connectImap('missing').catch(() => {});` +
    `const [span] = spans.getFinishedSpans(); if (span?.name !== 'oauth_mailbox.imap.connect' || span.attributes['error.type'] !== 'ERR_ACCOUNT_NOT_FOUND') throw new Error('no span: ' + JSON.stringify(span?.name));`;
  for (const load of [
    `await import('./dist/index.js')`,
    `(await import('node:module')).createRequire(process.cwd() + '/')('./dist/index.cjs')`,
  ])
    execFileSync('node', ['--input-type=module', '-e', traced(load)], { stdio: 'inherit' });
  console.log('@opentelemetry/api: not loaded by the import; found on first use by the ESM and CJS builds');
  // A third-party store adapter installs the tarball (and msw, the peer dependency of `oauth-mailbox/testing`)
  // and runs the exported conformance suite with node:test: every case passes, and a broken store fails.
  const project = join(dir, 'third-party-adapter');
  cpSync('tests/package/third-party-adapter', project, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  execFileSync(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--ignore-scripts',
      '--no-package-lock',
    ].concat(tarball, `msw@${pkg.devDependencies.msw}`),
    { cwd: project, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const cases = Number(
    execFileSync(
      'node',
      [
        '--input-type=module',
        '-e',
        `const t = await import('oauth-mailbox/testing'); console.log(t.storeConformanceCases().length);`,
      ],
      { cwd: project, encoding: 'utf8' },
    ),
  );
  const conformance = (env) => {
    const run = spawnSync('node', ['--test', '--test-reporter=tap', 'conformance.test.mjs'], {
      cwd: project,
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    const count = (what) => Number(new RegExp(`^# ${what} (\\d+)$`, 'm').exec(run.stdout)?.[1] ?? Number.NaN);
    // Cases of optional store methods the adapter does not have are skipped, with the reason "(optional)".
    const optionalSkips = (run.stdout.match(/# SKIP the store has no \w+ \(optional\)$/gm) ?? []).length;
    return {
      status: run.status,
      pass: count('pass'),
      fail: count('fail'),
      skip: count('skipped'),
      optionalSkips,
      output: run.stdout + run.stderr,
    };
  };
  const good = conformance({});
  if (
    good.status !== 0 ||
    good.fail !== 0 ||
    !(cases > 0) ||
    good.skip !== good.optionalSkips ||
    good.pass + good.skip !== cases
  ) {
    console.error(good.output);
    throw new Error(
      `the third-party adapter failed the conformance suite (${good.pass} of ${cases} passed, ${good.skip} skipped of which ${good.optionalSkips} optional)`,
    );
  }
  const broken = conformance({ BREAK_STORE: '1' });
  if (broken.status === 0 || !(broken.fail > 0)) {
    console.error(broken.output);
    throw new Error('the conformance suite passed a store that hands out a state twice');
  }
  console.log(
    `third-party adapter from the tarball: ${good.pass}/${cases} conformance cases pass, ${good.skip} of optional methods it lacks skipped (node:test); a broken store fails ${broken.fail}`,
  );
  // Without @opentelemetry/api installed (the adapter's project has none), the main entry works: telemetry is a no-op.
  execFileSync(
    'node',
    [
      '--input-type=module',
      '-e',
      `import { createRequire } from 'node:module'; try { createRequire(process.cwd() + '/')('@opentelemetry/api'); throw new Error('installed'); } catch (e) { if (e.message === 'installed') throw new Error('@opentelemetry/api is installed in the adapter project'); }` +
        `const m = await import('oauth-mailbox'); const cipher = m.aesGcmCipher({ keys: { k: globalThis.crypto.getRandomValues(new Uint8Array(32)) }, current: 'k' });` +
        `const auth = m.createMailboxAuth({ providers: [], store: m.memoryStore(), cipher });` +
        `const e = await auth.connectImap('missing').catch((e) => e); if (e?.code !== 'ERR_ACCOUNT_NOT_FOUND') throw new Error('without @opentelemetry/api: ' + e?.code);`,
    ],
    { cwd: project, stdio: 'inherit' },
  );
  console.log('without @opentelemetry/api installed, the main entry loads and works (telemetry is a no-op)');
  // Beside the newest major of every driver: plain `npm install` (peer ranges checked, no --legacy-peer-deps,
  // no --force) succeeds, and the store entries load (ESM and CJS) and run on each driver. With REDIS_URL set,
  // a state goes through Redis on ioredis and on node-redis.
  const drivers = ['ioredis', 'redis', 'pg', '@electric-sql/pglite'];
  const latest = join(dir, 'latest-drivers');
  mkdirSync(latest);
  writeFileSync(join(latest, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  execFileSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock'].concat(
      tarball,
      drivers.map((name) => `${name}@latest`),
    ),
    { cwd: latest, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const versions = drivers.map(
    (name) =>
      `${name} ${JSON.parse(readFileSync(join(latest, 'node_modules', name, 'package.json'), 'utf8')).version}`,
  );
  const driverSmoke = `
    import Redis from 'ioredis';
    import { createClient } from 'redis';
    import { PGlite } from '@electric-sql/pglite';
    import pg from 'pg';
    import { nodeRedisClient, redisStore } from 'oauth-mailbox/redis';
    import { postgresMigrations, postgresStore } from 'oauth-mailbox/postgres';
    import { createRequire } from 'node:module';
    const cjs = createRequire(import.meta.url)('oauth-mailbox/redis');
    if (typeof cjs.nodeRedisClient !== 'function' || typeof cjs.redisStore !== 'function') throw new Error('CJS redis entry');
    if (typeof createRequire(import.meta.url)('oauth-mailbox/postgres').postgresStore !== 'function') throw new Error('CJS postgres entry');
    const state = { owner: 'o', provider: 'p', payload: 'x', createdAt: Date.now(), expiresAt: Date.now() + 60_000 };
    const url = process.env.REDIS_URL;
    const io = url ? new Redis(url, { maxRetriesPerRequest: 1 }) : new Redis({ lazyConnect: true });
    const nr = url ? await createClient({ url }).connect() : createClient();
    for (const [name, client] of [['ioredis', io], ['node-redis', nodeRedisClient(nr)]]) {
      const store = redisStore({ client, prefix: 'om-package-check:' + crypto.randomUUID() + ':' });
      if (!url) continue;
      await store.putState('k', state, { maxPerOwner: 5 });
      if ((await store.takeState('k'))?.owner !== 'o' || (await store.takeState('k')) !== null)
        throw new Error('the Redis store on ' + name + ' lost or repeated a state');
    }
    if (url) { await io.quit(); await nr.close(); }
    if (postgresMigrations().length === 0) throw new Error('postgres entry');
    postgresStore({ client: new pg.Pool() }); // pg: built, not connected
    const db = new PGlite();
    const lite = postgresStore({ client: db });
    await lite.migrate();
    if ((await lite.getAccount('a')) !== null) throw new Error('the PostgreSQL store on PGlite');
    await db.close();
    console.log((url ? 'a state through Redis on ioredis and node-redis' : 'Redis stores built (REDIS_URL not set: no round trip)') + '; PGlite migrated and read');
  `;
  const smokeResult = execFileSync('node', ['--input-type=module', '-e', driverSmoke], {
    cwd: latest,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  console.log(`plain npm install beside ${versions.join(', ')}: entries load; ${smokeResult.trim()}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
