import { randomBytes } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import { afterEach } from 'vitest';
import type { AccountStore, Cipher, MailboxAuth, SaslMechanism, StateStore } from '../../src/index.js';
import { memoryAuth } from './auth.js';
import { type Dovecot, startDovecot } from './dovecot-server.js';
import { listenSmtp, readMessage } from './loopback.js';
import { startTokenServer, type TokenServer, tokenServerProvider } from './token-server.js';

export const ALICE = 'alice@example.com';
/** Mail connection options for the local test servers (no TLS on loopback). */
export const LOCAL = { allowInsecureHosts: ['127.0.0.1'] };

/** `setup()` for a test file: each set-up is closed after its test. */
export function useMailSetup(): (options?: Parameters<typeof mailSetup>[0]) => Promise<MailSetup> {
  const open: MailSetup[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  return async (options = {}) => {
    const s = await mailSetup(options);
    open.push(s);
    return s;
  };
}

/** An SMTP sink that delivers what it receives into the recipient's Dovecot INBOX (an MTA, in short). */
function startDeliveringSink(deliver: (raw: string) => Promise<void>) {
  return listenSmtp({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onData(stream, _session, callback) {
      readMessage(stream)
        .then(deliver)
        .then(() => callback(), callback);
    },
  });
}

export interface MailSetup {
  readonly tokens: TokenServer;
  readonly dovecot: Dovecot;
  readonly auth: MailboxAuth;
  /** The facade's store (memory unless given). */
  readonly store: AccountStore & StateStore;
  readonly accountId: string;
  /** Account ids by email (Alice first, then `extraEmails`). */
  readonly accountIds: ReadonlyMap<string, string>;
  /**
   * Put a message into a mailbox directly (as an MTA would); Alice's by default. `internalDate`: the date the
   * server records as received (IMAP APPEND's date; to the second), else now. `mailbox`: the folder (INBOX).
   */
  deliver(
    subject: string,
    options?: { seen?: boolean; to?: string; internalDate?: Date; mailbox?: string },
  ): Promise<void>;
  close(): Promise<void>;
}

export async function mailSetup(
  options: {
    mechanisms?: ('xoauth2' | 'oauthbearer')[];
    accessTokenTtlS?: number;
    sasl?: SaslMechanism;
    extraEmails?: readonly string[];
    /** The facade's store and cipher. @default a memory store and a new key */
    store?: AccountStore & StateStore;
    cipher?: Cipher;
  } = {},
): Promise<MailSetup> {
  const tokens = await startTokenServer({
    ...(options.accessTokenTtlS ? { accessTokenTtlS: options.accessTokenTtlS } : {}),
  });
  // A delivery path that does not depend on the library: its own token, allowed by the token server.
  let dovecot: Dovecot | undefined;
  const append = async (
    raw: string,
    flags: string[] = [],
    mtaEmail = ALICE,
    internalDate?: Date,
    mailbox = 'INBOX',
  ) => {
    const rt = tokens.issueRefreshToken(mtaEmail);
    const res = await fetch(`${tokens.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt }),
    });
    const { access_token } = (await res.json()) as { access_token: string };
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: (dovecot as Dovecot).imapPort,
      secure: false,
      auth: { user: mtaEmail, accessToken: access_token },
      tls: { ca: (dovecot as Dovecot).caPem, servername: 'localhost' },
      logger: false,
    });
    await client.connect();
    await client.append(mailbox, raw, flags, internalDate);
    await client.logout();
  };
  const sink = await startDeliveringSink((raw) => append(raw));
  dovecot = await startDovecot({
    introspectionUrl: `${tokens.url}/introspect`,
    ...(options.mechanisms ? { mechanisms: options.mechanisms } : {}),
    submissionRelay: { host: '127.0.0.1', port: sink.port },
  });
  const d = dovecot;
  const { auth, store } = memoryAuth({
    providers: [
      tokenServerProvider(tokens.url, {
        id: 'local',
        identify: async () => ({ email: ALICE }), // accounts are connected directly below
        mail: {
          imap: { host: '127.0.0.1', port: d.imapPort, secure: false },
          smtp: { host: '127.0.0.1', port: d.submissionPort as number, secure: false },
          sasl: options.sasl ?? 'XOAUTH2',
        },
      }),
    ],
    refresh: { retry: { retries: 0 } },
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(options.cipher === undefined ? {} : { cipher: options.cipher }),
  });
  const accountIds = new Map<string, string>();
  for (const email of [ALICE, ...(options.extraEmails ?? [])]) {
    const { account } = await auth.persistence.connect({
      provider: 'local',
      owner: 'u1',
      email,
      tokens: {
        accessToken: 'expired',
        refreshToken: tokens.issueRefreshToken(email),
        expiresAt: Date.now() - 1000,
      },
    });
    accountIds.set(email, account.id);
  }

  return {
    tokens,
    dovecot: d,
    auth,
    store,
    accountId: accountIds.get(ALICE) as string,
    accountIds,
    deliver: (subject, deliverOptions = {}) =>
      append(
        `From: sender@example.com\r\nTo: ${deliverOptions.to ?? ALICE}\r\nSubject: ${subject}\r\nMessage-ID: <${randomBytes(6).toString('hex')}@example.com>\r\n\r\nBody of ${subject}\r\n`,
        deliverOptions.seen ? ['\\Seen'] : [],
        deliverOptions.to ?? ALICE,
        deliverOptions.internalDate,
        deliverOptions.mailbox,
      ),
    close: async () => {
      auth.refresher.close();
      await d.stop();
      await sink.close();
      await tokens.close();
    },
  };
}
