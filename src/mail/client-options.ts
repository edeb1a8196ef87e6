/**
 * The options, events and figures of `MailboxClient`: what a host passes and receives, whatever the
 * transport.
 * @module
 */
import type { MailboxAuthError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MailTransport } from '../transport-names.js';
import type { MailApiOptions } from './api-http.js';
import type { MailMessage } from './message.js';
import type { MailConnectOptions } from './settings.js';

/**
 * Options of {@link MailboxClient}.
 *
 * @example
 * ```ts
 * const mailbox = auth.mailbox(accountId, { renewBeforeExpiryMs: 600_000, reconnect: { maxDelayMs: 30_000 } });
 * const graph = auth.mailbox(accountId, { transport: 'graph', api: { pollIntervalMs: 15_000 } });
 * ```
 */
export interface MailboxClientOptions {
  /**
   * How to reach the mailbox: `imap` (IMAP to read, SMTP to send), `gmail-api` or `graph`. Must be one the
   * account's provider offers (`provider.mailTransports`).
   * @default the provider's `mailTransport` (the preset's `mailTransport` option; else `imap`)
   */
  readonly transport?: MailTransport;
  /** IMAP connection options (host/port overrides, TLS, shared mailbox user...). IMAP transport only. */
  readonly imap?: MailConnectOptions;
  /** SMTP connection options. IMAP transport only. */
  readonly smtp?: MailConnectOptions;
  /** HTTP options of the Gmail API and Graph transports (fetch, retries, page size, poll interval). */
  readonly api?: MailApiOptions;
  /**
   * Reconnect an IMAP watcher with a fresh token this long before the access token expires, in milliseconds.
   * (The API transports take a token per request and need no reconnect.)
   * @default 300000
   */
  readonly renewBeforeExpiryMs?: number;
  /**
   * Break and re-issue IDLE at this interval, in milliseconds (servers drop IDLE after 30 minutes).
   * @default 1740000 (29 minutes)
   */
  readonly idleRestartMs?: number;
  /**
   * Backoff between watch attempts after a failure (a dropped connection, an API that stayed unavailable),
   * in milliseconds; never shorter than a `Retry-After` the API or the provider sent (the error's
   * `retryAfterMs`). @default { minDelayMs: 1000, maxDelayMs: 60000 }
   */
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
 * Health of a {@link MailboxClient}.
 *
 * @example
 * ```ts
 * const { connected, errorsLast24h }: MailboxHealth = mailbox.health();
 * ```
 */
export interface MailboxHealth {
  /** IMAP: the connection is open and usable. API transports: the last request reached the API. */
  readonly connected: boolean;
  /** Whether a watch is running. */
  readonly watching: boolean;
  /** The last successful operation. */
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
  /** Messages skipped in the last 24 hours because the callback failed on every attempt. */
  readonly failedMessagesLast24h: number;
}

/**
 * A running watch.
 *
 * @example
 * ```ts
 * const watcher: Watcher = mailbox.watch(handle);
 * process.on('SIGTERM', async () => { await watcher.stop(); await saveResumePoint(watcher.cursor) });
 * ```
 */
export interface Watcher {
  /** The highest UID delivered so far (IMAP; `0` for the API transports). */
  readonly lastUid: number;
  /**
   * Where the watch stands, to resume a later watch from it (`watch(fn, { cursor })`): for IMAP
   * `<uidValidity>:<lastUid>:<watermark>` (the mailbox's UIDVALIDITY, the last delivered UID, the newest
   * delivered message's INTERNALDATE in epoch ms, `0` before the first), a Gmail
   * `<historyId>:<watermark>:<id>`, or a Graph delta position. Opaque; `undefined` before the first session.
   */
  readonly cursor: string | undefined;
  /**
   * Resolves once the first session is up (IMAP in IDLE, or the first API poll answered), or when the watch
   * ends first (then see `done`). Never rejects.
   */
  readonly ready: Promise<void>;
  /** Resolves when the watch has stopped (after `stop()`, or a permanent failure: then it rejects). */
  readonly done: Promise<void>;
  /** Stop watching and close the connection. */
  stop(): Promise<void>;
}

/**
 * Options of {@link MailboxClient.watch}.
 *
 * @example
 * ```ts
 * const watcher = mailbox.watch(handle, { mailbox: 'INBOX', cursor: savedCursor });
 * ```
 */
export interface WatchOptions {
  /** The mailbox: an IMAP path, a Gmail label id, or a Graph folder (well-known name or id). @default the inbox */
  readonly mailbox?: string;
  /** IMAP: deliver messages after this UID (a resume point), in the mailbox's current UIDVALIDITY. */
  readonly sinceUid?: number;
  /**
   * Resume from a {@link Watcher.cursor} of an earlier watch with the same transport. IMAP also takes a bare
   * UID (an earlier version's cursor), counted in the mailbox's current UIDVALIDITY like `sinceUid`.
   */
  readonly cursor?: string;
  /**
   * Keep the watch position in the store (per account, transport and folder): saved each time it moves,
   * after your callback resolved for the messages before it, and read when a watch starts without `cursor`
   * or `sinceUid`. So a restarted process, or another instance taking the account over, resumes where the
   * last watch stopped instead of "from now" (see the delivery guarantee in `docs/mail.md`). Without a
   * store that keeps positions (the built-in stores do), the position lives only in this process.
   * @default true
   */
  readonly saveCursor?: boolean;
  /**
   * When `onNewMessage` throws (or rejects): call it again for the same message, with backoff, at most
   * `retries` more times; then the message is reported (`messageFailed` event, `onFailedMessage`,
   * `health().failedMessagesLast24h`) and skipped, and the watch goes on with the next one.
   */
  readonly retry?: WatchRetryOptions;
  /**
   * Receives a message skipped after its retries, with what failed (a dead-letter store, say). Its own failure
   * is logged; the message is skipped either way.
   */
  readonly onFailedMessage?: (
    message: MailMessage,
    failure: FailedMessage & {
      /** What the last call of `onNewMessage` threw. */
      readonly error: unknown;
    },
  ) => void | Promise<void>;
}

/**
 * How a watch retries a message whose callback failed ({@link WatchOptions.retry}).
 *
 * @example
 * ```ts
 * mailbox.watch(handle, { retry: { retries: 3, minDelayMs: 500 }, onFailedMessage: (m) => deadLetters.push(m.id) });
 * ```
 */
export interface WatchRetryOptions {
  /** Calls after the first one before the message is skipped (0: skip at the first failure). @default 5 */
  readonly retries?: number;
  /** The first delay between calls, in milliseconds (doubled each time, with jitter). @default 1000 */
  readonly minDelayMs?: number;
  /** The longest delay between calls, in milliseconds. @default 60000 */
  readonly maxDelayMs?: number;
}

/**
 * A message skipped because its callback failed on every attempt (`messageFailed` event and
 * `onFailedMessage`): where it was and what failed, never its content.
 *
 * @example
 * ```ts
 * mailbox.on('messageFailed', ({ messageId, code }: FailedMessage) => log.warn({ messageId, code }, 'skipped'));
 * ```
 */
export interface FailedMessage {
  /** The account. */
  readonly accountId: string;
  /** The folder watched (`undefined`: the inbox). */
  readonly mailbox: string | undefined;
  /** The message's id (`MailMessage.id`). */
  readonly messageId: string;
  /** How many times the callback was called. */
  readonly attempts: number;
  /** The `code` of what it threw (a string `code` property), else the error's name. */
  readonly code: string;
}

/**
 * Options of {@link MailboxClient.fetchUnread}.
 *
 * @example
 * ```ts
 * for await (const message of mailbox.fetchUnread({ max: 20, source: false, signal: AbortSignal.timeout(30_000) })) {}
 * for await (const message of mailbox.fetchUnread({ max: 100, order: 'oldest' })) await queue.push(message); // a backlog, in arrival order
 * ```
 */
export interface FetchUnreadOptions {
  /** At most this many messages. @default 50 */
  readonly max?: number;
  /** The mailbox: an IMAP path, a Gmail label id, or a Graph folder. @default the inbox */
  readonly mailbox?: string;
  /** Include the raw RFC 822 message (`source`). @default true */
  readonly source?: boolean;
  /**
   * Which unread messages, in which order, the same on every transport: `newest` yields the `max` most
   * recent, newest first (an inbox view, "the latest 20 unread"); `oldest` yields the `max` earliest, oldest
   * first (working through a backlog in arrival order). IMAP orders by UID (arrival in the mailbox), the Gmail
   * API by its listing order (internal date), Graph by `receivedDateTime`. Costs: IMAP and Graph list either
   * way in one pass; the Gmail API lists only newest first, so `oldest` first walks every page of unread ids
   * (ids only, 500 a request, keeping the last `max`) before fetching any message.
   * @default 'newest'
   */
  readonly order?: 'newest' | 'oldest';
  /** Stops the listing (API transports: between and during requests; IMAP: between fetches of 10 messages). */
  readonly signal?: AbortSignal;
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
  /**
   * The watcher is back: `token` (IMAP: reconnected with a fresh token before expiry), `drop` (after a failure
   * and backoff), `resync` (the API forgot the resume point: resynchronized from the watermark, see `resynced`).
   */
  reconnected: {
    /** The account. */
    readonly accountId: string;
    /** Why it reconnected (see above). */
    readonly reason: 'token' | 'drop' | 'resync';
  };
  /** A transient failure; the watcher retries. */
  error: {
    /** The account. */
    readonly accountId: string;
    /** What failed. */
    readonly error: MailboxAuthError | Error;
  };
  /**
   * The watch's resume point was gone and the transport resynchronized from its watermark, delivering what
   * arrived since (then `reconnected` with reason `resync` follows, as before): `history-expired` (Gmail
   * forgot the history id), `delta-expired` (Graph refused the delta link: 410), `uidvalidity` (the IMAP
   * mailbox's UIDVALIDITY changed: its index was rebuilt or it was recreated, so the UIDs kept were void),
   * or a host transport's own.
   */
  resynced: {
    /** The account. */
    readonly accountId: string;
    /** The folder watched (`undefined`: the inbox). */
    readonly mailbox: string | undefined;
    /** Why (see above). */
    readonly reason: 'history-expired' | 'delta-expired' | 'uidvalidity' | (string & {});
  };
  /** A message was skipped: its callback failed on every attempt (see {@link WatchOptions.retry}). */
  messageFailed: FailedMessage;
  /** A permanent authentication failure stopped the watcher: ask the user to reconnect. */
  reauthorizationRequired: {
    /** The account. */
    readonly accountId: string;
    /** The failure's message. */
    readonly reason: string;
  };
}
