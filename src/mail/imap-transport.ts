/**
 * The IMAP/SMTP transport of `MailboxClient`: read with IMAP (imapflow, IDLE for watching), send with SMTP
 * (nodemailer), both with XOAUTH2 / OAUTHBEARER tokens from the refresher.
 * @internal
 * @module
 */
import type { FetchMessageObject, ImapFlow, MailboxObject } from 'imapflow';
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

/** A day in milliseconds: IMAP's `SEARCH SINCE` takes a day, not a time. */
const DAY_MS = 86_400_000;

/**
 * An IMAP watch position: the UIDVALIDITY its UID counts in, the last UID delivered, and the watermark a
 * resync starts from when the mailbox's UIDs change.
 * @internal
 */
export interface ImapCursor {
  /** The mailbox's UIDVALIDITY (decimal) when `lastUid` was delivered; `''`: not known (a bare UID). */
  readonly uidValidity: string;
  /** The highest UID delivered, or the watch's baseline (the mailbox's highest UID when it started). */
  readonly lastUid: number;
  /** The INTERNALDATE (epoch ms, to the second) of the newest message delivered; `0`: none yet. */
  readonly watermark: number;
}

/** `<uidValidity>:<lastUid>:<watermark>`. @internal */
export function encodeImapCursor(cursor: ImapCursor): string {
  return `${cursor.uidValidity}:${cursor.lastUid}:${cursor.watermark}`;
}

/**
 * Read an IMAP watch position: `<uidValidity>:<lastUid>:<watermark>`, or a bare UID (a position saved before
 * 0.2, `sinceUid`, or a host's own), read as that UID with the UIDVALIDITY unknown and no watermark. Anything
 * else is an `InvalidArgumentError`.
 * @internal
 */
export function decodeImapCursor(value: string): ImapCursor {
  const match = /^(?:(\d{1,10}):(\d{1,10}):(\d{1,16})|(\d{1,16}))$/.exec(value);
  const lastUid = Number(match?.[2] ?? match?.[4]);
  const watermark = Number(match?.[3] ?? 0);
  if (match === null || !Number.isSafeInteger(lastUid) || !Number.isSafeInteger(watermark)) {
    throw new InvalidArgumentError(
      'cursor is not an IMAP watch position (use watcher.cursor of an IMAP watch)',
    );
  }
  return { uidValidity: match[1] ?? '', lastUid, watermark };
}

/** The last delivered UID of an IMAP watch position (`0`: none, or not an IMAP position). @internal */
export function lastUidOf(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  try {
    return decodeImapCursor(cursor).lastUid;
  } catch {
    return 0;
  }
}

/** A message's INTERNALDATE in epoch ms (`undefined`: the server gave none that parses). */
function receivedAt(message: FetchMessageObject): number | undefined {
  const date = message.internalDate;
  const ms = date instanceof Date ? date.getTime() : typeof date === 'string' ? Date.parse(date) : Number.NaN;
  return Number.isNaN(ms) ? undefined : ms;
}

