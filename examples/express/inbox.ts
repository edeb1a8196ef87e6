/**
 * New mail, as the app hears of it: every connected mailbox is watched by a watch orchestrator (several
 * instances of the app on one database split the mailboxes between them by leases, and each resumes where
 * the last watch stopped), and a newly connected mailbox gets an initial sync. Mailboxes join and leave from
 * the library's `connected` and `disconnected` events, so the OAuth routes need not know about any of it.
 *
 * A real app would queue the messages for its own work; this one logs their ids.
 */
import {
  isMailboxAuthError,
  type MailboxAuth,
  type MailboxAuthEvents,
  type MailboxClientOptions,
  type WatchOrchestrator,
} from 'oauth-mailbox';

/** What {@link watchInboxes} returns. */
export interface Inboxes {
  /** The orchestrator (its `health()` per watched account). */
  readonly orchestrator: WatchOrchestrator;
  /** Stop listening to the events and stop every watcher (their leases released). */
  close(): Promise<void>;
}

/** The code of a failure, for a log line (library errors have a stable one and no secret). */
function codeOf(error: unknown): string {
  return isMailboxAuthError(error) ? error.code : error instanceof Error ? error.name : 'unknown';
}

/**
 * Watch every mailbox already connected, and each one connected from now on; stop watching a disconnected
 * one. `clientOptions(provider)` gives the mail options of a provider's accounts.
 */
export async function watchInboxes(
  auth: MailboxAuth,
  options: {
    readonly log: (line: string) => void;
    readonly clientOptions: (provider: string) => MailboxClientOptions;
  },
): Promise<Inboxes> {
  const { log, clientOptions } = options;
  const orchestrator = auth.watchOrchestrator({
    onMessage: (accountId, message) => log(`new message for account ${accountId}: ${message.id}`),
    onStopped: (accountId, error) => log(`stopped watching account ${accountId}: ${codeOf(error)}`),
    onFailedMessage: (accountId, _message, failure) =>
      log(`skipped message ${failure.messageId} of account ${accountId}: ${failure.code}`),
  });
  const watch = (accountId: string, provider: string) =>
    orchestrator.add(accountId, { client: clientOptions(provider) });

  /** The latest unread messages of a mailbox just connected (what the app would import). */
  const initialSync = async (accountId: string, provider: string) => {
    try {
      let unread = 0;
      const mailbox = auth.mailbox(accountId, clientOptions(provider));
      for await (const _message of mailbox.fetchUnread({ max: 20, source: false })) unread++;
      await mailbox.disconnect();
      log(`initial sync of account ${accountId}: ${unread} unread`);
    } catch (error) {
      log(`initial sync of account ${accountId} failed: ${codeOf(error)}`);
    }
  };
  const onConnected = ({ accountId, provider, created }: MailboxAuthEvents['connected']) => {
    watch(accountId, provider);
    if (created) void initialSync(accountId, provider);
  };
  const onDisconnected = ({ accountId }: MailboxAuthEvents['disconnected']) =>
    void orchestrator.remove(accountId);
  auth.on('connected', onConnected);
  auth.on('disconnected', onDisconnected);

  // The mailboxes connected before this start (another instance, an earlier run).
  let cursor: string | null = null;
  do {
    const page = await auth.persistence.listAccounts({ status: 'active' }, { cursor, limit: 500 });
    for (const account of page.accounts) watch(account.id, account.provider);
    cursor = page.nextCursor;
  } while (cursor !== null);

  return {
    orchestrator,
    close: async () => {
      auth.off('connected', onConnected);
      auth.off('disconnected', onDisconnected);
      await orchestrator.stopAll();
    },
  };
}
