/**
 * `MailboxClient`: the mailbox interface host apps program against (fetch unread, mark read, send, watch,
 * health), the same over every transport: IMAP and SMTP, the Gmail API, Microsoft Graph. Tokens come from
 * the refresher.
 * @module
 */

import { inspect } from 'node:util';
import type { SendMailOptions } from 'nodemailer';
import { ConfigurationError, InvalidArgumentError } from '../errors.js';
import { TypedEvents } from '../events.js';
import { integerOption } from '../internal/options.js';
import { type Logger, silentLogger } from '../logger.js';
import { telemetryOf } from '../telemetry/telemetry.js';
import type { MailTransport } from '../transport-names.js';
import { ClientHealth } from './client-health.js';
import type {
  FetchUnreadOptions,
  MailboxClientEvents,
  MailboxClientOptions,
  MailboxHealth,
  Watcher,
  WatchOptions,
} from './client-options.js';
import type { MailContext } from './context.js';
import { type DeliveryHost, deliverMessage, deliverySettings } from './delivery.js';
import { lastUidOf } from './imap-transport.js';
import type { MailMessage, SentMail } from './message.js';
import type { MailTransportDriver, TransportDefinition, WatchRun } from './transport.js';
import { transportTable } from './transports.js';
import { CursorKeeper } from './watch-cursor.js';
import { runWatchLoop } from './watch-loop.js';

/**
 * What a {@link MailboxClient} is built from: the library's building blocks, and the host's own transports
 * (`createMailboxAuth({ transports })` passes them).
 *
 * @example
 * ```ts
 * const mailbox = new MailboxClient({ persistence, registry, refresher, transports: [jmap] }, accountId, { transport: 'jmap' });
 * ```
 */
export interface MailboxClientContext extends MailContext {
  /** Transports besides the built-in ones, from {@link defineTransport}. @default [] */
  readonly transports?: readonly TransportDefinition[];
}

function checkTransport(
  value: unknown,
  known: ReadonlyMap<string, TransportDefinition>,
): MailTransport | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !known.has(value)) {
    throw new InvalidArgumentError(
      `transport must be one of ${[...known.keys()].map((t) => `"${t}"`).join(', ')} (got ${JSON.stringify(value)?.slice(0, 40)})`,
    );
  }
  return value;
}

