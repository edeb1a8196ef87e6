import { getMailboxSetup, redirectUri } from '@/lib/mailbox-auth';
import { currentOwner } from '@/lib/session';
import { SetupProblem } from './_components/setup-problem';

// Rendered per request: it reads the session and the server's configuration, never at build time.
export const dynamic = 'force-dynamic';

export default async function Home() {
  const setup = await getMailboxSetup();
  if (!setup.ok) return <SetupProblem problems={setup.problems} />;
  const owner = await currentOwner();
  return (
    <section>
      <h1>Connect a mailbox</h1>
      <p>
        This app connects Gmail and Microsoft 365 mailboxes with OAuth. The tokens are stored encrypted (
        {setup.storage === 'postgres' ? 'in PostgreSQL' : 'in memory: lost on restart'}), refreshed when
        needed, and used for IMAP and SMTP.
      </p>
      {owner === null ? (
        <p className="notice error">
          Nobody is signed in. The demo session in <code>lib/session.ts</code> is off in production: plug in
          your auth, or set <code>DEMO_SESSION=1</code> to try it.
        </p>
      ) : (
        <p>
          Signed in as <code>{owner}</code> (a stub: <code>lib/session.ts</code>).{' '}
          <a href="/accounts">Your mailboxes →</a>
        </p>
      )}
      <h2>Providers</h2>
      <p>Register each redirect URI, exactly, in the provider's console:</p>
      <ul>
        {setup.auth.listProviders().map((provider) => (
          <li key={provider.id}>
            {provider.displayName}: <code>{redirectUri(setup.origin, provider.id)}</code>
          </li>
        ))}
      </ul>
    </section>
  );
}
