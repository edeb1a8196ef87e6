/**
 * Case 7's memory figure in a fresh process, so that what earlier cases allocated (and GC later returns)
 * does not land in it: `fork` it with the token server's URL, Dovecot's IMAP port, a refresh token, an
 * access token and a mode, and read one message back.
 *
 * - `library`: `count` mailbox watchers (`auth.mailbox(id).watch()`: IMAP IDLE on INBOX, renewal timer,
 *   reconnect state) on one account;
 * - `raw`: `count` raw imapflow clients connected with the same access token, INBOX open, IDLE running:
 *   what any IMAP watcher pays.
 *
 * Both start one connection first (modules loaded, TLS and parser warmed), collect garbage, then measure
 * the growth of RSS and of V8 heap + buffers with all `count` connections idle, after garbage collection.
 */
import { randomBytes } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import { aesGcmCipher, createMailboxAuth, memoryStore } from '../src/index.js';
import { benchProvider, serveOnce } from './support.js';

export interface WatchersWorkerInput {
  readonly url: string;
  readonly imapPort: number;
  readonly email: string;
  readonly refreshToken: string;
  readonly accessToken: string;
  readonly count: number;
  readonly mode: 'library' | 'raw';
}

export interface WatchersWorkerResult {
  readonly connected: number;
  readonly rssPerWatcherKb: number;
  readonly usedPerWatcherKb: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sample(): { rss: number; used: number } {
  for (let i = 0; i < 3; i++) global.gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, used: m.heapUsed + m.external + m.arrayBuffers };
}

async function startLibrary(input: WatchersWorkerInput) {
  const auth = createMailboxAuth({
    providers: [benchProvider(input.url, { imapPort: input.imapPort })],
    store: memoryStore(),
    cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
  });
  const { account } = await auth.persistence.connect({
    provider: 'local',
    owner: 'bench',
    email: input.email,
    tokens: { accessToken: 'x', refreshToken: input.refreshToken, expiresAt: Date.now() - 1 },
  });
  return async () => {
    const client = auth.mailbox(account.id, { imap: { allowInsecureHosts: ['127.0.0.1'] } });
    const watcher = client.watch(() => {});
    await Promise.race([watcher.ready, sleep(60_000)]);
    return client.health().lastSuccessAt !== null;
  };
}

function startRaw(input: WatchersWorkerInput) {
  return async () => {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: input.imapPort,
      secure: false,
      doSTARTTLS: false,
      auth: { user: input.email, accessToken: input.accessToken },
      logger: false,
    });
    await client.connect();
    await client.mailboxOpen('INBOX');
    void client.idle().catch(() => {});
    return true;
  };
}

async function run(input: WatchersWorkerInput): Promise<WatchersWorkerResult> {
  const start = input.mode === 'library' ? await startLibrary(input) : startRaw(input);
  await start(); // warm-up connection, not counted
  await sleep(200);
  const before = sample();
  let connected = 0;
  for (let i = 0; i < input.count; i += 25) {
    const batch = Math.min(25, input.count - i);
    const ok = await Promise.all(Array.from({ length: batch }, () => start().catch(() => false)));
    connected += ok.filter(Boolean).length;
  }
  await sleep(500);
  const after = sample();
  return {
    connected,
    rssPerWatcherKb: (after.rss - before.rss) / 1024 / input.count,
    usedPerWatcherKb: (after.used - before.used) / 1024 / input.count,
  };
}

// Exits without logging out: the parent stops Dovecot, and 2 × count LOGOUTs would only add time.
serveOnce(run);
