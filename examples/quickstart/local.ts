/**
 * The quickstart with no configuration: the whole life cycle of a connected mailbox on embedded parts.
 *
 * - a real OpenID Provider (`oidc-provider`) on loopback stands in for Gmail / Microsoft;
 * - accounts live in PGlite (PostgreSQL compiled to WebAssembly) in a temp folder;
 * - the authorization flow is completed automatically (the provider's login and consent pages are walked
 *   over HTTP, as a browser would);
 * - mail goes over SMTP with XOAUTH2 to an in-process `smtp-server` that checks the bearer token with the
 *   provider, and, when Dovecot is installed, is read back over IMAP with XOAUTH2.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { aesGcmCipher, createMailboxAuth, isMailboxAuthError, oidc } from 'oauth-mailbox';
import { postgresStore } from 'oauth-mailbox/postgres';
import { completeDevLogin } from '../dev/dev-login.js';
import { type Dovecot, dovecotUnavailableReason, startDovecot } from '../dev/dovecot.js';
import { startLocalProvider } from '../dev/local-provider.js';
import { startSmtpSink } from '../dev/smtp-sink.js';
import { clip, show, step } from './narrate.js';

const OWNER = 'user-1';
const EMAIL = 'ada@example.com';
const REDIRECT_URI = 'http://127.0.0.1:53682/oauth/local/callback';
/** The local servers speak plain text on loopback; everywhere else the library requires TLS. */
const LOOPBACK = { allowInsecureHosts: ['127.0.0.1'] };

