/**
 * Case 5 in a fresh process, so its memory figure is its own: `fork` it with the token server's URL, the
 * account count, the concurrency and a mode, and read one message back.
 *
 * - `library`: `refreshExpiring` over `count` expired accounts in a memory store (store, lease, decrypt,
 *   refresh, encrypt, write, cache: the whole path);
 * - `floor`: the same refresh requests through the provider alone (`provider.refresh`: openid-client and
 *   the HTTP client), with the same concurrency: what any library built on openid-client pays.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import {
  aesGcmCipher,
  memoryStore,
  ProviderRegistry,
  refreshExpiring,
  TokenPersistence,
  TokenRefresher,
} from '../src/index.js';
import { benchProvider, serveOnce } from './support.js';

export interface BulkWorkerInput {
  readonly url: string;
  readonly count: number;
  readonly concurrency: number;
  readonly mode: 'library' | 'floor';
}

export interface BulkWorkerResult {
  readonly refreshed: number;
  readonly failed: number;
  readonly wallMs: number;
  readonly rssGrowthMb: number;
  readonly heapGrowthMb: number;
}

async function run({ url, count, concurrency, mode }: BulkWorkerInput): Promise<BulkWorkerResult> {
  const emails = Array.from({ length: count }, (_, i) => `bulk-${mode}-${i}@example.com`);
  const refreshTokens = (await (
    await fetch(`${url}/issue`, { method: 'POST', body: JSON.stringify(emails) })
  ).json()) as string[];
  const provider = benchProvider(url);
  const persistence = new TokenPersistence({
    store: memoryStore(),
    cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
  });
  const refresher = new TokenRefresher({ persistence, registry: new ProviderRegistry([provider]) });
  if (mode === 'library') {
    for (const [i, email] of emails.entries()) {
      await persistence.connect({
        provider: 'local',
        owner: 'bench',
        email,
        tokens: {
          accessToken: `at-${i}`,
          refreshToken: refreshTokens[i] as string,
          expiresAt: Date.now() - 1000,
        },
      });
    }
  }
  global.gc?.();
  const before = process.memoryUsage();
  let peakRss = before.rss;
  let peakHeap = before.heapUsed;
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakHeap = Math.max(peakHeap, now.heapUsed);
  }, 20);
  // BENCH_CPU_PROFILE=file.cpuprofile: a CPU profile of the measured phase only (open it in Chrome DevTools).
  const profile = process.env.BENCH_CPU_PROFILE;
  const session = profile === undefined ? undefined : new Session();
  if (session !== undefined) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const t = performance.now();
  let refreshed = 0;
  let failed = 0;
  if (mode === 'library') {
    const report = await refreshExpiring(refresher, persistence, { withinMs: 60_000, concurrency });
    refreshed = report.refreshed;
    failed = report.failed;
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < refreshTokens.length) {
          const token = refreshTokens[next++] as string;
          await provider.refresh(token).then(
            () => void refreshed++,
            () => void failed++,
          );
        }
      }),
    );
  }
  const wallMs = performance.now() - t;
  clearInterval(sampler);
  if (session !== undefined && profile !== undefined) {
    const { profile: data } = await session.post('Profiler.stop');
    writeFileSync(`${profile.replace(/\.cpuprofile$/, '')}-${mode}.cpuprofile`, JSON.stringify(data));
  }
  const mb = (bytes: number) => bytes / 1024 / 1024;
  return {
    refreshed,
    failed,
    wallMs,
    rssGrowthMb: mb(peakRss - before.rss),
    heapGrowthMb: mb(peakHeap - before.heapUsed),
  };
}

serveOnce(run);
