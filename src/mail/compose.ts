/**
 * Builds a raw RFC 822 message from nodemailer mail options with nodemailer's MailComposer, for the API
 * transports (Gmail `raw`, Graph MIME `sendMail`).
 * @internal
 * @module
 */
import type { SendMailOptions } from 'nodemailer';
import { InvalidArgumentError } from '../errors.js';

let mailComposer: Promise<typeof import('nodemailer/lib/mail-composer')> | undefined;

/** A composed message: its bytes, its `Message-ID`, and every envelope recipient (To, Cc, Bcc). */
export interface ComposedMessage {
  readonly raw: Buffer;
  readonly messageId: string | undefined;
  readonly recipients: string[];
}

/**
 * Compose `message` (`from` defaults to the account's address). Bcc stays in the headers: both APIs read the
 * recipients from them and strip Bcc before delivery.
 */
export async function composeMessage(message: SendMailOptions, from: string): Promise<ComposedMessage> {
  if (typeof message !== 'object' || message === null)
    throw new InvalidArgumentError('message must be an object');
  // Loaded on first use, so importing the library stays cheap for hosts that never send mail.
  mailComposer ??= import('nodemailer/lib/mail-composer');
  const MailComposer = (await mailComposer).default;
  const node = new MailComposer({ ...message, from: message.from ?? from } as never).compile();
  node.keepBcc = true;
  const envelope = node.getEnvelope() as { to?: unknown };
  const recipients = Array.isArray(envelope.to)
    ? envelope.to.filter((a): a is string => typeof a === 'string')
    : [];
  if (recipients.length === 0) throw new InvalidArgumentError('message has no recipient (to, cc or bcc)');
  const raw = await node.build();
  return { raw, messageId: node.messageId(), recipients };
}