export async function runLocal(): Promise<void> {
  const cleanup: (() => Promise<void> | void)[] = [];
  try {
    step('Start the embedded parts');
    const op = await startLocalProvider({ redirectUris: [REDIRECT_URI] });
    cleanup.push(() => op.close());
    show('OpenID provider (oidc-provider)', op.issuer);

    const dataDir = mkdtempSync(join(tmpdir(), 'oauth-mailbox-demo-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const pglite = new PGlite(join(dataDir, 'pgdata'));
    cleanup.push(() => pglite.close());
    const store = postgresStore({ client: pglite });
    await store.migrate(); // idempotent; creates the tables on first run
    show('account store', `PGlite in ${dataDir}`);

    const noDovecot = dovecotUnavailableReason();
    let dovecot: Dovecot | undefined;
    if (noDovecot === undefined) {
      dovecot = await startDovecot({ introspectionUrl: op.introspectionUrl, mechanisms: ['xoauth2'] });
      cleanup.push(() => dovecot?.stop());
      show('IMAP server (Dovecot, checks tokens with the provider)', `127.0.0.1:${dovecot.imapPort}`);
    }
    const sink = await startSmtpSink({
      validate: async (user, token) => (await op.introspect(token)).username === user,
      deliver: (message) => {
        for (const to of message.to) dovecot?.deliver(to, message.raw);
      },
    });
    cleanup.push(() => sink.close());
    show('SMTP server (smtp-server, checks tokens with the provider)', `127.0.0.1:${sink.port}`);

    const key = process.env.TOKEN_KEY ?? randomBytes(32).toString('base64');
    const auth = createMailboxAuth({
      providers: [
        oidc({
          id: 'local',
          issuer: op.issuer,
          clientId: op.clientId,
          clientSecret: op.clientSecret,
          redirectUri: REDIRECT_URI,
          allowInsecureRequests: true, // http on loopback only; real providers are https
          mail: {
            imap: { host: '127.0.0.1', port: dovecot?.imapPort ?? 1, secure: false },
            smtp: { host: '127.0.0.1', port: sink.port, secure: false },
            sasl: 'XOAUTH2',
          },
        }),
      ],
      store,
      cipher: aesGcmCipher({ keys: { k2026: key }, current: 'k2026' }),
      allowedOrigins: [new URL(REDIRECT_URI).origin],
    });
    auth.on('refreshed', ({ accountId, rotated, expiresAt }) =>
      show('event refreshed', { accountId, rotated, expiresAt }),
    );

    step('Route 1: send the user to the provider');
    const { url } = await auth.startAuthorization('local', { owner: OWNER, returnTo: '/settings/mail' });
    show('authorization URL', clip(url.href, 110));
    show(
      'it carries',
      ['code_challenge_method', 'code_challenge', 'state', 'nonce', 'prompt']
        .map((p) => `${p}=${clip(url.searchParams.get(p) ?? '', 12)}`)
        .join(' '),
    );

    step(`The user signs in as ${EMAIL} and consents (walked automatically here)`);
    const callbackUrl = await completeDevLogin(url, { login: EMAIL, redirectUri: REDIRECT_URI });
    show('the provider redirects back to', clip(`${callbackUrl.origin}${callbackUrl.pathname}?code=…`, 110));

    step('Route 2: the callback (state, PKCE, iss, nonce and id_token checked, tokens stored encrypted)');
    const { account, created, returnTo } = await auth.completeAuthorization('local', callbackUrl, {
      owner: OWNER,
    });
    show('connected account (safe to log: it holds no secret)', account);
    show('created', created);
    show('returnTo', returnTo);

    step('What the store keeps: ciphertext only, bound to this account id');
    const { tokens } = await auth.persistence.load(account.id);
    const record = await store.getAccount(account.id);
    const ciphertext = record?.secret ?? '';
    show('stored secret', clip(ciphertext));
    show('contains the access token?', tokens !== null && ciphertext.includes(tokens.accessToken));
    show(
      'contains the refresh token?',
      tokens?.refreshToken != null && ciphertext.includes(tokens.refreshToken),
    );
    const token = await auth.getAccessToken(account.id);
    show('console.log(await auth.getAccessToken(id))', token);
    show('JSON.stringify of it', JSON.stringify(token));

    step('The access token expires: the next call refreshes it (once, whatever the number of callers)');
    if (tokens === null) throw new Error('the account has no tokens');
    await auth.persistence.saveTokens(account.id, {
      accessToken: tokens.accessToken,
      expiresAt: Date.now() - 1_000,
    });
    auth.refresher.invalidate(account.id); // forget the copy this process holds, as another process would
    const requestsBefore = op.tokenRequests;
    const fresh = await Promise.all(Array.from({ length: 20 }, () => auth.getAccessToken(account.id)));
    show('20 concurrent callers got one token', new Set(fresh.map((t) => t.accessToken)).size === 1);
    show('token requests to the provider', op.tokenRequests - requestsBefore);
    const after = (await auth.persistence.load(account.id)).tokens;
    show('refresh token rotated and stored before use', after?.refreshToken !== tokens.refreshToken);

    step('Send a message over SMTP (XOAUTH2, the token checked by the server)');
    const mailbox = auth.mailbox(account.id, { smtp: LOOPBACK, imap: LOOPBACK });
    cleanup.push(() => mailbox.disconnect());
    const subject = `Hello from oauth-mailbox ${new Date().toISOString()}`;
    const sent = await mailbox.send({
      to: EMAIL,
      subject,
      text: 'Sent with a token the library keeps fresh.',
    });
    show('accepted', sent.accepted);
    show(
      'the server saw',
      sink.messages.map((m) => ({ user: m.user, to: m.to, bytes: m.raw.length })),
    );

    step('Read it back over IMAP (XOAUTH2)');
    if (dovecot === undefined) {
      show(`skipped: ${noDovecot}`);
      show('hint: install Dovecot (apt-get install dovecot-imapd dovecot-submissiond) to read it back');
    } else {
      for await (const message of mailbox.fetchUnread({ max: 10, source: false })) {
        show('unread', { subject: message.subject, from: message.from[0]?.address, date: message.date });
      }
    }

    step('Health, then disconnect (revoked at the provider, deleted here)');
    show('account health', await auth.accountHealth(account.id));
    await mailbox.disconnect();
    show('disconnect', await auth.disconnect(account.id));
    const afterDisconnect = await auth.registry
      .get('local')
      .refresh(after?.refreshToken ?? '')
      .then(
        () => 'accepted',
        (error: unknown) => (isMailboxAuthError(error) ? error.code : 'failed'),
      );
    show('the stored refresh token at the provider now', afterDisconnect);

    console.log('\nDone. Next: examples/express (a whole app), docs/getting-started.md.');
  } finally {
    // Every part is closed even if another fails to close (a Dovecot left running would outlive the demo).
    for (const close of cleanup.reverse()) {
      await Promise.resolve()
        .then(close)
        .catch((error: unknown) => console.error('   (while closing)', error));
    }
  }
}
