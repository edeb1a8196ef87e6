/**
 * An SMTP server on loopback (`smtp-server`) that accepts only XOAUTH2 logins whose bearer token a check
 * confirms (the local OpenID provider's introspection), as Gmail's and Outlook's submission servers do. A
 * rejected token gets the 334 JSON challenge then 535, like Gmail. Accepted messages are kept and handed to
 * `deliver` (the quickstart delivers them into Dovecot's INBOX).
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One accepted message. */
export interface SunkMessage {
  /** The authenticated user (the XOAUTH2 `user=`). */
  readonly user: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly raw: Buffer;
}

/** Options of {@link startSmtpSink}. */
export interface SmtpSinkOptions {
  /** Whether `accessToken` is live and belongs to `user`. */
  readonly validate: (user: string, accessToken: string) => Promise<boolean>;
  /** Called with each accepted message (before the server answers 250). */
  readonly deliver?: (message: SunkMessage) => void | Promise<void>;
}

/** A running {@link startSmtpSink}. */
export interface SmtpSink {
  readonly port: number;
  /** Messages accepted so far. */
  readonly messages: readonly SunkMessage[];
  /** Logins refused so far. */
  readonly rejectedLogins: number;
  close(): Promise<void>;
}

/**
 * Start the sink.
 *
 * @example
 * ```ts
 * const sink = await startSmtpSink({ validate: async (user, token) => (await op.introspect(token)).username === user });
 * ```
 */
export async function startSmtpSink(options: SmtpSinkOptions): Promise<SmtpSink> {
  const messages: SunkMessage[] = [];
  let rejectedLogins = 0;
  const server = new SMTPServer({
    authMethods: ['XOAUTH2'],
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true, // loopback only
    logger: false,
    onAuth(auth, _session, callback) {
      const token = auth.accessToken ?? '';
      options.validate(auth.username ?? '', token).then(
        (ok) => {
          if (ok) return callback(null, { user: auth.username });
          rejectedLogins++;
          // Gmail's answer to a dead token: a 334 JSON challenge, then 535 after the client's empty line.
          return callback(null, {
            data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' },
          });
        },
        (error: Error) => callback(error),
      );
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        const message: SunkMessage = {
          user: String(session.user ?? ''),
          from,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
        };
        messages.push(message);
        Promise.resolve(options.deliver?.(message)).then(
          () => callback(),
          (error: Error) => callback(error),
        );
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = (server as unknown as { server: { address(): AddressInfo } }).server.address();
  return {
    port,
    messages,
    get rejectedLogins() {
      return rejectedLogins;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
