/**
 * `MailboxClient`: the mailbox interface host apps program against (fetch unread, mark read, send, watch,
 * health), the same over every transport: IMAP and SMTP, the Gmail API, Microsoft Graph. Tokens come from
 * the refresher.
 * @module
 */

import { EventEmitter } from 'node:events';
import { inspect } from 'node:util';
import type { SendMailOptions } from 'nodemailer';
import { InvalidArgumentError, isMailboxAuthError, type MailboxAuthError } from '../errors.js';
import { emitSafely } from '../events.js';
import { Backoff } from '../internal/backoff.js';
import { pause } from '../internal/timers.js';
import { type Logger, silentLogger } from '../logger.js';
import { MAIL_TRANSPORTS, type MailTransport } from '../providers/types.js';
import { type MailApiOptions, resolveApiOptions } from './api-http.js';
import type { MailContext } from './context.js';
import { GMAIL_API_BASE_URL, GmailApiDriver } from './gmail-api.js';
import { GRAPH_BASE_URL, GraphDriver, primaryTokenIsGraph } from './graph.js';
import { ImapTransportDriver } from './imap-transport.js';
import type { MailMessage, SentMail } from './message.js';
import type { MailConnectOptions } from './settings.js';
import type { MailTransportDriver, WatchRun } from './transport.js';

const DAY = 86_400_000;

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
   * Where the watch stands, to resume a later watch from it (`watch(fn, { cursor })`): the last delivered
   * IMAP UID, a Gmail history id, or a Graph delta position. Opaque; `undefined` before the first session.
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
  /** IMAP: deliver messages after this UID (a resume point). */
  readonly sinceUid?: number;
  /** Resume from a {@link Watcher.cursor} of an earlier watch with the same transport. */
  readonly cursor?: string;
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
   * and backoff), `resync` (the API forgot the resume point: Gmail restarts from now, Graph from the watermark).
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
  /** A permanent authentication failure stopped the watcher: ask the user to reconnect. */
  reauthorizationRequired: {
    /** The account. */
    readonly accountId: string;
    /** The failure's message. */
    readonly reason: string;
  };
}

function checkTransport(value: unknown): MailTransport | undefined {
  if (value === undefined) return undefined;
  if (!MAIL_TRANSPORTS.includes(value as MailTransport)) {
    throw new InvalidArgumentError(
      `transport must be one of ${MAIL_TRANSPORTS.map((t) => `"${t}"`).join(', ')} (got ${JSON.stringify(value)?.slice(0, 40)})`,
    );
  }
  return value as MailTransport;
}

function nonNegative(value: number | undefined, name: string, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new InvalidArgumentError(`${name} must be a non-negative integer (milliseconds)`);
  }
  return v;
}

