/**
 * The owner's mailboxes: a server component reading the store directly (no API round trip), with the
 * outcome of the last action from the query string (`?status=success|error|disconnected|sent`), each
 * mailbox's watch, and the latest mail the watchers and initial syncs received (lib/inbox.ts).
 */
import { type AccountHealth, isMailboxAuthError } from 'oauth-mailbox';
import type { Inboxes } from '@/lib/inbox';
import { getMailboxSetup } from '@/lib/mailbox-auth';
import { currentOwner } from '@/lib/session';
import { SetupProblem } from '../_components/setup-problem';

export const dynamic = 'force-dynamic';

type SearchParams = Promise<{ [key: string]: string | string[] | undefined }>;

/** What to tell the user for each stable error code (`?error=`); anything else shows the code. */
const MESSAGES: Readonly<Record<string, string>> = {
  ERR_AUTHORIZATION_DENIED: 'You declined access at the provider. Nothing was connected.',
  ERR_INVALID_STATE: 'That sign-in link expired or was already used. Start again.',
  ERR_AUTHORIZATION_RESPONSE_INVALID: 'The provider sent back an unexpected answer. Start again.',
  ERR_TOKEN_EXCHANGE_FAILED:
    'The provider did not hand over the tokens (did you grant every permission asked for?). Start again.',
  ERR_CONFIGURATION: 'This app is misconfigured for that provider (see the server log).',
  ERR_PROVIDER_UNAVAILABLE: 'The provider did not answer. Try again in a moment.',
  ERR_STORAGE: 'Our storage failed. Try again in a moment.',
  ERR_REAUTHORIZATION_REQUIRED: 'The provider no longer accepts this connection: reconnect the mailbox.',
  ERR_MAIL_AUTHENTICATION_FAILED: 'The mail server refused the token: reconnect the mailbox.',
  ERR_MAIL_CONNECTION_FAILED: 'The mail server could not be reached. Try again later.',
};

