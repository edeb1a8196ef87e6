/**
 * DEVELOPMENT ONLY: the repository's local OpenID Provider (`npx tsx examples/nextjs/dev-provider.ts`), so
 * the whole flow runs without a Google or Microsoft app: any email signs in, a loopback SMTP server takes
 * the test message, and Dovecot (when installed, `LOCAL_IMAP_PORT`) is the IMAP server the watcher reads.
 * Registered as `local` when `LOCAL_OIDC_ISSUER` is set; delete this file in your app.
 */
import { isLoopback, type MailboxClientOptions, type OAuthProvider, oidc } from 'oauth-mailbox';

/** The defaults of dev-provider.ts (a loopback-only client: not secrets). */
export const LOCAL_CLIENT = { id: 'nextjs-example', secret: 'local-dev-secret' } as const;

export function localProvider(redirectUri: string, problems: string[]): OAuthProvider | undefined {
  const issuer = process.env.LOCAL_OIDC_ISSUER;
  if (!issuer) return undefined;
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    problems.push('LOCAL_OIDC_ISSUER is not a URL.');
    return undefined;
  }
  if (!isLoopback(url)) {
    problems.push(
      'LOCAL_OIDC_ISSUER must be on this machine: it is the development provider of dev-provider.ts.',
    );
    return undefined;
  }
  const port = (name: string) => Number(process.env[name] || 1); // port 1: nothing listens, a clean failure
  return oidc({
    id: 'local',
    displayName: 'Local dev provider',
    issuer: url.href.replace(/\/$/, ''),
    clientId: process.env.LOCAL_OIDC_CLIENT_ID || LOCAL_CLIENT.id,
    clientSecret: process.env.LOCAL_OIDC_CLIENT_SECRET || LOCAL_CLIENT.secret,
    redirectUri,
    allowInsecureRequests: true, // http on loopback only (checked above)
    mail: {
      imap: { host: '127.0.0.1', port: port('LOCAL_IMAP_PORT'), secure: false },
      smtp: { host: '127.0.0.1', port: port('LOCAL_SMTP_PORT'), secure: false },
      sasl: 'XOAUTH2',
    },
  });
}

/** The local servers speak plain text on loopback; every other host must use TLS (the library's default). */
export function mailboxOptions(provider: string): MailboxClientOptions {
  const loopback = { allowInsecureHosts: ['127.0.0.1'] };
  return provider === 'local' ? { imap: loopback, smtp: loopback } : {};
}

/** Whether a provider's mailboxes can be watched: the dev provider only has IMAP with `LOCAL_IMAP_PORT`. */
export function watchable(provider: string): boolean {
  return provider !== 'local' || Boolean(process.env.LOCAL_IMAP_PORT);
}
