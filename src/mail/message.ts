/**
 * The shapes every mail transport returns (`MailMessage`, `SentMail`), and the header reading the API
 * transports share.
 * @module
 */
import type { MailTransport } from '../transport-names.js';

/**
 * A mail address as transports report it.
 *
 * @example
 * ```ts
 * const sender: MailAddress | undefined = message.from[0];
 * console.log(sender?.name, sender?.address);
 * ```
 */
export interface MailAddress {
  /** The display name. */
  readonly name?: string;
  /** The address. */
  readonly address?: string;
}

/**
 * One message as {@link MailboxClient.fetchUnread} and watchers deliver it, whatever the transport.
 *
 * @example
 * ```ts
 * mailbox.watch(async (message: MailMessage) => {
 *   console.log(message.id, message.subject, message.from[0]?.address);
 *   await mailbox.markAsRead(message.id);
 * });
 * ```
 */
export interface MailMessage {
  /**
   * The message's id for `markAsRead`: the IMAP UID as a decimal string, the Gmail message id, or the Graph
   * message id.
   */
  readonly id: string;
  /** The IMAP UID (IMAP only; `undefined` for the API transports). */
  readonly uid: number | undefined;
  /** The mailbox it was read from: an IMAP path, a Gmail label id, or a Graph folder. */
  readonly mailbox: string;
  /** The `Message-ID` header. */
  readonly messageId: string | undefined;
  /** The `Subject` header. */
  readonly subject: string | undefined;
  /** The `From` addresses. */
  readonly from: readonly MailAddress[];
  /** The `To` addresses. */
  readonly to: readonly MailAddress[];
  /** The message's date. */
  readonly date: Date | undefined;
  /**
   * IMAP flags (`\Seen`, `\Flagged`, ...). The API transports map their state to the same names: `\Seen`
   * when read, `\Flagged` when starred (Gmail) or flagged (Graph).
   */
  readonly flags: readonly string[];
  /** The raw RFC 822 message, when requested. */
  readonly source: Buffer | undefined;
}

/**
 * What {@link MailboxClient.send} returns, whatever the transport.
 *
 * @example
 * ```ts
 * const sent: SentMail = await mailbox.send({ to: 'bob@example.com', subject: 'Hi', text: 'Hello' });
 * console.log(sent.transport, sent.messageId, sent.accepted);
 * ```
 */
export interface SentMail {
  /** The transport that sent it. */
  readonly transport: MailTransport;
  /** The `Message-ID` header of the sent message. */
  readonly messageId: string | undefined;
  /** The provider's id of the sent message (Gmail); `undefined` for SMTP and Graph (`sendMail` returns none). */
  readonly id: string | undefined;
  /** Recipients the server accepted (SMTP), or every recipient of a message the API accepted. */
  readonly accepted: readonly string[];
  /** Recipients the SMTP server rejected (always empty for the APIs: they accept or refuse the message). */
  readonly rejected: readonly string[];
  /** The SMTP server's last response line, when there was one. */
  readonly response: string | undefined;
}

let libmime: Promise<typeof import('libmime').default> | undefined;

/**
 * Decode RFC 2047 encoded words (`=?UTF-8?B?…?=`, `=?windows-1252?Q?…?=`) in a header value with libmime,
 * the decoder imapflow uses for IMAP envelopes, so every transport reports the same text: adjacent words of
 * one charset are joined before decoding (a character split across two words survives), windows-1252 and
 * the other legacy charsets go through iconv-lite, an unknown charset is read as UTF-8, and a malformed
 * word is left as it is.
 * @internal
 */
export async function decodeWords(value: string): Promise<string> {
  // Loaded on first use, as the IMAP and SMTP libraries are.
  libmime ??= import('libmime').then((module) => module.default);
  return (await libmime).decodeWords(value);
}

/** The header block of a raw message, unfolded, by lower-case name (first occurrence). @internal */
export function readHeaders(raw: Buffer): Map<string, string> {
  const end = raw.indexOf('\r\n\r\n');
  const endLf = raw.indexOf('\n\n');
  const stop = end === -1 ? endLf : endLf === -1 ? end : Math.min(end, endLf);
  const block = raw.subarray(0, stop === -1 ? Math.min(raw.length, 65_536) : stop).toString('utf8');
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}

let addressparser: Promise<typeof import('nodemailer/lib/addressparser')> | undefined;

/** Parse an address header (`"Ada" <ada@example.com>, bob@example.com`), groups flattened. @internal */
export async function parseAddresses(value: string | undefined): Promise<MailAddress[]> {
  if (value === undefined || value.trim() === '') return [];
  // Loaded on first use, as every nodemailer module is.
  addressparser ??= import('nodemailer/lib/addressparser');
  const parse = (await addressparser).default;
  return Promise.all(
    parse(value, { flatten: true }).map(async ({ name, address }) => ({
      ...(name ? { name: await decodeWords(name) } : {}),
      ...(address ? { address } : {}),
    })),
  );
}

/** A date header or epoch milliseconds as a `Date`, `undefined` when absent or invalid. @internal */
export function toDate(value: string | number | undefined | null): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const date = new Date(typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
