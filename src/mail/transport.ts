/**
 * The contract between `MailboxClient` and its transports (IMAP/SMTP, Gmail API, Microsoft Graph). The
 * client owns what must behave the same whatever the transport: events, health, one watcher per client,
 * the reconnect loop with backoff, and stopping on a permanent authentication failure.
 * @internal
 * @module
 */
import type { SendMailOptions } from 'nodemailer';
import type { MailTransport } from '../providers/types.js';
import type { MailMessage, SentMail } from './message.js';

/** Options of `fetchUnread`, validated. */
export interface FetchUnreadRequest {
  readonly max: number;
  /** `undefined`: the transport's inbox. */
  readonly mailbox: string | undefined;
  readonly source: boolean;
  /** `newest`: the most recent `max`, newest first; `oldest`: the earliest `max`, oldest first. */
  readonly order: 'newest' | 'oldest';
  readonly signal: AbortSignal | undefined;
}

/** One watch, as the client runs it: where to resume, how to deliver, what to tell the client. */
export interface WatchRun {
  /** `undefined`: the transport's inbox. */
  readonly mailbox: string | undefined;
  /**
   * Where the watch resumes and how far it got: the last delivered IMAP UID (decimal), a Gmail history id,
   * a Graph delta position. `undefined` until the first session set its baseline ("from now on").
   */
  cursor: string | undefined;
  readonly signal: AbortSignal;
  /** Hand a message to the host; resolves once the host's callback has. */
  deliver(message: MailMessage): Promise<void>;
  /** The session is connected and has its baseline: the client emits `reconnected` if this is a reconnect. */
  ready(): void;
  /** The resume point was too old for the API: the watch restarted from a new baseline. */
  resynced(): void;
}

/** What a transport implements. */
export interface MailTransportDriver {
  readonly name: MailTransport;
  connect(signal?: AbortSignal): Promise<void>;
  disconnect(): Promise<void>;
  isConnected(): boolean;
  fetchUnread(request: FetchUnreadRequest): AsyncGenerator<MailMessage, void, undefined>;
  markAsRead(
    id: string,
    options: { readonly mailbox: string | undefined; readonly signal?: AbortSignal },
  ): Promise<void>;
  send(message: SendMailOptions, from: string, signal?: AbortSignal): Promise<SentMail>;
  /**
   * One watch session: set the baseline (when `run.cursor` is undefined), call `run.ready()`, deliver new
   * messages until the session must be renewed (`'renew'`: the client starts a new one at once) or the
   * signal aborts (resolve). Throws on failure; the client backs off and starts a new session.
   */
  watchSession(run: WatchRun): Promise<'renew' | undefined>;
}
