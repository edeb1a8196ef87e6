/**
 * Runs once when the server process starts (Next's instrumentation hook), before the first request: it
 * creates the process's `MailboxAuth` and its watch orchestrator (lib/mailbox-auth.ts, lib/inbox.ts), so the
 * mailboxes already in the store are watched right after a restart or a deploy, not at the first visit.
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME !== 'nodejs') return; // the library needs Node (no Edge runtime)
  const { getMailboxSetup } = await import('./lib/mailbox-auth');
  try {
    await getMailboxSetup(); // a configuration problem is shown on the pages instead
  } catch (error) {
    // The database is down, say: the next request tries again.
    console.error(
      `[oauth-mailbox example] start-up: the mailbox setup failed (${error instanceof Error ? error.name : typeof error}); the next request tries again`,
    );
  }
}
