/**
 * New mail, as the app hears of it (the Next.js twin of `examples/express/inbox.ts`): every connected
 * mailbox is watched by one watch orchestrator per server process (several processes on one database split
 * the mailboxes between them by leases, and each watch resumes where the last one stopped), and a newly
 * connected mailbox gets an initial sync. Mailboxes join and leave from the library's `connected` and
 * `disconnected` events, so the OAuth routes need not know about any of it.
 *
 * Created once, with the `MailboxAuth`, by `getMailboxSetup()` (lib/mailbox-auth.ts); `instrumentation.ts`
 * calls it when the server starts, so the mailboxes already in the store are watched before any request.
 * A real app would queue the messages for its own work; this one keeps the latest few of each mailbox in
 * memory for the accounts page and `GET /api/inbox`.
 */
import {
  isMailboxAuthError,
  type MailboxAuth,
  type MailboxAuthEvents,
  type MailboxClientOptions,
  type MailMessage,
  type WatchHealth,
  type WatchOrchestrator,
} from 'oauth-mailbox';

/** A message the app heard of: from the watcher, or found by the initial sync. No body, no raw source. */
export interface ReceivedMessage {
  readonly accountId: string;
  /** `watch`: delivered by the orchestrator after the connect; `initial sync`: unread when it connected. */
  readonly via: 'watch' | 'initial sync';
  /** The library's message id (the IMAP UID, a Gmail or Graph id). */
  readonly id: string;
  readonly subject: string | null;
  readonly from: string | null;
  /** The message's `Date`, ISO 8601. */
  readonly date: string | null;
  /** When this process heard of it, ISO 8601. */
  readonly receivedAt: string;
}

/** Where a mailbox's initial sync stands. */
export type InitialSync =
  | { readonly state: 'running' }
  | { readonly state: 'done'; readonly unread: number }
  | { readonly state: 'failed'; readonly code: string };

/** What {@link watchInboxes} returns. */
export interface Inboxes {
  /** The orchestrator (its `health()` per watched account). */
  readonly orchestrator: WatchOrchestrator;
  /** The orchestrator's health of `owner`'s watched mailboxes. */
  watched(owner: string): WatchHealth[];
  /** The initial sync of a mailbox connected since this process started, if it had one. */
  initialSync(accountId: string): InitialSync | undefined;
  /** The latest messages of `owner`'s mailboxes, newest first. */
  latest(owner: string): ReceivedMessage[];
  /** Stop listening to the events and stop every watcher (their leases released). */
  close(): Promise<void>;
}

/** Messages kept per mailbox (the newest), and the unread messages an initial sync reads. */
const KEEP_PER_ACCOUNT = 20;
const INITIAL_SYNC_MAX = 5;

/** The code of a failure, for a log line (library errors have a stable one and no secret). */
function codeOf(error: unknown): string {
  return isMailboxAuthError(error) ? error.code : error instanceof Error ? error.name : 'unknown';
}

/**
 * Watch every mailbox already connected, and each one connected from now on; stop watching a disconnected
 * one. `clientOptions(provider)` gives the mail options of a provider's accounts; a provider for which
 * `watchable(provider)` is false is left alone (the dev provider without an IMAP server).
 */
