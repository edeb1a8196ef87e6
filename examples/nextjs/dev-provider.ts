/**
 * DEVELOPMENT ONLY: a local OpenID Provider and SMTP server, so the example runs end to end without a Google
 * or Microsoft app. From the repository root:
 *
 *   npx tsx examples/nextjs/dev-provider.ts     # then put the two printed lines in examples/nextjs/.env.local
 *   npx next dev examples/nextjs                 # in another terminal; "Connect Local dev provider"
 *
 * Sign in with any email (any password) on its login page and consent. "Send a test message" arrives here:
 * the SMTP server accepts only XOAUTH2 logins whose access token the provider confirms, like Gmail.
 */
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
const sink = await startSmtpSink({
  validate: async (user, accessToken) => (await op.introspect(accessToken)).username === user,
  deliver: (message) => {
    const subject = /^Subject: (.*)$/im.exec(message.raw.toString('utf8'))?.[1] ?? '';
    console.log(`SMTP (as ${message.user}): ${message.from} → ${message.to.join(', ')}: ${subject}`);
  },
});

console.log(`Local OpenID Provider: ${op.issuer} (redirect URI ${appOrigin}/api/oauth/local/callback)
SMTP server: 127.0.0.1:${sink.port}

In examples/nextjs/.env.local:
LOCAL_OIDC_ISSUER=${op.issuer}
LOCAL_SMTP_PORT=${sink.port}

Ctrl-C to stop.`);

process.once('SIGINT', () => {
  void Promise.all([op.close(), sink.close()]).then(() => process.exit(0));
});
