/**
 * The contract between `MailboxClient` and its transports, and the entry through which one is added: the
 * built-in IMAP/SMTP, Gmail API and Microsoft Graph transports are defined with {@link defineTransport}
 * exactly as a host defines its own (JMAP, an in-house API...). The client owns what must behave the same
 * whatever the transport: events, health, one watcher per client, the reconnect loop with backoff, and
 * stopping on a permanent authentication failure.
 * @module
 */
import type { SendMailOptions } from 'nodemailer';
import { ConfigurationError } from '../errors.js';
import type { OAuthProvider } from '../providers/types.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { MailTransport } from '../transport-names.js';
import type { MailboxClientOptions } from './client-options.js';
import type { MailContext } from './context.js';
import type { MailMessage, SentMail } from './message.js';

/**
 * What `fetchUnread` asks of a transport, validated by the client.
 *
 * @example
 * ```ts
 * async *fetchUnread({ max, mailbox, order, signal }: FetchUnreadRequest) { yield* myApi.unread(mailbox ?? 'inbox', max, order, signal) }
 * ```
 */
export interface FetchUnreadRequest {
  /** At most this many messages. */
  readonly max: number;
  /** The mailbox; `undefined`: the transport's inbox. */
  readonly mailbox: string | undefined;
  /** Include the raw RFC 822 message (`source`). */
  readonly source: boolean;
  /** `newest`: the most recent `max`, newest first; `oldest`: the earliest `max`, oldest first. */
  readonly order: 'newest' | 'oldest';
  /** Stops the listing. */
  readonly signal: AbortSignal | undefined;
}

/**
 * One watch, as the client runs it: where to resume, how to deliver, what to tell the client.
 *
 * @example
 * ```ts
 * async watchSession(run: WatchRun) {
 *   run.cursor ??= await myApi.latestPosition();
 *   run.ready();
 *   for await (const { message, position } of myApi.changesSince(run.cursor, run.signal)) {
 *     await run.deliver(message);
 *     run.cursor = position;
 *   }
 *   return undefined;
 * }
 * ```
 */
export interface WatchRun {
  /** The mailbox; `undefined`: the transport's inbox. */
  readonly mailbox: string | undefined;
  /**
   * Where the watch resumes and how far it got: an IMAP `<uidValidity>:<lastUid>:<watermark>`, a Gmail
   * `<historyId>:<watermark>:<id>`, a Graph delta position, or a host transport's own position. `undefined`
   * until the first session set its baseline ("from now on"). The transport advances it after each delivery.
   */
  cursor: string | undefined;
  /** Aborts when the watch stops: end the session (resolve). */
  readonly signal: AbortSignal;
  /** Hand a message to the host; resolves once the host's callback has. */
  deliver(message: MailMessage): Promise<void>;
  /** The session is connected and has its baseline: the client emits `reconnected` if this is a reconnect. */
  ready(): void;
  /**
   * The resume point was gone (a Gmail history id expired, a Graph delta link refused, an IMAP UIDVALIDITY
   * changed) and the transport resynchronized from its watermark: the client emits `resynced` with `reason`.
   */
  resynced(reason: string): void;
}

/**
 * What a transport implements: one instance serves one account of one `MailboxClient`. Failures are the
 * library's typed errors (`MailAuthenticationError` when the server refuses the token: the client then stops
 * a watch with `reauthorizationRequired`; `MailConnectionError` for what a retry may fix).
 *
 * @example
 * ```ts
 * const driver: MailTransportDriver = {
 *   name: 'jmap',
 *   connect: async (signal) => { await session(signal) },
 *   disconnect: async () => {},
 *   isConnected: () => true,
 *   fetchUnread: (request) => unread(request),
 *   markAsRead: async (id) => setKeyword(id, '$seen'),
 *   send: async (message, from) => submit(message, from),
 *   watchSession: (run) => pollChanges(run),
 * };
 * ```
 */
