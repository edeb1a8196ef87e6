/**
 * SMTP transports (nodemailer) whose OAuth tokens come from the refresher.
 * @module
 */
import type { Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { MailAuthenticationError, MailboxAuthError, MailConnectionError } from '../errors.js';
import { connectSpanAttributes } from '../telemetry/attributes.js';
import { SPANS } from '../telemetry/names.js';
import { telemetryOf } from '../telemetry/telemetry.js';
import type { MailContext } from './context.js';
import { checkSaslField } from './sasl.js';
import { echoableForms, scrubError } from './scrub.js';
import { type MailConnectOptions, prepareConnection } from './settings.js';

/**
 * A nodemailer transporter for SMTP.
 *
 * @example
 * ```ts
 * const smtp: SmtpTransport = await auth.createSmtpTransport(accountId);
 * await smtp.sendMail({ to: 'bob@example.com', text: 'Hi' });
 * ```
 */
export type SmtpTransport = Transporter<SMTPTransport.SentMessageInfo, SMTPTransport.Options>;

/**
 * Carries a token failure through nodemailer, which stamps `code = 'EAUTH'` (and more) on whatever error
 * `provisionCallback` returns: the library's error rides inside, untouched, and `toSmtpError` takes it out.
 */
class TokenProvisionFailure extends Error {
  override readonly name = 'TokenProvisionFailure';
  constructor(readonly error: unknown) {
    super('No access token for the SMTP login');
  }
}

/**
 * A nodemailer transport for an account: the provider's SMTP settings (overridable), TLS required except on
 * `allowInsecureHosts`, XOAUTH2 with tokens from the refresher through `provisionCallback` (a server's
 * rejection makes nodemailer ask for a renewed token: a forced refresh). nodemailer's own refresh (which
 * would drop rotated refresh tokens) is never used. Create one per account and reuse it across token
 * renewals; `close()` it when done.
 *
 * @example
 * ```ts
 * const smtp = await auth.createSmtpTransport(accountId);
 * await smtp.sendMail({ from: account.email, to: 'bob@example.com', subject: 'Hi', text: 'Hello' });
 * ```
 */
export async function createSmtpTransport(
  context: MailContext,
  accountId: string,
  options: MailConnectOptions = {},
): Promise<SmtpTransport> {
  // Fails early (unknown account, re-authorization required) before a transport exists.
  const { server, user } = await prepareConnection(context, accountId, options, 'smtp');
  // Loaded on first use, so importing the library stays cheap for hosts that never send mail.
  const nodemailer = (await import('nodemailer')).default;
  // The tokens this transport handed to the server (the last few: a renewal hands a second one), so that a
  // server that echoes one in its reply does not put it into an error's text (scrub.ts).
  const handed: string[] = [];
  const transport = nodemailer.createTransport({
    host: server.host,
    port: server.port,
    secure: server.secure,
    requireTLS: !server.secure && !server.insecureAllowed,
    ignoreTLS: !server.secure && server.insecureAllowed,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    connectionTimeout: options.connectionTimeoutMs ?? 30_000,
    greetingTimeout: options.connectionTimeoutMs ?? 30_000,
    logger: false,
    auth: {
      type: 'OAuth2',
      user,
      // No token in the options (they are easy to log): nodemailer asks provisionCallback on first use.
      provisionCallback: (
        _user: string,
        renew: boolean,
        callback: (err: Error | null, token?: string, expires?: number) => void,
      ) => {
        // The token is checked before the callback; the callback runs exactly once (an exception thrown by
        // nodemailer inside it must not run it a second time).
        context.refresher
          .getAccessToken(accountId, { forceRefresh: renew })
          .then((token) => {
            checkSaslField(token.accessToken, 'accessToken');
            return token;
          })
          .then(
            (token) => {
              if (!handed.includes(token.accessToken)) handed.push(token.accessToken);
              if (handed.length > MAX_HANDED_TOKENS) handed.shift();
              callback(null, token.accessToken, token.expiresAt?.getTime());
            },
            (err: unknown) => callback(new TokenProvisionFailure(err)),
          );
      },
    },
  } as SMTPTransport.Options);
  const scrub = <T>(err: T): T =>
    scrubError(
      err,
      handed.flatMap((token) => echoableForms(token, user)),
    );
  // Errors leave sendMail and verify scrubbed of the tokens handed out, with a callback or a promise.
  const sendMail = transport.sendMail.bind(transport);
  const verify = transport.verify.bind(transport);
  type Callback = (err: Error | null, result?: unknown) => void;
  Object.assign(transport, {
    sendMail(mail: unknown, callback?: Callback) {
      // One span per message (nodemailer connects and authenticates inside sendMail).
      const sent = telemetryOf(context.refresher).span(
        SPANS.smtpSend,
        connectSpanAttributes(accountId, 'smtp'),
        () =>
          (sendMail as (m: unknown) => Promise<unknown>)(mail).catch((err: unknown) => {
            throw scrub(err);
          }),
      );
      if (callback === undefined) return sent;
      sent.then(
        (info) => callback(null, info),
        (err: Error) => callback(err),
      );
      return undefined;
    },
    verify(callback?: Callback) {
      if (callback !== undefined)
        return (verify as (cb: Callback) => void)((err, ok) => callback(scrub(err), ok));
      return (verify as () => Promise<true>)().catch((err: unknown) => {
        throw scrub(err);
      });
    },
  });
  return transport;
}

/** How many of the tokens a transport handed out it remembers for scrubbing. */
const MAX_HANDED_TOKENS = 4;

/**
 * Turn a nodemailer failure into a typed error: a token that could not be had → the refresher's error
 * (`ERR_REAUTHORIZATION_REQUIRED`, `ERR_PROVIDER_UNAVAILABLE`...), `EAUTH` → `MailAuthenticationError`,
 * connection and TLS failures → `MailConnectionError`; library errors pass through.
 *
 * @example
 * ```ts
 * try { await smtp.sendMail(message) } catch (err) { throw toSmtpError(err, accountId) }
 * ```
 */
export function toSmtpError(err: unknown, accountId?: string): unknown {
  // No token could be had (re-authorization required, provider down...): that error, not nodemailer's EAUTH.
  if (err instanceof TokenProvisionFailure) return err.error;
  if (err instanceof MailboxAuthError) return err;
  const code = (err as { code?: unknown })?.code;
  const base = { protocol: 'smtp' as const, cause: err, ...(accountId === undefined ? {} : { accountId }) };
  if (code === 'EAUTH' || code === 'ENOAUTH') {
    return new MailAuthenticationError('The SMTP server refused the OAuth token even after a refresh', base);
  }
  if (code === 'EENVELOPE' || code === 'EMESSAGE' || code === 'EPROTOCOL' || code === 'EMESSAGESIZE')
    return err;
  return new MailConnectionError('The SMTP connection failed', base);
}