const one = (value: string | string[] | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined;

const when = (date: Date | null): string =>
  date === null ? '—' : date.toISOString().replace('T', ' ').slice(0, 16);

/** A mailbox's watch as one line: the orchestrator's state and its initial sync. */
function watchSummary(inboxes: Inboxes | undefined, owner: string, accountId: string): string {
  if (inboxes === undefined) return 'off';
  const watch = inboxes.watched(owner).find((h) => h.accountId === accountId);
  const sync = inboxes.initialSync(accountId);
  const synced =
    sync === undefined
      ? ''
      : sync.state === 'done'
        ? `, initial sync: ${sync.unread} unread`
        : sync.state === 'failed'
          ? `, initial sync failed (${sync.code})`
          : ', initial sync running';
  return `${watch?.state ?? 'not watched'}${synced}`;
}

export default async function AccountsPage({ searchParams }: { searchParams: SearchParams }) {
  const setup = await getMailboxSetup();
  if (!setup.ok) return <SetupProblem problems={setup.problems} />;
  const owner = await currentOwner();
  if (owner === null) return <p className="notice error">Sign in first (see lib/session.ts).</p>;
  const { auth, inboxes } = setup;
  const query = await searchParams;

  const providers = auth.listProviders();
  const { accounts } = await auth.persistence.listAccounts({ owner }, { limit: 100 });
  const health = (
    await Promise.all(
      accounts.map((account) =>
        auth.accountHealth(account.id).catch((error: unknown) => {
          if (isMailboxAuthError(error, 'ERR_ACCOUNT_NOT_FOUND')) return null; // disconnected meanwhile
          throw error;
        }),
      ),
    )
  ).filter((row): row is AccountHealth => row !== null);

  // Only echo what we recognize: a known provider's name, an account of this owner, a code pattern.
  const providerName = providers.find((p) => p.id === one(query.provider))?.displayName;
  const account = health.find((row) => row.accountId === one(query.account));
  const code = one(query.error);
  const status = one(query.status);
  let notice: { text: string; error: boolean } | undefined;
  if (status === 'success') {
    notice = {
      text: `Connected ${account?.email ?? 'the mailbox'}${providerName ? ` (${providerName})` : ''}.`,
      error: false,
    };
  } else if (status === 'error' && code !== undefined && /^ERR_[A-Z_]{1,60}$/.test(code)) {
    notice = { text: `${MESSAGES[code] ?? 'That did not work.'} (${code})`, error: true };
  } else if (status === 'disconnected') {
    notice = {
      text:
        one(query.revoked) === '1'
          ? 'Disconnected: the provider revoked the access, and the tokens are deleted.'
          : 'Disconnected: the tokens are deleted here (revoke the app in your provider account too).',
      error: false,
    };
  } else if (status === 'sent') {
    notice = { text: `Test message sent to ${account?.email ?? 'the mailbox'}.`, error: false };
  }

  return (
    <section>
      <h1>Your mailboxes</h1>
      {notice && <p className={notice.error ? 'notice error' : 'notice'}>{notice.text}</p>}

      <h2>Connect</h2>
      <p>
        {providers.map((provider) => (
          // A plain link, not next/link: the start route answers with a redirect to another site.
          <a key={provider.id} className="connect" href={`/api/oauth/${provider.id}/start`}>
            Connect {provider.displayName}
          </a>
        ))}
      </p>

      <h2>Connected</h2>
      {health.length === 0 ? (
        <p>No mailbox connected yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Mailbox</th>
              <th>Status</th>
              <th>Watch</th>
              <th>Last success</th>
              <th>Token expires</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {health.map((row) => (
              <tr key={row.accountId}>
                <td>
                  {row.email}
                  <br />
                  <small>{providers.find((p) => p.id === row.provider)?.displayName ?? row.provider}</small>
                </td>
                <td>
                  {row.connected ? 'connected' : row.status.replace('_', ' ')}
                  {row.lastError && (
                    <>
                      <br />
                      <small>
                        {row.lastError.code} at {when(row.lastError.at)}
                        {row.consecutiveFailures > 1 ? ` (${row.consecutiveFailures} failures in a row)` : ''}
                      </small>
                    </>
                  )}
                </td>
                <td>{watchSummary(inboxes, owner, row.accountId)}</td>
                <td>{when(row.lastSuccessAt)}</td>
                <td>{when(row.tokenExpiresAt)}</td>
                <td>
                  {!row.connected && (
                    <a href={`/api/oauth/${row.provider}/start?login_hint=${encodeURIComponent(row.email)}`}>
                      Reconnect
                    </a>
                  )}{' '}
                  {row.connected && (
                    <form method="post" action={`/api/accounts/${row.accountId}/send-test`}>
                      <button type="submit">Send a test message</button>
                    </form>
                  )}{' '}
                  <form method="post" action={`/api/accounts/${row.accountId}/disconnect`}>
                    <button type="submit">Disconnect</button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {inboxes !== undefined && health.length > 0 && (
        <>
          <h2>Latest mail</h2>
          <LatestMail inboxes={inboxes} owner={owner} emails={health} />
        </>
      )}
      <p>
        <small>
          Signed in as <code>{owner}</code> (stub) · storage: {setup.storage}
        </small>
      </p>
    </section>
  );
}

/** What the watchers delivered and the initial syncs found, newest first (as `GET /api/inbox`). */
function LatestMail({
  inboxes,
  owner,
  emails,
}: {
  inboxes: Inboxes;
  owner: string;
  emails: readonly AccountHealth[];
}) {
  const messages = inboxes.latest(owner);
  if (messages.length === 0) return <p>Nothing received yet (reload after new mail arrives).</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>Mailbox</th>
          <th>From</th>
          <th>Subject</th>
          <th>Received</th>
        </tr>
      </thead>
      <tbody>
        {messages.map((message) => (
          <tr key={`${message.accountId}:${message.id}`}>
            <td>{emails.find((row) => row.accountId === message.accountId)?.email ?? message.accountId}</td>
            <td>{message.from ?? '—'}</td>
            <td>{message.subject ?? '(no subject)'}</td>
            <td>
              {when(new Date(message.receivedAt))}
              <br />
              <small>
                {message.via === 'watch' ? 'new, from the watcher' : 'unread at connect (initial sync)'}
              </small>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
