/**
 * Dev mode: the local stand-ins for a mail provider, from the shared dev kit in examples/dev. A real OpenID
 * provider (login and consent pages, PKCE, refresh rotation, revocation), an SMTP server that accepts only
 * XOAUTH2 with a live token from it, and Dovecot for IMAP when it is installed.
 *
 * Not needed in production: there the providers are Google and Microsoft.
 */
import { type OAuthProvider, oidc } from 'oauth-mailbox';
import { type Dovecot, dovecotUnavailableReason, startDovecot } from '../dev/dovecot.js';
import { type LocalProvider, startLocalProvider } from '../dev/local-provider.js';
import { type SmtpSink, startSmtpSink } from '../dev/smtp-sink.js';

/** The running dev services. */
export interface DevServices {
  /** The `local` provider to register. */
  readonly provider: OAuthProvider;
  readonly op: LocalProvider;
  readonly sink: SmtpSink;
  /** `undefined` when Dovecot cannot run here (or was not wanted). */
  readonly dovecot: Dovecot | undefined;
  /** Why there is no Dovecot, when there is none. */
  readonly noDovecot: string | undefined;
  /** Stop every service (newest first). Runs once; a service that fails to stop is logged, not fatal. */
  close(): Promise<void>;
}

/** Start the local provider (its redirect URI registered on `origin`), the SMTP server and maybe Dovecot. */
export async function startDevServices(options: {
  readonly origin: string;
  readonly dovecot?: boolean;
  /** Where shutdown failures are written. @default console.error */
  readonly log?: (line: string) => void;
}): Promise<DevServices> {
  const redirectUri = `${options.origin}/oauth/local/callback`;
  const log = options.log ?? ((line: string) => console.error(line));
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    // Newest first, and once: splice empties the list, so a second close() has nothing left to run. A
    // failing closer is logged and the rest still run (Dovecot must not be left behind).
    for (const closer of closers.splice(0).reverse()) {
      try {
        await closer();
      } catch (error) {
        log(
          `dev services: a service failed to stop: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  };
  try {
    const op = await startLocalProvider({ redirectUris: [redirectUri] });
    closers.push(() => op.close());

    const noDovecot = options.dovecot === false ? 'disabled' : dovecotUnavailableReason();
    let dovecot: Dovecot | undefined;
    if (noDovecot === undefined) {
      dovecot = await startDovecot({ introspectionUrl: op.introspectionUrl, mechanisms: ['xoauth2'] });
      const started = dovecot;
      closers.push(() => started.stop());
    }

    const sink = await startSmtpSink({
      // The server asks the provider whether the bearer token is live and whose it is, as Gmail does.
      validate: async (user, token) => (await op.introspect(token)).username === user,
      deliver: (message) => {
        for (const to of message.to) dovecot?.deliver(to, message.raw);
      },
    });
    closers.push(() => sink.close());

    const provider = oidc({
      id: 'local',
      displayName: 'Local test provider',
      issuer: op.issuer,
      clientId: op.clientId,
      clientSecret: op.clientSecret,
      redirectUri,
      allowInsecureRequests: true, // http on loopback only; real providers are https
      mail: {
        // Port 1 when there is no Dovecot: nothing listens there, IMAP calls fail with a typed error.
        imap: { host: '127.0.0.1', port: dovecot?.imapPort ?? 1, secure: false },
        smtp: { host: '127.0.0.1', port: sink.port, secure: false },
        sasl: 'XOAUTH2',
      },
    });
    return { provider, op, sink, dovecot, noDovecot, close };
  } catch (error) {
    await close();
    throw error;
  }
}
