/**
 * A worker process of the watch-takeover test: one instance of a host app, with its own store connection,
 * facade and watch orchestrator, sharing only the database, the token server and Dovecot with its siblings.
 * Started with `fork`; reports over IPC: `watching` once it holds the account's watch lease and watches,
 * `message` for each message its callback handled, `stopped` after a graceful stop (`{ stop: true }`).
 */
import pg from 'pg';
import { createMailboxAuth } from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';
import { testCipher } from '../support/auth.js';
import { tokenServerProvider } from '../support/token-server.js';

export interface WatchWorkerConfig {
  readonly url: string;
  readonly schema: string;
  readonly keyHex: string;
  readonly tokenServer: string;
  readonly imapPort: number;
  readonly accountId: string;
  readonly holderId: string;
  readonly leaseTtlMs: number;
}

export type WatchWorkerMessage =
  | { readonly kind: 'watching' }
  | { readonly kind: 'message'; readonly subject: string; readonly messageId: string | undefined }
  | { readonly kind: 'failed'; readonly messageId: string }
  | { readonly kind: 'stopped' };

const config = JSON.parse(process.argv[2] as string) as WatchWorkerConfig;
const send = (message: WatchWorkerMessage) => process.send?.(message);
const pool = new pg.Pool({ connectionString: config.url, max: 4 });
const auth = createMailboxAuth({
  providers: [
    tokenServerProvider(config.tokenServer, {
      id: 'local',
      mail: {
        imap: { host: '127.0.0.1', port: config.imapPort, secure: false },
        smtp: { host: '127.0.0.1', port: 1, secure: false },
        sasl: 'XOAUTH2',
      },
    }),
  ],
  store: postgresStore({ client: pool, schema: config.schema }),
  cipher: testCipher(Buffer.from(config.keyHex, 'hex')),
  refresh: { holderId: config.holderId },
  mailboxActivityFlushMs: 20,
});
const orchestrator = auth.watchOrchestrator({
  holderId: config.holderId,
  leaseTtlMs: config.leaseTtlMs,
  mailbox: { imap: { allowInsecureHosts: ['127.0.0.1'] } },
  retry: { retries: 0 },
  onFailedMessage: (_accountId, _message, failure) => {
    send({ kind: 'failed', messageId: failure.messageId });
  },
  onMessage: (_accountId, message) => {
    if (message.subject === 'poison') throw new Error('the host cannot handle this one');
    send({ kind: 'message', subject: message.subject as string, messageId: message.messageId });
  },
});
orchestrator.add(config.accountId);
const watching = setInterval(() => {
  const health = orchestrator.health()[0];
  if (health?.leased && health.state === 'watching' && health.lastSuccessAt !== null) {
    clearInterval(watching);
    send({ kind: 'watching' });
  }
}, 10);

process.on('message', async (message: { stop?: boolean }) => {
  if (!message.stop) return;
  clearInterval(watching);
  await auth.close(); // stops the orchestrator (leases released), writes the mailbox activity
  await pool.end();
  send({ kind: 'stopped' });
  process.disconnect?.();
});