export interface MailTransportDriver {
  /** The transport's name, as in its definition. */
  readonly name: MailTransport;
  /** Connect now (the client otherwise connects on first use); checks the token and the access. */
  connect(signal?: AbortSignal): Promise<void>;
  /** Close what the transport opened. */
  disconnect(): Promise<void>;
  /** Whether the mailbox is reachable now (a connection open, or the last request succeeded). */
  isConnected(): boolean;
  /** Unread messages, streamed, as {@link FetchUnreadRequest} asks. */
  fetchUnread(request: FetchUnreadRequest): AsyncGenerator<MailMessage, void, undefined>;
  /** Mark the message with this id (a `MailMessage.id` it yielded) read. */
  markAsRead(
    id: string,
    options: { readonly mailbox: string | undefined; readonly signal?: AbortSignal },
  ): Promise<void>;
  /** Send a message; `from` is the account's address when the message has none (else `''`). */
  send(message: SendMailOptions, from: string, signal?: AbortSignal): Promise<SentMail>;
  /**
   * One watch session: set the baseline (when `run.cursor` is undefined), call `run.ready()`, deliver new
   * messages until the session must be renewed (`'renew'`: the client starts a new one at once) or the
   * signal aborts (resolve). Throws on failure; the client backs off and starts a new session.
   */
  watchSession(run: WatchRun): Promise<'renew' | undefined>;
}

/**
 * What a transport's `create` receives: the library's building blocks (tokens from `refresher`, the account
 * through `persistence`, providers through `registry`), the account and its provider, the client's options,
 * and where to report the outcome of work the client does not see (a background reconnect).
 *
 * @example
 * ```ts
 * create: ({ refresher, accountId, account }: TransportContext) => new JmapDriver(refresher, accountId, account.email),
 * ```
 */
export interface TransportContext extends MailContext {
  /** The account the client serves. */
  readonly accountId: string;
  /** The account as stored when the transport was created (no secret in it). */
  readonly account: MailboxAccount;
  /** The account's provider. */
  readonly provider: OAuthProvider;
  /** The options the client was created with (a host transport reads its own from its definition). */
  readonly options: MailboxClientOptions;
  /** Report work the client did not call (a background reconnect) to its health figures. */
  readonly health: {
    /** Something succeeded. */
    success(): void;
    /** Something failed (its code and message are recorded; never a secret). */
    failure(error: unknown): void;
  };
}

/**
 * A transport: its name (what `auth.mailbox(id, { transport })`, a preset's `mailTransport` and
 * `mailTransports` name) and how to create its driver for one account.
 *
 * @example
 * ```ts
 * const jmap: TransportDefinition = defineTransport({ name: 'jmap', create: (context) => new JmapDriver(context) });
 * ```
 */
export interface TransportDefinition {
  /** The name: lowercase letters, digits and dashes, starting with a letter (at most 32 characters). */
  readonly name: MailTransport;
  /** Validate the client's options when the client is created (throw an `InvalidArgumentError`). */
  readonly checkOptions?: (options: MailboxClientOptions) => void;
  /** Create the driver for one account, on the client's first use. */
  readonly create: (context: TransportContext) => MailTransportDriver | Promise<MailTransportDriver>;
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Define a mail transport, checked: a host adds one (say JMAP) in a file of its own and passes it to
 * `createMailboxAuth({ transports: [jmap] })`; its provider preset lists the name in `mailTransports`. The
 * built-in `imap`, `gmail-api` and `graph` transports are defined the same way. A bad definition is a
 * `ConfigurationError`.
 *
 * @example
 * ```ts
 * import { defineTransport, definePreset } from 'oauth-mailbox';
 *
 * export const jmap = defineTransport({
 *   name: 'jmap',
 *   create: ({ refresher, accountId }) => new JmapDriver({ url: 'https://jmap.example.com', refresher, accountId }),
 * });
 * const auth = createMailboxAuth({ ...config, transports: [jmap] });
 * const mailbox = auth.mailbox(accountId, { transport: 'jmap' });
 * ```
 */
export function defineTransport(definition: TransportDefinition): TransportDefinition {
  if (typeof definition !== 'object' || definition === null) {
    throw new ConfigurationError('defineTransport: the definition must be an object');
  }
  const { name, create, checkOptions } = definition;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ConfigurationError(
      'defineTransport: name must be lowercase letters, digits and dashes, starting with a letter (at most 32 characters)',
    );
  }
  if (typeof create !== 'function') {
    throw new ConfigurationError(`defineTransport: "${name}" needs a create(context) function`);
  }
  if (checkOptions !== undefined && typeof checkOptions !== 'function') {
    throw new ConfigurationError(`defineTransport: checkOptions of "${name}" must be a function`);
  }
  return Object.freeze({ ...definition });
}
