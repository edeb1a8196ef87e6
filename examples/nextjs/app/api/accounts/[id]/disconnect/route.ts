/**
 * POST /api/accounts/:id/disconnect (the accounts page's form) → revoke at the provider where it can
 * (Google; Microsoft has no revocation endpoint), delete the account and its tokens, back to the page.
 */
import { errorCode, fromOwnPage, logFailure, ownedAccount, redirectTo, setupProblem, text } from '@/lib/http';
import { getMailboxSetup } from '@/lib/mailbox-auth';
import { currentOwner } from '@/lib/session';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export async function POST(
  request: Request,
  { params }: { params: Promise<{ id: string }> },
): Promise<Response> {
  const { id } = await params;
  const setup = await getMailboxSetup();
  if (!setup.ok) return setupProblem(setup);
  if (!fromOwnPage(request, setup.origin)) return text('Cross-origin request refused.', 403);
  const owner = await currentOwner();
  if (owner === null) return text('Sign in first.', 401);
  // Someone else's account id answers like an unknown one.
  if ((await ownedAccount(setup.auth, id, owner)) === null) return text('No such account.', 404);

  const back = new URL('/accounts', setup.origin);
  try {
    const { revoked, revocationError } = await setup.auth.disconnect(id, {
      signal: AbortSignal.timeout(10_000),
    });
    if (revocationError !== undefined) {
      // Deleted here all the same; the user can also remove the app in their provider account settings.
      logFailure(`disconnect ${id}: not revoked at the provider`, revocationError, 'warn');
    }
    back.searchParams.set('status', 'disconnected');
    back.searchParams.set('revoked', revoked ? '1' : '0');
  } catch (error) {
    logFailure(`disconnect ${id}`, error);
    back.searchParams.set('status', 'error');
    back.searchParams.set('error', errorCode(error));
  }
  return redirectTo(back, 303);
}
