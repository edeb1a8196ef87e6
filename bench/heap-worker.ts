/**
 * Case 10's figure in a fresh process: heap growth per 1,000 refreshes through `auth.getAccessToken`, with a
 * caller `AbortSignal` on every call or without one. The token source is in-process (no HTTP), so what is
 * measured is the library's own retention: a leak of ~80 bytes per flight (what `AbortSignal.any` over the
 * refresher's long-lived close signal retained in Node 20) shows as ~80 KB per 1,000.
 */
import { randomBytes } from 'node:crypto';
import { aesGcmCipher, createMailboxAuth, memoryStore, type TokenSource } from '../src/index.js';
import { TokenSet } from '../src/tokens/token-set.js';
import { benchProvider, serveOnce } from './support.js';

export interface HeapWorkerInput {
  /** Refreshes per round. */
  readonly perRound: number;
  readonly rounds: number;
  readonly mode: 'signal' | 'plain';
}

export interface HeapWorkerResult {
  /** Least-squares slope of heapUsed over the rounds, in KB per 1,000 refreshes. */
  readonly kbPer1000: number;
}

function heapUsed(): number {
  for (let i = 0; i < 3; i++) global.gc?.();
  return process.memoryUsage().heapUsed;
}

serveOnce<HeapWorkerInput, HeapWorkerResult>(async ({ perRound, rounds, mode }) => {
  let issued = 0;
  const source: TokenSource = {
    grant: 'bench',
    canObtain: () => true,
    obtain: async () => ({
      tokens: new TokenSet({ accessToken: `t${++issued}`, expiresAt: Date.now() + 3_600_000 }),
      scopes: undefined,
      claims: undefined,
    }),
  };
  const auth = createMailboxAuth({
    providers: [benchProvider('http://127.0.0.1:1')],
    store: memoryStore(),
    cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
    refresh: { tokenSource: () => source },
  });
  const { account } = await auth.persistence.connect({
    provider: 'local',
    owner: 'bench',
    email: 'heap@example.com',
    tokens: { accessToken: 't0', refreshToken: 'r0', expiresAt: Date.now() - 1000 },
  });
  const refresh = () =>
    auth.getAccessToken(
      account.id,
      mode === 'signal'
        ? { forceRefresh: true, signal: new AbortController().signal }
        : { forceRefresh: true },
    );
  for (let i = 0; i < perRound; i++) await refresh(); // warm-up: caches, JIT, pools
  const xs: number[] = [];
  const ys: number[] = [];
  for (let round = 0; round <= rounds; round++) {
    if (round > 0) for (let i = 0; i < perRound; i++) await refresh();
    xs.push(round * perRound);
    ys.push(heapUsed());
  }
  await auth.close();
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  const bytesPerRefresh = num / den;
  return { kbPer1000: (bytesPerRefresh * 1000) / 1024 };
});