/**
 * A mailbox for one account: `fetchUnread`, `markAsRead`, `send`, `watch` and `health`, the same whatever the
 * transport (`imap`: IMAP with IDLE and SMTP; `gmail-api`; `graph`), chosen by the provider preset or the
 * `transport` option and resolved on first use. Tokens come from the refresher: a rejected token gets one
 * forced refresh, then a typed error. A watch survives token expiry and failures (backoff), and stops with
 * `reauthorizationRequired` on a permanent authentication failure.
 *
 * @example
 * ```ts
 * const mailbox = auth.mailbox(accountId); // or auth.mailbox(accountId, { transport: 'graph' })
 * for await (const msg of mailbox.fetchUnread({ max: 20 })) {
 *   console.log(msg.subject);
 *   await mailbox.markAsRead(msg.id);
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
  readonly #transport: MailTransport | undefined;
  #driver: Promise<MailTransportDriver> | undefined;
  #resolved: MailTransportDriver | undefined;
  #watcher: { stop(): Promise<void> } | undefined;
  #lastSuccess: number | null = null;
  #lastError: { code: string; message: string; at: number } | null = null;
  readonly #errors: number[] = [];
  readonly #messages: number[] = [];

  constructor(context: MailContext, accountId: string, options: MailboxClientOptions = {}) {
    if (typeof accountId !== 'string' || accountId.length === 0)
      throw new InvalidArgumentError('accountId must be a non-empty string');
    this.#transport = checkTransport(options.transport);
    resolveApiOptions(options.api, GRAPH_BASE_URL); // validate now, not at the first request
    nonNegative(options.renewBeforeExpiryMs, 'renewBeforeExpiryMs', 300_000);
    nonNegative(options.idleRestartMs, 'idleRestartMs', 29 * 60_000);
    nonNegative(options.reconnect?.minDelayMs, 'reconnect.minDelayMs', 1000);
    nonNegative(options.reconnect?.maxDelayMs, 'reconnect.maxDelayMs', 60_000);
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

  /** Stop listening. */
  off<E extends keyof MailboxClientEvents>(
    event: E,
    listener: (payload: MailboxClientEvents[E]) => void,
  ): this {
    this.#events.off(event, listener);
    return this;
  }

  /**
   * The transport this client uses: the `transport` option, else the provider's default. Rejects with
   * `InvalidArgumentError` when the account's provider does not offer it.
   */
  async transport(): Promise<MailTransport> {
    return (await this.#resolve()).name;
  }

  /**
   * Connect now (it otherwise happens on first use): IMAP opens its connection; the APIs make one request
   * (Gmail's profile, Graph's inbox folder), which checks the token and the API access.
   */
  async connect(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    try {
      await (await this.#resolve()).connect(options.signal);
      this.#record('success');
    } catch (err) {
      this.#fail(err);
      throw err;
    }
  }

  /** Stop any watcher and close the connections (IMAP, SMTP). */
  async disconnect(): Promise<void> {
    await this.#watcher?.stop();
    const driver = this.#driver;
    this.#driver = undefined;
    this.#resolved = undefined;
    if (driver !== undefined) await (await driver.catch(() => undefined))?.disconnect();
  }

  /** Whether the mailbox is reachable: IMAP, the connection is open; APIs, the last request succeeded. */
  isConnected(): boolean {
    return this.#resolved?.isConnected() === true;
  }

  /**
   * Unread messages, streamed: at most `max`, fetched page by page as you iterate (constant memory), in the
   * same order on every transport: the newest first by default, the oldest first with `order: 'oldest'`
   * (see {@link FetchUnreadOptions.order}). With `source: true` (the default) each carries the raw message.
   * Marking a message read (`markAsRead`) while iterating is fine, on every transport.
   */
  async *fetchUnread(options: FetchUnreadOptions = {}): AsyncGenerator<MailMessage, void, undefined> {
    const max = options.max ?? 50;
    if (!Number.isSafeInteger(max) || max < 1)
      throw new InvalidArgumentError('max must be a positive integer');
    const order = options.order ?? 'newest';
    if (order !== 'newest' && order !== 'oldest') {
      throw new InvalidArgumentError(
        `order must be "newest" or "oldest" (got ${JSON.stringify(order)?.slice(0, 40)})`,
      );
    }
    try {
      const driver = await this.#resolve();
      for await (const message of driver.fetchUnread({
        max,
        mailbox: options.mailbox,
        source: options.source ?? true,
        order,
        signal: options.signal,
      })) {
        this.#record('message');
        yield message;
      }
      this.#record('success');
    } catch (err) {
      this.#fail(err);
      throw err;
    }
  }

  /**
   * Mark a message read: IMAP `\Seen`, Gmail removes the `UNREAD` label, Graph sets `isRead`. `id` is
   * `message.id` (with IMAP, the UID as a number works too).
   */
  async markAsRead(
    id: string | number,
    options: { readonly mailbox?: string; readonly signal?: AbortSignal } = {},
  ): Promise<void> {
    if (typeof id === 'number') {
      if (!Number.isSafeInteger(id) || id < 1)
        throw new InvalidArgumentError('uid must be a positive integer');
    } else if (typeof id !== 'string' || id.length === 0) {
      throw new InvalidArgumentError('id must be a non-empty string (message.id) or an IMAP UID');
    }
    try {
      const driver = await this.#resolve();
      if (typeof id === 'number' && driver.name !== 'imap') {
        throw new InvalidArgumentError(
          `markAsRead takes the message's id string (message.id) with the ${driver.name} transport, not a number`,
        );
      }
      await driver.markAsRead(String(id), {
        mailbox: options.mailbox,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      this.#record('success');
    } catch (err) {
      this.#fail(err);
      throw err;
    }
  }

  /**
   * Send a message (`from` defaults to the account's address): over SMTP, or as a raw RFC 822 message built by
   * nodemailer's MailComposer through the Gmail API (`users.messages.send`) or Graph (`/me/sendMail`, MIME).
   * Failures are typed errors.
   */
  async send(message: SendMailOptions, options: { readonly signal?: AbortSignal } = {}): Promise<SentMail> {
    if (typeof message !== 'object' || message === null)
      throw new InvalidArgumentError('message must be an object');
    try {
      const driver = await this.#resolve();
      const from =
        message.from === undefined ? (await this.#context.persistence.getAccount(this.accountId)).email : '';
      const sent = await driver.send(message, from, options.signal);
      this.#record('success');
      return sent;
    } catch (err) {
      this.#fail(err);
      throw err;
    }
  }

  /**
   * Watch a mailbox and call `onNewMessage` for every message that arrives, in order, once per watch
   * (messages present before the watch started are not delivered). IMAP keeps a connection in IDLE; the
   * APIs poll (`api.pollIntervalMs`: Gmail `history.list`, Graph delta). One watch per client.
   */
  watch(onNewMessage: (message: MailMessage) => void | Promise<void>, options: WatchOptions = {}): Watcher {
    if (typeof onNewMessage !== 'function') throw new InvalidArgumentError('onNewMessage must be a function');
    if (this.#watcher !== undefined)
      throw new InvalidArgumentError('this client already has a watcher; stop it first');
    if (options.sinceUid !== undefined && (!Number.isSafeInteger(options.sinceUid) || options.sinceUid < 0))
      throw new InvalidArgumentError('sinceUid must be a non-negative integer');
    if (options.cursor !== undefined && (typeof options.cursor !== 'string' || options.cursor.length === 0))
      throw new InvalidArgumentError('cursor must be a non-empty string (a watcher.cursor)');
    const controller = new AbortController();
    const cursor = options.cursor ?? (options.sinceUid === undefined ? undefined : String(options.sinceUid));
    const run: WatchRun = {
      mailbox: options.mailbox,
      cursor,
      signal: controller.signal,
      deliver: async (message) => {
        await onNewMessage(message);
        this.#record('message');
      },
      ready: () => {},
      resynced: () => {},
    };
    let markReady = () => {};
    const ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    const done = this.#watch(run, markReady).finally(() => {
      markReady();
      this.#watcher = undefined;
    });
    const imap = () => (this.#resolved?.name ?? this.#transport) === 'imap';
    const watcher: Watcher = {
      get lastUid() {
        const uid = Number(run.cursor);
        return imap() && /^\d+$/.test(run.cursor ?? '') && Number.isSafeInteger(uid) ? uid : 0;
      },
      get cursor() {
        return run.cursor;
      },
      ready,
      done,
      stop: async () => {
        controller.abort();
        await done.catch(() => {});
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

  /** The transport, created on first use from the option or the account's provider. */
  #resolve(): Promise<MailTransportDriver> {
    this.#driver ??= this.#create().then(
      (driver) => {
        this.#resolved = driver;
        return driver;
      },
      (err: unknown) => {
        this.#driver = undefined; // a store failure is not remembered: the next call tries again
        throw err;
      },
    );
    return this.#driver;
  }

  async #create(): Promise<MailTransportDriver> {
    const account = await this.#context.persistence.getAccount(this.accountId);
    const provider = this.#context.registry.get(account.provider);
    const name = this.#transport ?? provider.mailTransport ?? 'imap';
    const offered = provider.mailTransports ?? ['imap'];
    if (!offered.includes(name)) {
      throw new InvalidArgumentError(
        `The "${name}" transport is not available for provider "${provider.id}" (it offers: ${offered.join(', ')})`,
        { accountId: this.accountId, providerId: provider.id },
      );
    }
    const o = this.#options;
    if (name === 'gmail-api') {
      return new GmailApiDriver(this.#context, this.accountId, resolveApiOptions(o.api, GMAIL_API_BASE_URL));
    }
    if (name === 'graph') {
      // An account consented for Graph (`microsoft({ mailTransport: 'graph' })`) has a Graph primary token:
      // use it rather than refreshing the same kind of token a second time as the `graph` resource.
      const resource =
        provider.resources?.graph === undefined || primaryTokenIsGraph(account.scopes) ? undefined : 'graph';
      return new GraphDriver(
        this.#context,
        this.accountId,
        resolveApiOptions(o.api, GRAPH_BASE_URL),
        resource,
      );
    }
    return new ImapTransportDriver(
      this.#context,
      this.accountId,
      {
        ...(o.imap === undefined ? {} : { imap: o.imap }),
        ...(o.smtp === undefined ? {} : { smtp: o.smtp }),
        renewBeforeExpiryMs: o.renewBeforeExpiryMs ?? 300_000,
        idleRestartMs: o.idleRestartMs ?? 29 * 60_000,
      },
      { success: () => this.#record('success'), fail: (err) => this.#fail(err) },
    );
  }

  /**
   * The watch loop, the same for every transport: a session until it must be renewed or fails; after a
   * failure, exponential backoff with jitter, then a new session that resumes from the cursor. A permanent
   * authentication failure stops the watch with `reauthorizationRequired`; a refused request (a resource the
   * API does not know, an account deleted) stops it too.
   */
  async #watch(run: WatchRun, onFirstReady: () => void): Promise<void> {
    const { signal } = run;
    const backoff = new Backoff({
      minDelayMs: this.#options.reconnect?.minDelayMs ?? 1000,
      maxDelayMs: this.#options.reconnect?.maxDelayMs ?? 60_000,
    });
    let reason: 'token' | 'drop' | undefined;
    run.ready = () => {
      onFirstReady();
      if (reason !== undefined) this.#emit('reconnected', { accountId: this.accountId, reason });
      reason = undefined;
      backoff.reset();
      this.#record('success');
    };
    run.resynced = () => {
      this.#logger.warn({ accountId: this.accountId }, 'watch resume point expired; resynchronized');
      this.#emit('reconnected', { accountId: this.accountId, reason: 'resync' });
    };
    while (!signal.aborted) {
      try {
        const driver = await this.#resolve();
        const outcome = await driver.watchSession(run);
        if (outcome === 'renew') reason = 'token';
      } catch (err) {
        if (signal.aborted) break;
        this.#fail(err);
        if (isMailboxAuthError(err) && err.category === 'reauthorization') {
          this.#emit('reauthorizationRequired', { accountId: this.accountId, reason: err.message });
          throw err;
        }
        if (isMailboxAuthError(err) && err.category === 'request') {
          this.#logger.warn(
            { accountId: this.accountId, code: err.code },
            'watcher stopped: request refused',
          );
          throw err;
        }
        this.#emit('error', { accountId: this.accountId, error: err as Error });
        this.#logger.warn(
          { accountId: this.accountId, code: (err as { code?: string }).code },
          'watcher failed; reconnecting',
        );
        reason = 'drop';
        // A throttling API (or provider) said how long to stay away: never come back sooner than that.
        const retryAfterMs = (err as { retryAfterMs?: unknown }).retryAfterMs;
        await pause(Math.max(backoff.next(), typeof retryAfterMs === 'number' ? retryAfterMs : 0), signal);
      }
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
    const transport = this.#resolved?.name ?? this.#transport;
    return `MailboxClient { accountId: '${this.accountId}', ${transport === undefined ? '' : `transport: '${transport}', `}connected: ${this.isConnected()} }`;
  }
}

export type { MailAddress, MailMessage, SentMail } from './message.js';
