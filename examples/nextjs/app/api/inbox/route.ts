/**
 * GET /api/inbox → what the app heard of the signed-in owner's mailboxes, as JSON: each watched mailbox
 * (the orchestrator's state, last success, messages in 24 h, and its initial sync) and the latest messages,
 * newest first (`via: 'watch'` from the watcher, `via: 'initial sync'` unread at connect). Subjects and
 * senders only: no body, no token. The accounts page shows the same.
 */
import { setupProblem, text } from '@/lib/http';
import { getMailboxSetup } from '@/lib/mailbox-auth';
import { currentOwner } from '@/lib/session';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export async function GET(): Promise<Response> {
  const setup = await getMailboxSetup();
  if (!setup.ok) return setupProblem(setup);
  const owner = await currentOwner();
  if (owner === null) return text('Sign in first.', 401);
  const { inboxes } = setup;
  if (inboxes === undefined) return text('Watching is off in this process (WATCH_MAILBOXES=0).', 404);
  const watched = inboxes.watched(owner).map((health) => ({
    accountId: health.accountId,
    state: health.state,
    leased: health.leased,
    lastSuccessAt: health.lastSuccessAt?.toISOString() ?? null,
    messagesLast24h: health.messagesLast24h,
    lastErrorCode: health.lastError?.code ?? null,
    initialSync: inboxes.initialSync(health.accountId) ?? null,
  }));
  return Response.json(
    { watched, messages: inboxes.latest(owner) },
    { headers: { 'cache-control': 'no-store' } },
  );
}
