/**
 * `node --import tsx bench/alloc-profile.ts`: where the bytes of a bulk refresh are allocated. Samples every
 * allocation (collected or not) during `refreshExpiring` over 3,000 accounts and prints bytes per refresh
 * by the innermost project file on the stack, then by function.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Session } from 'node:inspector/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  aesGcmCipher,
  memoryStore,
  ProviderRegistry,
  refreshExpiring,
  TokenPersistence,
  TokenRefresher,
} from '../src/index.js';
import { benchProvider } from './support.js';

const tsx = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const child = fork(resolve('bench/token-server-process.ts'), ['20'], { execArgv: ['--import', tsx] });
const url = await new Promise<string>((r) => child.once('message', (m: { url: string }) => r(m.url)));
const N = 3000;
const emails = Array.from({ length: N }, (_, i) => `b${i}@x.com`);
const rts = (await (
  await fetch(`${url}/issue`, { method: 'POST', body: JSON.stringify(emails) })
).json()) as string[];
const persistence = new TokenPersistence({
  store: memoryStore(),
  cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
});
const provider = benchProvider(url);
for (const [i, email] of emails.entries())
  await persistence.connect({
    provider: 'local',
    owner: 'o',
    email,
    tokens: { accessToken: `at${i}`, refreshToken: rts[i] as string, expiresAt: Date.now() - 1000 },
  });
const refresher = new TokenRefresher({ persistence, registry: new ProviderRegistry([provider]) });
const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 4096,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
} as never);
await refreshExpiring(refresher, persistence, { withinMs: 60_000, concurrency: 50 });
const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
  profile: { head: ProfileNode };
};
const self = new Map<string, number>();
const byFile = new Map<string, number>();
interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}
const walk = (n: ProfileNode, stack: string[]) => {
  const f = n.callFrame;
  const key = `${f.functionName || '(anon)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber}`;
  const size = n.selfSize;
  self.set(key, (self.get(key) ?? 0) + size);
  // Attributed to the innermost project file on the stack, else the package (or the Node internal).
  const s2 = [...stack, f.url];
  const proj = [...s2].reverse().find((u) => u.includes('/src/') && !u.includes('node_modules'));
  const bucket =
    proj?.split('/src/')[1] ?? f.url.split('node_modules/')[1]?.split('/')[0] ?? (f.url || 'native');
  byFile.set(bucket, (byFile.get(bucket) ?? 0) + size);
  for (const c of n.children) walk(c, s2);
};
walk(profile.head, []);
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log('total MB per refresh KB', (total / 1048576).toFixed(1), (total / N / 1024).toFixed(2));
console.log(
  [...byFile]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .map(([k, v]) => `${(v / N).toFixed(0).padStart(7)} B/refresh ${k}`)
    .join('\n'),
);
console.log('---');
console.log(
  [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([k, v]) => `${(v / N).toFixed(0).padStart(7)} ${k}`)
    .join('\n'),
);
child.disconnect();
