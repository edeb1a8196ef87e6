/**
 * `MailboxClient`: the mailbox interface host apps program against (fetch unread, mark read, send, watch,
 * health), over IMAP and SMTP with tokens from the refresher.
 * @module
 */

import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import type { FetchMessageObject, ImapFlow } from 'imapflow';
import type { SendMailOptions } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import {
  InvalidArgumentError,
  isMailboxAuthError,
  type MailboxAuthError,
  ReauthorizationRequiredError,
} from '../errors.js';
import { emitSafely } from '../events.js';
import { type Logger, silentLogger } from '../refresh/logger.js';
import { connectImap, type MailContext } from './imap.js';
import type { MailConnectOptions } from './settings.js';
import { createSmtpTransport, type SmtpTransport, toSmtpError } from './smtp.js';

const DAY = 86_400_000;

/**
 * Options of {@link MailboxClient}.
 *
 * @example
 * ```ts
 * const mailbox = auth.mailbox(accountId, { renewBeforeExpiryMs: 600_000, reconnect: { maxDelayMs: 30_000 } });
 * ```
 */
export interface MailboxClientOptions {
  /** IMAP connection options (host/port overrides, TLS, shared mailbox user...). */
  readonly imap?: MailConnectOptions;
  /** SMTP connection options. */
  readonly smtp?: MailConnectOptions;
  /**
   * Reconnect a watcher with a fresh token this long before the access token expires, in milliseconds.
   * @default 300000
   */
  readonly renewBeforeExpiryMs?: number;
  /**
   * Break and re-issue IDLE at this interval, in milliseconds (servers drop IDLE after 30 minutes).
   * @default 1740000 (29 minutes)
   */
  readonly idleRestartMs?: number;
  /** Backoff between reconnection attempts after a drop, in milliseconds. @default { minDelayMs: 1000, maxDelayMs: 60000 } */
  readonly reconnect?: {
    /** First delay, in milliseconds (then doubling, with jitter). */
    readonly minDelayMs?: number;
    /** Largest delay, in milliseconds. */
    readonly maxDelayMs?: number;
  };
  /** Receives the client's log lines; never a secret. @default silent */
  readonly logger?: Logger;
}

/**
 * One message as {@link MailboxClient.fetchUnread} and watchers deliver it.
 *
 * @example
 * ```ts
 * mailbox.watch((message: MailMessage) => console.log(message.uid, message.subject, message.from[0]?.address));
 * ```
 */
export interface MailMessage {
  /** The message's IMAP UID in its mailbox. */
  readonly uid: number;
  /** The mailbox (folder) it was read from, such as `INBOX`. */
  readonly mailbox: string;
  /** The `Message-ID` header. */
  readonly messageId: string | undefined;
  /** The `Subject` header. */
  readonly subject: string | undefined;
  /** The `From` addresses. */
  readonly from: readonly {
    /** The display name. */
    readonly name?: string;
    /** The address. */
    readonly address?: string;
  }[];
  /** The `To` addresses. */
  readonly to: readonly {
    /** The display name. */
    readonly name?: string;
    /** The address. */
    readonly address?: string;
  }[];
  /** The envelope date. */
  readonly date: Date | undefined;
  /** The IMAP flags, such as `\Seen`. */
  readonly flags: readonly string[];
  /** The raw RFC 822 message, when requested. */
  readonly source: Buffer | undefined;
}

/**
 * Health of a {@link MailboxClient}.
 *
 * @example
 * ```ts
 * const { connected, errorsLast24h }: MailboxHealth = mailbox.health();
 * ```
 */
export interface MailboxHealth {
  /** Whether the client's IMAP connection is open and usable. */
  readonly connected: boolean;
  /** Whether a watch is running. */
  readonly watching: boolean;
  /** The last successful IMAP operation. */
  readonly lastSuccessAt: Date | null;
  /** The last failure, or `null`. */
  readonly lastError: {
    /** The error code, such as `ERR_MAIL_CONNECTION_FAILED`. */
    readonly code: string;
    /** The error message (never a secret). */
    readonly message: string;
    /** When it happened. */
    readonly at: Date;
  } | null;
  /** Failures in the last 24 hours. */
  readonly errorsLast24h: number;
  /** Messages delivered by the watcher in the last 24 hours. */
  readonly messagesLast24h: number;
}

/**
 * A running watch.
 *
 * @example
 * ```ts
 * const watcher: Watcher = mailbox.watch(handle);
 * process.on('SIGTERM', () => watcher.stop());
 * ```
 */
