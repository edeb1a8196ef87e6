/**
 * The IMAP/SMTP transport of `MailboxClient`: read with IMAP (imapflow, IDLE for watching), send with SMTP
 * (nodemailer), both with XOAUTH2 / OAUTHBEARER tokens from the refresher.
 * @internal
 * @module
 */
import type { FetchMessageObject, ImapFlow } from 'imapflow';
import type { SendMailOptions } from 'nodemailer';
import { InvalidArgumentError, MailConnectionError } from '../errors.js';
import { listenForAbort } from '../internal/abort.js';
import { integerOption } from '../internal/options.js';
import { timerMs } from '../internal/timers.js';
import type { MailContext } from './context.js';
import { connectImap } from './imap.js';
import type { MailMessage, SentMail } from './message.js';
import type { MailConnectOptions } from './settings.js';
import { createSmtpTransport, type SmtpTransport, toSmtpError } from './smtp.js';
import {
  defineTransport,
  type FetchUnreadRequest,
  type MailTransportDriver,
  type WatchRun,
} from './transport.js';

/**
 * UIDs per `UID FETCH` of `fetchUnread`: the most messages (sources included) held in memory at once.
 * @internal
 */
export const FETCH_WINDOW = 10;

/** What the IMAP transport needs from the client's options. */
export interface ImapTransportOptions {
  readonly imap?: MailConnectOptions;
  readonly smtp?: MailConnectOptions;
  readonly renewBeforeExpiryMs: number;
  readonly idleRestartMs: number;
}

/** Health hooks of the client. */
export interface DriverHooks {
  success(): void;
  fail(err: unknown): void;
}

function toMessage(message: FetchMessageObject, mailbox: string): MailMessage {
  const envelope = message.envelope;
  return {
    id: String(message.uid),
    uid: message.uid,
    mailbox,
    messageId: envelope?.messageId,
    subject: envelope?.subject,
    from: envelope?.from ?? [],
    to: envelope?.to ?? [],
    date: envelope?.date === undefined ? undefined : new Date(envelope.date),
    flags: [...(message.flags ?? [])],
    source: message.source,
  };
}

function asAddress(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const address = (value as { address?: unknown } | null)?.address;
  return typeof address === 'string' ? address : undefined;
}

/** IMAP to read (one connection opened on demand and reused; its own connection per watch), SMTP to send. */
export class ImapTransportDriver implements MailTransportDriver {
  readonly name = 'imap' as const;
  readonly #context: MailContext;
  readonly #accountId: string;
  readonly #options: ImapTransportOptions;
  readonly #hooks: DriverHooks;
  #imap: ImapFlow | undefined;
  #connecting: Promise<ImapFlow> | undefined;
  #smtp: Promise<SmtpTransport> | undefined;

  constructor(context: MailContext, accountId: string, options: ImapTransportOptions, hooks: DriverHooks) {
    this.#context = context;
    this.#accountId = accountId;
    this.#options = options;
    this.#hooks = hooks;
  }

  async connect(): Promise<void> {
    await this.#client();
  }

  async disconnect(): Promise<void> {
    const imap = this.#imap;
    this.#imap = undefined;
    if (imap?.usable) await imap.logout().catch(() => imap.close());
    else imap?.close();
    const smtp = this.#smtp;
    this.#smtp = undefined;
    if (smtp !== undefined) (await smtp.catch(() => undefined))?.close();
  }

  isConnected(): boolean {
    return this.#imap?.usable === true;
  }

