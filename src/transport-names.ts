/**
 * The names of mail transports: the one list of the built-in ones and the one type every layer uses (provider
 * presets, the client, the mail errors' `protocol`).
 * @module
 */

/**
 * The transports the package brings: `imap` (IMAP to read, SMTP to send, XOAUTH2 / OAUTHBEARER),
 * `gmail-api` (the Gmail REST API) and `graph` (Microsoft Graph).
 *
 * @example
 * ```ts
 * MAIL_TRANSPORTS.includes(value as BuiltinMailTransport);
 * ```
 */
export type BuiltinMailTransport = 'imap' | 'gmail-api' | 'graph';

/**
 * How a mailbox is read and sent: a built-in transport ({@link BuiltinMailTransport}) or the name of one the
 * host defined with `defineTransport` and passed to `createMailboxAuth({ transports })`. Chosen per provider
 * preset (`mailTransport`) and per call (`auth.mailbox(id, { transport })`).
 *
 * @example
 * ```ts
 * const transport: MailTransport = 'graph';
 * const mailbox = auth.mailbox(accountId, { transport });
 * ```
 */
export type MailTransport = BuiltinMailTransport | (string & {});

/**
 * Every built-in {@link MailTransport}, for validation and menus.
 *
 * @example
 * ```ts
 * MAIL_TRANSPORTS.includes(value as BuiltinMailTransport);
 * ```
 */
export const MAIL_TRANSPORTS: readonly BuiltinMailTransport[] = Object.freeze(['imap', 'gmail-api', 'graph']);
