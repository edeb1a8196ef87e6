/**
 * `node --import tsx bench/request-cost.ts`: what one token request costs on this machine, with the token
 * server in another process: 1,000 concurrent refreshes through raw fetch, through openid-client (the
 * provider's `refresh`), and the library's own per-refresh store and crypto work. Explains case 5.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { aesGcmCipher, memoryStore, TokenPersistence } from '../src/index.js';
import { benchProvider } from './support.js';

const tsx = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const child = fork(resolve('bench/token-server-process.ts'), ['0'], { execArgv: ['--import', tsx] });
const url = await new Promise<string>((r) => child.once('message', (m: { url: string }) => r(m.url)));
const issue = async (n: number, tag: string) =>
  (await (
    await fetch(`${url}/issue`, {
      method: 'POST',
      body: JSON.stringify(Array.from({ length: n }, (_, i) => `${tag}${i}@x.com`)),
    })
  ).json()) as string[];
const provider = benchProvider(url);
const raw = (rt: string) =>
  fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: rt,
      client_id: 'c',
      client_secret: 's',
    }),
  }).then((r) => r.json());
await Promise.all((await issue(200, 'warm')).map(raw)); // warm up both sides
const cases = [
  ['raw fetch', raw],
  ['openid-client (provider.refresh)', (rt: string) => provider.refresh(rt)],
] as const;
for (const [round, [name, run]] of [...cases, ...cases, ...cases].entries()) {
  const tokens = await issue(1000, `${round}-`);
  const t = performance.now();
  await Promise.all(tokens.map((rt) => run(rt)));
  console.log(`${name}: 1000 concurrent refreshes in ${Math.round(performance.now() - t)} ms`);
}
const persistence = new TokenPersistence({
  store: memoryStore(),
  cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
});
const ids: string[] = [];
for (let i = 0; i < 1000; i++) {
  const { account } = await persistence.connect({
    provider: 'local',
    owner: 'o',
    email: `s${i}@x.com`,
    tokens: { accessToken: 'a', refreshToken: 'r', expiresAt: 1 },
  });
  ids.push(account.id);
}
const t = performance.now();
for (const id of ids) {
  await persistence.acquireLease(id, 'h', 60_000);
  await persistence.load(id);
  await persistence.saveTokens(id, {
    accessToken: 'b',
    refreshToken: 'r2',
    expiresAt: Date.now() + 3_600_000,
  });
  await persistence.releaseLease(id, 'h');
}
console.log(
  `library work per refresh (lease, load + decrypt, version-checked save + encrypt): ${((performance.now() - t) / 1000).toFixed(3)} ms`,
);
child.disconnect();