function nonNegative(value: number | undefined, name: string, fallback: number): number {
  const refuse = () => new InvalidArgumentError(`${name} must be a non-negative integer (milliseconds)`);
  return integerOption(value, fallback, 0, Number.MAX_SAFE_INTEGER, refuse);
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
export class MailboxClient extends TypedEvents<MailboxClientEvents> {
  /** The account this client reads and sends for. */
  readonly accountId: string;
  readonly #context: MailContext;
  readonly #transports: ReadonlyMap<string, TransportDefinition>;
  readonly #options: MailboxClientOptions;
  readonly #logger: Logger;
  readonly #transport: MailTransport | undefined;
  readonly #health: ClientHealth;
  #driver: Promise<MailTransportDriver> | undefined;
  #resolved: MailTransportDriver | undefined;
  #watcher: { stop(): Promise<void> } | undefined;

  constructor(context: MailboxClientContext, accountId: string, options: MailboxClientOptions = {}) {
    super();
    if (typeof accountId !== 'string' || accountId.length === 0)
      throw new InvalidArgumentError('accountId must be a non-empty string');
    this.#transports = transportTable(context.transports);
    this.#transport = checkTransport(options.transport, this.#transports);
    // Validate now, not at the first request: every transport's options, and the watch loop's.
    for (const definition of this.#transports.values()) definition.checkOptions?.(options);
    nonNegative(options.reconnect?.minDelayMs, 'reconnect.minDelayMs', 1000);
    nonNegative(options.reconnect?.maxDelayMs, 'reconnect.maxDelayMs', 60_000);
    this.#context = context;
    this.accountId = accountId;
    this.#health = new ClientHealth(
      context.activity === undefined ? undefined : { recorder: context.activity, accountId },
    );
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
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
      this.#health.success();
    } catch (err) {
      this.#health.failure(err);
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
    await this.#context.activity?.flush([this.accountId]);
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
        this.#health.success('message');
        yield message;
      }
      this.#health.success();
    } catch (err) {
      this.#health.failure(err);
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
      this.#health.success();
    } catch (err) {
      this.#health.failure(err);
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
      this.#health.success();
      return sent;
    } catch (err) {
      this.#health.failure(err);
      throw err;
    }
  }

  /**
   * Watch a mailbox and call `onNewMessage` for every message that arrives, in order, once per watch. The
   * watch starts where the last watch of this account, transport and folder stopped, as saved in the store
   * (`saveCursor`, on by default), or at `cursor`; the first watch ever starts from now (messages present
   * before it are not delivered). IMAP keeps a connection in IDLE; the APIs poll (`api.pollIntervalMs`:
   * Gmail `history.list`, Graph delta). One watch per client.
   */
  watch(onNewMessage: (message: MailMessage) => void | Promise<void>, options: WatchOptions = {}): Watcher {
    if (typeof onNewMessage !== 'function') throw new InvalidArgumentError('onNewMessage must be a function');
    if (this.#watcher !== undefined)
      throw new InvalidArgumentError('this client already has a watcher; stop it first');
    if (options.sinceUid !== undefined && (!Number.isSafeInteger(options.sinceUid) || options.sinceUid < 0))
      throw new InvalidArgumentError('sinceUid must be a non-negative integer');
    if (options.cursor !== undefined && (typeof options.cursor !== 'string' || options.cursor.length === 0))
      throw new InvalidArgumentError('cursor must be a non-empty string (a watcher.cursor)');
    if (options.saveCursor !== undefined && typeof options.saveCursor !== 'boolean')
      throw new InvalidArgumentError('saveCursor must be a boolean');
    const delivery = deliverySettings(options);
    const deliveryHost: DeliveryHost = {
      accountId: this.accountId,
      mailbox: options.mailbox,
      logger: this.#logger,
      failed: (failure) => {
        this.#health.messageFailed();
        this.#emit('messageFailed', failure);
      },
    };
    const controller = new AbortController();
    let cursor = options.cursor ?? (options.sinceUid === undefined ? undefined : String(options.sinceUid));
    const keeper =
      options.saveCursor === false
        ? undefined
        : new CursorKeeper(this.#context.persistence, {
            accountId: this.accountId,
            saveFailed: (err) => {
              this.#health.failure(err);
              this.#logger.warn(
                { accountId: this.accountId, code: (err as { code?: string }).code },
                'could not save the watch position (the watch goes on; a crash now delivers again)',
              );
            },
          });
    const run: WatchRun = {
      mailbox: options.mailbox,
      get cursor() {
        return cursor;
      },
      set cursor(value: string | undefined) {
        if (value === cursor) return;
        cursor = value;
        if (value !== undefined) keeper?.save(value);
      },
      signal: controller.signal,
      deliver: async (message) => {
        const handlerMs = await deliverMessage(
          onNewMessage,
          message,
          delivery,
          deliveryHost,
          controller.signal,
        );
        if (handlerMs === null) return;
        this.#health.delivered(handlerMs);
        telemetryOf(this.#context.refresher).delivered(this.#transportName(), message.date, Date.now());
      },
      ready: () => {},
      resynced: (_reason: string) => {},
    };
    let markReady = () => {};
    const ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    const done = this.#watch(
      run,
      markReady,
      keeper,
      options.cursor !== undefined || options.sinceUid !== undefined,
    ).finally(async () => {
      markReady();
      this.#watcher = undefined;
      // What this watch did reaches the store before stop() resolves (the fleet's figures).
      await this.#context.activity?.flush([this.accountId]);
    });
    const imap = () => (this.#resolved?.name ?? this.#transport) === 'imap';
    const watcher: Watcher = {
      get lastUid() {
        return imap() ? lastUidOf(run.cursor) : 0;
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
    return this.#health.read(this.isConnected(), this.#watcher !== undefined);
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
    const { persistence, registry, refresher } = this.#context;
    const account = await persistence.getAccount(this.accountId);
    const provider = registry.get(account.provider);
    const name = this.#transport ?? provider.mailTransport ?? 'imap';
    const offered = provider.mailTransports ?? ['imap'];
    if (!offered.includes(name)) {
      throw new InvalidArgumentError(
        `The "${name}" transport is not available for provider "${provider.id}" (it offers: ${offered.join(', ')})`,
        { accountId: this.accountId, providerId: provider.id },
      );
    }
    const definition = this.#transports.get(name);
    if (definition === undefined) {
      throw new ConfigurationError(
        `The provider "${provider.id}" names the "${name}" transport, which is not defined: pass it to createMailboxAuth({ transports })`,
        { accountId: this.accountId, providerId: provider.id },
      );
    }
    const driver = await definition.create({
      persistence,
      registry,
      refresher,
      accountId: this.accountId,
      account,
      provider,
      options: this.#options,
      health: { success: () => this.#health.success(), failure: (err) => this.#health.failure(err) },
    });
    if (driver?.name !== name) {
      throw new ConfigurationError(
        `The "${name}" transport created a driver named "${String(driver?.name)}"`,
        {
          accountId: this.accountId,
          providerId: provider.id,
        },
      );
    }
    return driver;
  }

  /** The watch loop (see `watch-loop.ts`), over this client's transport, events and health. */
  #watch(
    run: WatchRun,
    onFirstReady: () => void,
    keeper: CursorKeeper | undefined,
    given: boolean,
  ): Promise<void> {
    return runWatchLoop(
      {
        accountId: this.accountId,
        logger: this.#logger,
        reconnect: {
          minDelayMs: this.#options.reconnect?.minDelayMs ?? 1000,
          maxDelayMs: this.#options.reconnect?.maxDelayMs ?? 60_000,
        },
        driver: () => this.#resolve(),
        emit: (event, payload) => this.#emit(event, payload),
        success: () => this.#health.success(),
        failure: (err) => {
          this.#health.failure(err);
          telemetryOf(this.#context.refresher).watchFailed(this.#transportName(), err);
        },
      },
      run,
      onFirstReady,
      keeper?.enabled === true ? { keeper, given } : undefined,
    );
  }

  /** The transport's name for metrics: the one in use, else the one asked for. */
  #transportName(): string {
    return this.#resolved?.name ?? this.#transport ?? 'unknown';
  }

  #emit<E extends keyof MailboxClientEvents>(event: E, payload: MailboxClientEvents[E]): void {
    this.emitTo(this.#logger, event, payload);
  }

  /** @internal */
  [inspect.custom](): string {
    const transport = this.#resolved?.name ?? this.#transport;
    return `MailboxClient { accountId: '${this.accountId}', ${transport === undefined ? '' : `transport: '${transport}', `}connected: ${this.isConnected()} }`;
  }
}

export type { MailAddress, MailMessage, SentMail } from './message.js';