export interface Watcher {
  /** The highest UID delivered so far. */
  readonly lastUid: number;
  /** Resolves when the watch has stopped (after `stop()`, or a permanent failure: then it rejects). */
  readonly done: Promise<void>;
  /** Stop watching and close the connection. */
  stop(): Promise<void>;
}

/**
 * Events of {@link MailboxClient}.
 *
 * @example
 * ```ts
 * mailbox.on('reconnected', ({ reason }: MailboxClientEvents['reconnected']) => log.info(reason));
 * ```
 */
export interface MailboxClientEvents {
  /** The watcher reconnected (`reason`: `token` before expiry, `drop` after a lost connection). */
  reconnected: {
    /** The account. */
    readonly accountId: string;
    /** `token`: renewed before expiry; `drop`: after a lost connection. */
    readonly reason: 'token' | 'drop';
  };
  /** A transient failure; the watcher retries. */
  error: {
    /** The account. */
    readonly accountId: string;
    /** What failed. */
    readonly error: MailboxAuthError | Error;
  };
  /** A permanent authentication failure stopped the watcher: ask the user to reconnect. */
  reauthorizationRequired: {
    /** The account. */
    readonly accountId: string;
    /** The failure's message. */
    readonly reason: string;
  };
}

function toMessage(message: FetchMessageObject, mailbox: string): MailMessage {
  const envelope = message.envelope;
  return {
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

/**
 * A mailbox for one account: `fetchUnread`, `markAsRead`, `send`, `watch` (IMAP IDLE) and `health`. The
 * IMAP connection is opened on demand and reused; tokens come from the refresher; a watch survives token
 * expiry (it reconnects with a fresh token before expiry and resumes from the last seen UID) and dropped
 * connections (exponential backoff), and stops with `reauthorizationRequired` on a permanent auth failure.
 *
 * @example
 * ```ts
 * const mailbox = auth.mailbox(accountId);
 * for await (const msg of mailbox.fetchUnread({ max: 20 })) {
 *   console.log(msg.subject);
 *   await mailbox.markAsRead(msg.uid);
 * }
 * await mailbox.send({ to: 'bob@example.com', subject: 'Hi', text: 'Hello' });
 * const watcher = mailbox.watch(async (msg) => handle(msg));
 * ```
 */
export class MailboxClient {
  /** The account this client reads and sends for. */
  readonly accountId: string;
  readonly #context: MailContext;
  readonly #options: MailboxClientOptions;
  readonly #logger: Logger;
  readonly #events = new EventEmitter();
  #imap: ImapFlow | undefined;
  #connecting: Promise<ImapFlow> | undefined;
  #smtp: Promise<SmtpTransport> | undefined;
  #watcher: { stop(): Promise<void> } | undefined;
  #lastSuccess: number | null = null;
  #lastError: { code: string; message: string; at: number } | null = null;
  readonly #errors: number[] = [];
  readonly #messages: number[] = [];

  constructor(context: MailContext, accountId: string, options: MailboxClientOptions = {}) {
    if (typeof accountId !== 'string' || accountId.length === 0)
      throw new InvalidArgumentError('accountId must be a non-empty string');
    this.#context = context;
    this.accountId = accountId;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Listen to an event. */
  on<E extends keyof MailboxClientEvents>(
    event: E,
    listener: (payload: MailboxClientEvents[E]) => void,
  ): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Open the IMAP connection now (it is otherwise opened on first use). */
  async connect(): Promise<void> {
    await this.#client();
  }

  /** Close the IMAP connection, the SMTP transport and any watcher. */
  async disconnect(): Promise<void> {
    await this.#watcher?.stop();
    const imap = this.#imap;
    this.#imap = undefined;
    if (imap?.usable) await imap.logout().catch(() => imap.close());
    else imap?.close();
    const smtp = this.#smtp;
    this.#smtp = undefined;
    if (smtp !== undefined) (await smtp.catch(() => undefined))?.close();
  }

  /** Whether the IMAP connection is open and usable. */
  isConnected(): boolean {
    return this.#imap?.usable === true;
  }

  /**
   * Unread messages, oldest first, streamed (at most `max`). With `source: true` (the default) each
   * carries the raw message.
   */
  async *fetchUnread(
    options: { readonly max?: number; readonly mailbox?: string; readonly source?: boolean } = {},
  ): AsyncGenerator<MailMessage, void, undefined> {
    const max = options.max ?? 50;
    if (!Number.isSafeInteger(max) || max < 1)
      throw new InvalidArgumentError('max must be a positive integer');
    const mailbox = options.mailbox ?? 'INBOX';
    const imap = await this.#client();
    const lock = await imap.getMailboxLock(mailbox);
    try {
      const uids = (await imap.search({ seen: false }, { uid: true })) || [];
      const wanted = uids.slice(0, max);
      if (wanted.length === 0) return;
      for await (const message of imap.fetch(
        wanted,
        { uid: true, envelope: true, flags: true, source: options.source ?? true },
        { uid: true },
      )) {
        this.#record('message');
        yield toMessage(message, mailbox);
      }
      this.#record('success');
    } catch (err) {
      this.#fail(err);
      throw err;
    } finally {
      lock.release();
    }
  }

  /** Mark a message read (`\Seen`). */
  async markAsRead(uid: number, options: { readonly mailbox?: string } = {}): Promise<void> {
    if (!Number.isSafeInteger(uid) || uid < 1)
      throw new InvalidArgumentError('uid must be a positive integer');
    const imap = await this.#client();
    const lock = await imap.getMailboxLock(options.mailbox ?? 'INBOX');
    try {
      await imap.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true });
      this.#record('success');
    } catch (err) {
      this.#fail(err);
      throw err;
    } finally {
      lock.release();
    }
  }

  /** Send a message over SMTP (`from` defaults to the account's address). Failures are typed errors. */
  async send(message: SendMailOptions): Promise<SMTPTransport.SentMessageInfo> {
    this.#smtp ??= createSmtpTransport(this.#context, this.accountId, this.#options.smtp ?? {});
    try {
      const transport = await this.#smtp;
      const from = message.from ?? (await this.#context.persistence.getAccount(this.accountId)).email;
      const info = await transport.sendMail({ ...message, from });
      this.#record('success');
      return info;
    } catch (err) {
      const typed = toSmtpError(err, this.accountId);
      this.#fail(typed);
      throw typed;
    }
  }

  /**
   * Watch a mailbox with IDLE and call `onNewMessage` for every message that arrives, in order, exactly once
   * per watch (messages present before the watch started are not delivered). One watch per client.
   */
  watch(
    onNewMessage: (message: MailMessage) => void | Promise<void>,
    options: { readonly mailbox?: string; readonly sinceUid?: number } = {},
  ): Watcher {
    if (typeof onNewMessage !== 'function') throw new InvalidArgumentError('onNewMessage must be a function');
    if (this.#watcher !== undefined)
      throw new InvalidArgumentError('this client already has a watcher; stop it first');
    const mailbox = options.mailbox ?? 'INBOX';
    const controller = new AbortController();
    const state = { lastUid: options.sinceUid ?? -1 };
    const run = this.#watch(mailbox, onNewMessage, state, controller.signal).finally(() => {
      this.#watcher = undefined;
    });
    const watcher = {
      get lastUid() {
        return Math.max(0, state.lastUid);
      },
      done: run,
      stop: async () => {
        controller.abort();
        await run.catch(() => {});
      },
    };
    this.#watcher = watcher;
    return watcher;
  }

  /** Connection status, last success and error, errors and messages in the last 24 hours. */
  health(): MailboxHealth {
    const since = Date.now() - DAY;
    for (const list of [this.#errors, this.#messages])
      while (list.length > 0 && (list[0] as number) < since) list.shift();
    return {
      connected: this.isConnected(),
      watching: this.#watcher !== undefined,
      lastSuccessAt: this.#lastSuccess === null ? null : new Date(this.#lastSuccess),
      lastError: this.#lastError === null ? null : { ...this.#lastError, at: new Date(this.#lastError.at) },
      errorsLast24h: this.#errors.length,
      messagesLast24h: this.#messages.length,
    };
  }

  async #client(): Promise<ImapFlow> {
    if (this.#imap?.usable) return this.#imap;
    this.#connecting ??= connectImap(this.#context, this.accountId, this.#options.imap ?? {})
      .then((imap) => {
        imap.on('error', (err: Error) => this.#fail(err));
        this.#imap = imap;
        this.#record('success');
        return imap;
      })
      .catch((err: unknown) => {
        this.#fail(err);
        throw err;
      })
      .finally(() => {
        this.#connecting = undefined;
      });
    return this.#connecting;
  }

  async #watch(
    mailbox: string,
    deliver: (message: MailMessage) => void | Promise<void>,
    state: { lastUid: number },
    signal: AbortSignal,
  ): Promise<void> {
    const minDelay = this.#options.reconnect?.minDelayMs ?? 1000;
    const maxDelay = this.#options.reconnect?.maxDelayMs ?? 60_000;
    const renewBefore = this.#options.renewBeforeExpiryMs ?? 300_000;
    let delay = minDelay;
    let reason: 'token' | 'drop' | undefined;
    while (!signal.aborted) {
      let imap: ImapFlow | undefined;
      try {
        imap = await connectImap(
          this.#context,
          this.accountId,
          { ...this.#options.imap, signal },
          { disableAutoIdle: true },
        );
        const token = await this.#context.refresher.getAccessToken(this.accountId);
        const box = await imap.mailboxOpen(mailbox);
        if (state.lastUid < 0) state.lastUid = box.uidNext - 1; // only messages from now on
        if (reason !== undefined) this.#emit('reconnected', { accountId: this.accountId, reason });
        delay = minDelay;
        this.#record('success');
        reason = await this.#session(imap, mailbox, deliver, state, signal, token.expiresAt, renewBefore);
      } catch (err) {
        if (signal.aborted) break;
        if (
          isMailboxAuthError(err, 'ERR_MAIL_AUTHENTICATION_FAILED') ||
          err instanceof ReauthorizationRequiredError
        ) {
          this.#fail(err);
          this.#emit('reauthorizationRequired', {
            accountId: this.accountId,
            reason: (err as Error).message,
          });
          throw err;
        }
        this.#fail(err);
        this.#emit('error', { accountId: this.accountId, error: err as Error });
        this.#logger.warn(
          { accountId: this.accountId, code: (err as { code?: string }).code },
          'watcher failed; reconnecting',
        );
        reason = 'drop';
        await sleep(delay * (0.5 + Math.random() / 2), undefined, { signal }).catch(() => {});
        delay = Math.min(delay * 2, maxDelay);
      } finally {
        if (imap !== undefined) {
          if (imap.usable) await imap.logout().catch(() => imap?.close());
          else imap.close();
        }
      }
    }
  }

  /**
   * One connected period: deliver new messages, IDLE in between (re-issued every `idleRestartMs`), until the
   * token nears expiry (then the caller reconnects with a fresh token) or the connection drops (throws).
   */
  async #session(
    imap: ImapFlow,
    mailbox: string,
    deliver: (message: MailMessage) => void | Promise<void>,
    state: { lastUid: number },
    signal: AbortSignal,
    expiresAt: Date | null,
    renewBefore: number,
  ): Promise<'token'> {
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
    const idleRestart = this.#options.idleRestartMs ?? 29 * 60_000;
    try {
      for (;;) {
        if (signal.aborted) return 'token';
        if (closed) throw new Error('the IMAP connection was closed');
        if (pending) {
          pending = false;
          const range = `${state.lastUid + 1}:*`;
          for await (const message of imap.fetch(
            range,
            { uid: true, envelope: true, flags: true, source: true },
            { uid: true },
          )) {
            if (message.uid <= state.lastUid) continue; // `n:*` returns the last message when n is past the end
            await deliver(toMessage(message, mailbox));
            state.lastUid = message.uid;
            this.#record('message');
          }
          continue;
        }
        const untilRenew =
          expiresAt === null ? Number.POSITIVE_INFINITY : expiresAt.getTime() - renewBefore - Date.now();
        if (untilRenew <= 0) return 'token';
        // IDLE until a message arrives, the token nears expiry, or IDLE must be re-issued (a NOOP ends it).
        const idling = imap.idle().catch(() => {});
        const woke = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), Math.min(untilRenew, idleRestart, 2_147_000_000));
          const onAbort = () => resolve(true);
          signal.addEventListener('abort', onAbort, { once: true });
          wake = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', onAbort);
            resolve(true);
          };
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

  #record(kind: 'success' | 'message'): void {
    const now = Date.now();
    this.#lastSuccess = now;
    if (kind === 'message') this.#messages.push(now);
  }

  #fail(err: unknown): void {
    const now = Date.now();
    this.#errors.push(now);
    this.#lastError = {
      code: isMailboxAuthError(err) ? err.code : ((err as { code?: string })?.code ?? 'ERR_UNEXPECTED'),
      message: err instanceof Error ? err.message.slice(0, 300) : String(err),
      at: now,
    };
  }

  #emit<E extends keyof MailboxClientEvents>(event: E, payload: MailboxClientEvents[E]): void {
    emitSafely(this.#events, this.#logger, event, payload);
  }

  /** @internal */
  [inspect.custom](): string {
    return `MailboxClient { accountId: '${this.accountId}', connected: ${this.isConnected()} }`;
  }
}
