/**
 * GET /api/oauth/:provider/callback — the redirect URI registered with the provider
 * (`${APP_ORIGIN}/api/oauth/<provider>/callback`).
 *
 * `completeAuthorization` takes the Web `Request` as is: it checks the state (single use, same owner, same
 * provider), exchanges the code with the PKCE verifier, verifies the id_token, and stores the account with
 * its tokens encrypted. The browser goes back to the accounts page with `?status=success&account=…`, or
 * `?status=error&error=<stable code>`: never a message, a code or a token in the URL.
 */
import { buildReturnUrl } from 'oauth-mailbox';
import { logFailure, redirectTo, setupProblem, text } from '@/lib/http';
import { getMailboxSetup } from '@/lib/mailbox-auth';
import { currentOwner } from '@/lib/session';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export async function GET(
  request: Request,
  { params }: { params: Promise<{ provider: string }> },
): Promise<Response> {
  const { provider } = await params;
  const setup = await getMailboxSetup();
  if (!setup.ok) return setupProblem(setup);
  if (!setup.auth.registry.has(provider)) return text('Unknown provider.', 404);
  // The session cookie must reach this cross-site redirect: SameSite=Lax (not Strict) on your session cookie.
  const owner = await currentOwner();
  if (owner === null) return text('Your session ended: sign in, then connect the mailbox again.', 401);

  try {
    const { account, returnTo } = await setup.auth.completeAuthorization(provider, request, {
      owner,
      signal: AbortSignal.timeout(20_000), // token exchange and userinfo
    });
    return redirectTo(
      buildReturnUrl(
        returnTo ?? '/accounts',
        { status: 'success', provider, accountId: account.id },
        setup.origin,
      ),
    );
  } catch (error) {
    // Code, name and message to the server log (no authorization code, verifier or token in them).
    logFailure(`callback ${provider}`, error);
    return redirectTo(buildReturnUrl('/accounts', { status: 'error', provider, error }, setup.origin));
  }
}