/** UIDs as an IMAP sequence set, runs of consecutive UIDs as ranges (`1:3,5,7:8`). */
function uidSet(uids: readonly number[]): string {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    const start = sorted[i] as number;
    let end = start;
    while (sorted[i + 1] === end + 1) end = sorted[++i] as number;
    parts.push(start === end ? String(start) : `${start}:${end}`);
    i++;
  }
  return parts.join(',');
}

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
   * One connected period: its own IMAP connection; the baseline is the mailbox's highest UID; messages after
   * the cursor's UID are delivered, IDLE in between (re-issued every `idleRestartMs`), until the token nears
   * expiry (`'renew'`: the client reconnects with a fresh token) or the connection drops (throws).
   *
   * The cursor (`<uidValidity>:<lastUid>:<watermark>`) also keeps the mailbox's UIDVALIDITY and the
   * watermark: the INTERNALDATE of the newest message delivered. When the opened mailbox has another
   * UIDVALIDITY (its index rebuilt, or the mailbox recreated: the UIDs kept name other messages, if any), the
   * gap is resynced from the watermark: the messages received at or after it are delivered oldest first
   * (those of the watermark's second again: IMAP dates are to the second), and the watch goes on past the
   * mailbox's highest UID in the new UIDVALIDITY (`resynced`, reason `uidvalidity`). With no watermark yet
   * (nothing delivered), it goes on from the mailbox's highest UID. A bare UID (an earlier version's cursor,
   * `sinceUid`) is counted in the mailbox's current UIDVALIDITY.
   */
  async watchSession(run: WatchRun): Promise<'renew' | undefined> {
    const mailbox = run.mailbox ?? 'INBOX';
    const { signal } = run;
    // Another transport's position (or garbage) is refused before connecting.
    const given = run.cursor === undefined ? undefined : decodeImapCursor(run.cursor);
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
      const uidValidity = String(box.uidValidity);
      // No position: only messages from now on. A bare UID counts in the mailbox's UIDs as they are now.
      // Another UIDVALIDITY than the position's is resynced by the session.
      const cursor: ImapCursor =
        given === undefined
          ? { uidValidity, lastUid: box.uidNext - 1, watermark: 0 }
          : given.uidValidity === ''
            ? { ...given, uidValidity }
            : given;
      run.cursor = encodeImapCursor(cursor);
      run.ready();
      return await this.#session(imap, mailbox, run, cursor, token.expiresAt);
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
    from: ImapCursor,
    expiresAt: Date | null,
  ): Promise<'renew' | undefined> {
    const { signal } = run;
    let cursor = from;
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
    // imapflow selects the mailbox again when it finds its UIDVALIDITY changed (its STATUS polling, for a
    // server without IDLE): caught up (resynced) like an arrival. Dovecot closes the connection instead, and
    // the next session resyncs.
    imap.on('mailboxOpen', onExists);
    imap.on('close', onClose);
    const { idleRestartMs, renewBeforeExpiryMs } = this.#options;
    try {
      for (;;) {
        if (signal.aborted) return undefined;
        if (closed) throw new Error('the IMAP connection was closed');
        if (pending) {
          pending = false;
          if (String(this.#selected(imap).uidValidity) !== cursor.uidValidity) {
            const resynced = await this.#resync(imap, mailbox, run, cursor);
            if (resynced === undefined) return undefined; // stopped: the cursor keeps the old UIDVALIDITY
            cursor = resynced;
            run.cursor = encodeImapCursor(cursor);
            run.resynced('uidvalidity');
            pending = true; // what arrived after the resync's search
            continue;
          }
          const lastUid = cursor.lastUid;
          for await (const message of imap.fetch(
            `${lastUid + 1}:*`,
            { uid: true, envelope: true, flags: true, source: true, internalDate: true },
            { uid: true },
          )) {
            if (message.uid <= lastUid) continue; // `n:*` returns the last message when n is past the end
            await run.deliver(toMessage(message, mailbox));
            const at = receivedAt(message) ?? 0;
            cursor = { ...cursor, lastUid: message.uid, watermark: Math.max(cursor.watermark, at) };
            run.cursor = encodeImapCursor(cursor);
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
      imap.off('mailboxOpen', onExists);
      imap.off('close', onClose);
    }
  }

  /** The mailbox the watch's connection has selected (none: the server closed it, a `MailConnectionError`). */
  #selected(imap: ImapFlow): MailboxObject {
    if (imap.mailbox === false) {
      throw new MailConnectionError('The watched IMAP mailbox is no longer selected', {
        accountId: this.#accountId,
        protocol: 'imap',
      });
    }
    return imap.mailbox;
  }

  /**
   * The mailbox's UIDs are not the ones the cursor counts in (another UIDVALIDITY): deliver, oldest first,
   * the messages received at or after the watermark (`UID SEARCH SINCE` the day before its day, IMAP search
   * dates being days, then each message's INTERNALDATE compared), fetched `FETCH_WINDOW` at a time, and go on
   * from the new UIDVALIDITY past the mailbox's highest UID. While it runs the cursor keeps the old
   * UIDVALIDITY and only its watermark moves: a resync cut short (a stop, a crash, a drop) starts again
   * from the newest message it delivered. Resolves with the new cursor, or `undefined` when the watch
   * stopped first.
   */
  async #resync(
    imap: ImapFlow,
    mailbox: string,
    run: WatchRun,
    from: ImapCursor,
  ): Promise<ImapCursor | undefined> {
    const box = this.#selected(imap);
    const uidValidity = String(box.uidValidity);
    // Messages with a higher UID arrived after the search below: the session's catch-up delivers them.
    let highest = box.uidNext - 1;
    // Nothing delivered yet, so no watermark: nothing to resync from but now.
    if (from.watermark === 0) return { uidValidity, lastUid: highest, watermark: 0 };
    const since = new Date(Math.floor(from.watermark / DAY_MS) * DAY_MS - DAY_MS);
    // imapflow answers a failed SEARCH with `false`, not an error: a dropped connection is not "nothing new".
    const found = await imap.search({ since }, { uid: true });
    if (found === false || found === undefined) {
      throw new MailConnectionError('The IMAP search of the messages since the watermark failed', {
        accountId: this.#accountId,
        protocol: 'imap',
      });
    }
    const due: { readonly uid: number; readonly at: number }[] = [];
    if (found.length > 0) {
      for await (const message of imap.fetch(
        uidSet(found),
        { uid: true, internalDate: true },
        { uid: true },
      )) {
        highest = Math.max(highest, message.uid);
        // A message without a date the server gives is delivered (last): never lost for want of one.
        const at = receivedAt(message) ?? Number.POSITIVE_INFINITY;
        if (at >= from.watermark) due.push({ uid: message.uid, at });
      }
    }
    due.sort((a, b) => a.at - b.at || a.uid - b.uid);
    let cursor = from;
    for (let start = 0; start < due.length; start += FETCH_WINDOW) {
      if (run.signal.aborted) return undefined;
      const window = due.slice(start, start + FETCH_WINDOW);
      const fetched = new Map<number, FetchMessageObject>();
      for await (const message of imap.fetch(
        uidSet(window.map((m) => m.uid)),
        { uid: true, envelope: true, flags: true, source: true },
        { uid: true },
      )) {
        fetched.set(message.uid, message);
      }
      for (const { uid, at } of window) {
        const message = fetched.get(uid);
        if (message === undefined) continue; // expunged since the search
        if (run.signal.aborted) return undefined;
        await run.deliver(toMessage(message, mailbox));
        if (Number.isFinite(at) && at > cursor.watermark) {
          cursor = { ...cursor, watermark: at };
          run.cursor = encodeImapCursor(cursor);
        }
      }
    }
    if (run.signal.aborted) return undefined;
    return { uidValidity, lastUid: highest, watermark: cursor.watermark };
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