  /**
   * One `UID SEARCH UNSEEN` (the unread UIDs: a few bytes each), then the wanted UIDs (the highest `max`,
   * descending, for `newest`; the lowest `max`, ascending, for `oldest`) fetched `FETCH_WINDOW` (10) at a time:
   * imapflow answers a window in server order, so at most one window is buffered, sorted and yielded. The
   * mailbox lock is held only while searching and fetching, never while the consumer has a message, so
   * `markAsRead` (or any other call on this connection) inside the loop does not wait for the listing. A
   * mailbox recreated meanwhile (another UIDVALIDITY: the UIDs name other messages) ends the listing.
   */
  async *fetchUnread(request: FetchUnreadRequest): AsyncGenerator<MailMessage, void, undefined> {
    const mailbox = request.mailbox ?? 'INBOX';
    const newest = request.order === 'newest';
    // One retry per listing on a new connection when the reused one turns out to be gone.
    const retry = { left: true };
    request.signal?.throwIfAborted();
    const { uids, validity } = await this.#locked(mailbox, retry, async (imap) => {
      // The reused connection may have this mailbox selected since an earlier call: its view is only brought
      // up to date by a command, and SEARCH would not see what arrived since. A NOOP syncs it first.
      await imap.noop();
      // imapflow answers a failed SEARCH with `false`, not an error: a dropped connection is not "no unread".
      const found = await imap.search({ seen: false }, { uid: true });
      if (found === false || found === undefined) {
        throw new MailConnectionError('The IMAP search of unread messages failed', {
          accountId: this.#accountId,
          protocol: 'imap',
        });
      }
      return {
        uids: [...found],
        validity: imap.mailbox === false ? undefined : imap.mailbox.uidValidity,
      };
    });
    uids.sort((a, b) => a - b);
    const wanted = newest ? uids.slice(-request.max).reverse() : uids.slice(0, request.max);
    for (let start = 0; start < wanted.length; start += FETCH_WINDOW) {
      request.signal?.throwIfAborted();
      const window = wanted.slice(start, start + FETCH_WINDOW);
      const batch = await this.#locked(mailbox, retry, async (imap) => {
        if (imap.mailbox !== false && imap.mailbox.uidValidity !== validity) return undefined;
        const fetched: MailMessage[] = [];
        for await (const message of imap.fetch(
          window.join(','),
          { uid: true, envelope: true, flags: true, source: request.source },
          { uid: true },
        )) {
          fetched.push(toMessage(message, mailbox));
        }
        return fetched;
      });
      if (batch === undefined) return;
      // A message expunged since the search is simply absent from its window.
      batch.sort((a, b) =>
        newest ? (b.uid as number) - (a.uid as number) : (a.uid as number) - (b.uid as number),
      );
      yield* batch;
    }
  }

  /**
   * `step` on the reused connection with `mailbox` locked. When it fails because the connection is gone (a
   * server restart, an idle timeout, a network drop: imapflow then marks it unusable) and `retry.left`,
   * once more on a new connection; any other failure, or a second drop, is thrown.
   */
  async #locked<T>(
    mailbox: string,
    retry: { left: boolean },
    step: (imap: ImapFlow) => Promise<T>,
  ): Promise<T> {
    for (;;) {
      const imap = await this.#client();
      try {
        const lock = await imap.getMailboxLock(mailbox);
        try {
          return await step(imap);
        } finally {
          lock.release();
        }
      } catch (err) {
        if (!retry.left || imap.usable) throw err;
        retry.left = false;
        if (this.#imap === imap) this.#imap = undefined;
        imap.close();
      }
    }
  }

  async markAsRead(id: string, options: { readonly mailbox: string | undefined }): Promise<void> {
    if (!/^[1-9]\d{0,9}$/.test(id)) {
      throw new InvalidArgumentError('id must be an IMAP UID: a positive integer (or its decimal string)');
    }
    const imap = await this.#client();
    const lock = await imap.getMailboxLock(options.mailbox ?? 'INBOX');
    try {
      await imap.messageFlagsAdd(id, ['\\Seen'], { uid: true });
    } finally {
      lock.release();
    }
  }

  async send(message: SendMailOptions, from: string): Promise<SentMail> {
    this.#smtp ??= createSmtpTransport(this.#context, this.#accountId, this.#options.smtp ?? {});
    try {
      const transport = await this.#smtp;
      const info = await transport.sendMail({ ...message, from: message.from ?? from });
      const list = (values: unknown): string[] =>
        (Array.isArray(values) ? values : []).map(asAddress).filter((a): a is string => a !== undefined);
      return {
        transport: 'imap',
        messageId: info.messageId,
        id: undefined,
        accepted: list(info.accepted),
        rejected: list(info.rejected),
        response: info.response,
      };
    } catch (err) {
      throw toSmtpError(err, this.#accountId);
    }
  }

  async #client(): Promise<ImapFlow> {
    if (this.#imap?.usable) return this.#imap;
    this.#connecting ??= connectImap(this.#context, this.#accountId, this.#options.imap ?? {})
      .then((imap) => {
        imap.on('error', (err: Error) => this.#hooks.fail(err));
        this.#imap = imap;
        this.#hooks.success();
        return imap;
      })
      .finally(() => {
        this.#connecting = undefined;
      });
    return this.#connecting;
  }

  /**
   * One connected period: its own IMAP connection; the baseline is the mailbox's next UID; messages after the
   * cursor are delivered, IDLE in between (re-issued every `idleRestartMs`), until the token nears expiry
   * (`'renew'`: the client reconnects with a fresh token) or the connection drops (throws).
   */
  async watchSession(run: WatchRun): Promise<'renew' | undefined> {
    const mailbox = run.mailbox ?? 'INBOX';
    const { signal } = run;
    let imap: ImapFlow | undefined;
    try {
      imap = await connectImap(
        this.#context,
        this.#accountId,
        { ...this.#options.imap, signal },
        { disableAutoIdle: true },
      );
      const token = await this.#context.refresher.getAccessToken(this.#accountId);
      const box = await imap.mailboxOpen(mailbox);
      if (run.cursor === undefined) run.cursor = String(box.uidNext - 1); // only messages from now on
      run.ready();
      return await this.#session(imap, mailbox, run, token.expiresAt);
    } finally {
      if (imap !== undefined) {
        if (imap.usable) await imap.logout().catch(() => imap?.close());
        else imap.close();
      }
    }
  }

  async #session(
    imap: ImapFlow,
    mailbox: string,
    run: WatchRun,
    expiresAt: Date | null,
  ): Promise<'renew' | undefined> {
    const { signal } = run;
    let wake: (() => void) | undefined;
    let pending = true; // catch up first: messages that arrived while disconnected
    let closed = false;
    const onExists = () => {
      pending = true;
      wake?.();
    };
    const onClose = () => {
      closed = true;
      wake?.();
    };
    imap.on('exists', onExists);
    imap.on('close', onClose);
    const { idleRestartMs, renewBeforeExpiryMs } = this.#options;
    try {
      for (;;) {
        if (signal.aborted) return undefined;
        if (closed) throw new Error('the IMAP connection was closed');
        if (pending) {
          pending = false;
          const lastUid = Number(run.cursor);
          for await (const message of imap.fetch(
            `${lastUid + 1}:*`,
            { uid: true, envelope: true, flags: true, source: true },
            { uid: true },
          )) {
            if (message.uid <= lastUid) continue; // `n:*` returns the last message when n is past the end
            await run.deliver(toMessage(message, mailbox));
            run.cursor = String(message.uid);
          }
          continue;
        }
        const untilRenew =
          expiresAt === null
            ? Number.POSITIVE_INFINITY
            : expiresAt.getTime() - renewBeforeExpiryMs - Date.now();
        if (untilRenew <= 0) return 'renew';
        // IDLE until a message arrives, the token nears expiry, or IDLE must be re-issued (a NOOP ends it).
        const idling = imap.idle().catch(() => {});
        const woke = await new Promise<boolean>((resolve) => {
          let stop = () => {};
          const finish = (value: boolean) => {
            clearTimeout(timer);
            stop();
            resolve(value);
          };
          const timer = setTimeout(() => finish(false), timerMs(Math.min(untilRenew, idleRestartMs)));
          stop = listenForAbort(signal, () => finish(true));
          wake = () => finish(true);
        });
        wake = undefined;
        // The next command (the fetch, or this NOOP when IDLE must be re-issued) ends the IDLE.
        if (!woke && !closed && !signal.aborted) await imap.noop();
        void idling;
      }
    } finally {
      imap.off('exists', onExists);
      imap.off('close', onClose);
    }
  }
}

function nonNegative(value: number | undefined, name: string): void {
  const refuse = () => new InvalidArgumentError(`${name} must be a non-negative integer (milliseconds)`);
  integerOption(value, 0, 0, Number.MAX_SAFE_INTEGER, refuse);
}

/** The `imap` transport: IMAP to read (IDLE to watch), SMTP to send. @internal */
export const imapTransport = defineTransport({
  name: 'imap',
  checkOptions: (options) => {
    nonNegative(options.renewBeforeExpiryMs, 'renewBeforeExpiryMs');
    nonNegative(options.idleRestartMs, 'idleRestartMs');
  },
  create: (context) => {
    const { options } = context;
    return new ImapTransportDriver(
      context,
      context.accountId,
      {
        ...(options.imap === undefined ? {} : { imap: options.imap }),
        ...(options.smtp === undefined ? {} : { smtp: options.smtp }),
        renewBeforeExpiryMs: options.renewBeforeExpiryMs ?? 300_000,
        idleRestartMs: options.idleRestartMs ?? 29 * 60_000,
      },
      { success: () => context.health.success(), fail: (err) => context.health.failure(err) },
    );
  },
});
