/**
 * DEVELOPMENT ONLY: a local OpenID Provider, an SMTP server and, when Dovecot is installed, an IMAP server,
 * so the example runs end to end without a Google or Microsoft app. From the repository root:
 *
 *   npx tsx examples/nextjs/dev-provider.ts     # then put the printed lines in examples/nextjs/.env.local
 *   npx next dev examples/nextjs                 # in another terminal; "Connect Local dev provider"
 *
 * Sign in with any email (any password) on its login page and consent. "Send a test message" arrives here:
 * the SMTP server accepts only XOAUTH2 logins whose access token the provider confirms, like Gmail. With
 * Dovecot (Debian: apt-get install dovecot-imapd dovecot-submissiond) the message is delivered to the
 * mailbox's INBOX, where the app's watcher hears of it (the accounts page's "Latest mail").
 */
import { type Dovecot, dovecotUnavailableReason, startDovecot } from '../dev/dovecot.js';
import { startLocalProvider } from '../dev/local-provider.js';
import { startSmtpSink } from '../dev/smtp-sink.js';
import { LOCAL_CLIENT } from './lib/local-provider';

const appOrigin = process.env.APP_ORIGIN ?? 'http://localhost:3000';
const op = await startLocalProvider({
  redirectUris: [`${appOrigin}/api/oauth/local/callback`],
  port: Number(process.env.LOCAL_OIDC_PORT || 4000),
  clientId: LOCAL_CLIENT.id,
  clientSecret: LOCAL_CLIENT.secret,
});
const noDovecot = dovecotUnavailableReason();
const dovecot: Dovecot | undefined =
  noDovecot === undefined
    ? await startDovecot({ introspectionUrl: op.introspectionUrl, mechanisms: ['xoauth2'] })
    : undefined;
const sink = await startSmtpSink({
  validate: async (user, accessToken) => (await op.introspect(accessToken)).username === user,
  deliver: (message) => {
    const subject = /^Subject: (.*)$/im.exec(message.raw.toString('utf8'))?.[1] ?? '';
    console.log(`SMTP (as ${message.user}): ${message.from} → ${message.to.join(', ')}: ${subject}`);
    for (const to of message.to) dovecot?.deliver(to, message.raw);
  },
});

console.log(`Local OpenID Provider: ${op.issuer} (redirect URI ${appOrigin}/api/oauth/local/callback)
SMTP server: 127.0.0.1:${sink.port}
${dovecot ? `IMAP server (Dovecot): 127.0.0.1:${dovecot.imapPort}` : `No IMAP server, so no watching: ${noDovecot}`}

In examples/nextjs/.env.local:
LOCAL_OIDC_ISSUER=${op.issuer}
LOCAL_SMTP_PORT=${sink.port}${dovecot ? `\nLOCAL_IMAP_PORT=${dovecot.imapPort}` : ''}

Ctrl-C to stop.`);

process.once('SIGINT', () => {
  void Promise.all([op.close(), sink.close(), dovecot?.stop()]).then(() => process.exit(0));
});