export async function watchInboxes(
  auth: MailboxAuth,
  options: {
    readonly log: (line: string) => void;
    readonly clientOptions: (provider: string) => MailboxClientOptions;
    readonly watchable: (provider: string) => boolean;
  },
): Promise<Inboxes> {
  const { log, clientOptions, watchable } = options;
  /** The owner of each account given to the orchestrator (the pages show each owner only their own). */
  const owners = new Map<string, string>();
  const received = new Map<string, ReceivedMessage[]>();
  const syncs = new Map<string, InitialSync>();

  const keep = (accountId: string, via: ReceivedMessage['via'], message: MailMessage) => {
    if (!owners.has(accountId)) return; // disconnected meanwhile
    const list = received.get(accountId) ?? [];
    if (list.some((m) => m.id === message.id)) return;
    const sender = message.from[0];
    list.unshift({
      accountId,
      via,
      id: message.id,
      subject: message.subject ?? null,
      from: sender === undefined ? null : (sender.address ?? sender.name ?? null),
      date: message.date?.toISOString() ?? null,
      receivedAt: new Date().toISOString(),
    });
    received.set(accountId, list.slice(0, KEEP_PER_ACCOUNT));
  };

  const orchestrator = auth.watchOrchestrator({
    onMessage: (accountId, message) => {
      keep(accountId, 'watch', message);
      log(`new message for account ${accountId}: ${message.id}`);
    },
    onStopped: (accountId, error) => log(`stopped watching account ${accountId}: ${codeOf(error)}`),
    onFailedMessage: (accountId, _message, failure) =>
      log(`skipped message ${failure.messageId} of account ${accountId}: ${failure.code}`),
  });
  const watch = (accountId: string, provider: string, owner: string) => {
    if (!watchable(provider)) return;
    owners.set(accountId, owner);
    orchestrator.add(accountId, { client: clientOptions(provider) });
  };

  /** The latest unread messages of a mailbox just connected (what the app would import). */
  const initialSync = async (accountId: string, provider: string) => {
    syncs.set(accountId, { state: 'running' });
    const mailbox = auth.mailbox(accountId, clientOptions(provider));
    try {
      let unread = 0;
      for await (const message of mailbox.fetchUnread({ max: INITIAL_SYNC_MAX, source: false })) {
        keep(accountId, 'initial sync', message);
        unread++;
      }
      if (owners.has(accountId)) syncs.set(accountId, { state: 'done', unread });
      log(`initial sync of account ${accountId}: ${unread} unread`);
    } catch (error) {
      if (owners.has(accountId)) syncs.set(accountId, { state: 'failed', code: codeOf(error) });
      log(`initial sync of account ${accountId} failed: ${codeOf(error)}`);
    } finally {
      await mailbox.disconnect();
    }
  };

  const onConnected = ({ accountId, provider, owner, created }: MailboxAuthEvents['connected']) => {
    if (!watchable(provider)) return;
    watch(accountId, provider, owner);
    if (created) void initialSync(accountId, provider);
  };
  const onDisconnected = ({ accountId }: MailboxAuthEvents['disconnected']) => {
    // The orchestrator drops the account at once (its `health()` no longer lists it); its owner is
    // forgotten only after that, so the pages show exactly what the orchestrator still watches.
    void orchestrator
      .remove(accountId)
      .catch((error: unknown) => log(`stopping the watch of account ${accountId}: ${codeOf(error)}`))
      .finally(() => {
        owners.delete(accountId);
        received.delete(accountId);
        syncs.delete(accountId);
      });
  };
  auth.on('connected', onConnected);
  auth.on('disconnected', onDisconnected);

  const close = async () => {
    auth.off('connected', onConnected);
    auth.off('disconnected', onDisconnected);
    await orchestrator.stopAll();
  };

  // The mailboxes connected before this start (another instance, an earlier run).
  try {
    let cursor: string | null = null;
    do {
      const page = await auth.persistence.listAccounts({ status: 'active' }, { cursor, limit: 500 });
      for (const account of page.accounts) watch(account.id, account.provider, account.owner);
      cursor = page.nextCursor;
    } while (cursor !== null);
  } catch (error) {
    await close();
    throw error;
  }

  return {
    orchestrator,
    watched: (owner) => orchestrator.health().filter((h) => owners.get(h.accountId) === owner),
    initialSync: (accountId) => syncs.get(accountId),
    latest: (owner) =>
      [...received.values()]
        .flat()
        .filter((m) => owners.get(m.accountId) === owner)
        .sort((a, b) => b.receivedAt.localeCompare(a.receivedAt)),
    close,
  };
}
