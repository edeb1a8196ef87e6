/**
 * POST /api/accounts/:id/send-test → send a short message from the mailbox to itself over SMTP (XOAUTH2 /
 * OAUTHBEARER with a fresh access token), back to the page with the outcome. Proves the whole chain.
 */
import { errorCode, fromOwnPage, logFailure, ownedAccount, redirectTo, setupProblem, text } from '@/lib/http';
import { mailboxOptions } from '@/lib/local-provider';
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
  const account = await ownedAccount(setup.auth, id, owner);
  if (account === null) return text('No such account.', 404);

  const back = new URL('/accounts', setup.origin);
  back.searchParams.set('account', id);
  const mailbox = setup.auth.mailbox(id, mailboxOptions(account.provider));
  try {
    await mailbox.send({
      to: account.email,
      subject: 'oauth-mailbox: test message',
      text: `Sent through ${account.provider}'s SMTP server with an OAuth access token, at ${new Date().toISOString()}.`,
    });
    back.searchParams.set('status', 'sent');
  } catch (error) {
    // MailAuthenticationError: the token was refused (reconnect); MailConnectionError: try again later.
    logFailure(`send-test ${id}`, error);
    back.searchParams.set('status', 'error');
    back.searchParams.set('error', errorCode(error));
  } finally {
    await mailbox.disconnect();
  }
  return redirectTo(back, 303);
}
