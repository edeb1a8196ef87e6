/**
 * GET /api/oauth/:provider/start → 302 to the provider's consent screen.
 *
 * The library stores a single-use state (PKCE verifier and nonce encrypted inside) bound to the owner and
 * the provider; the callback must come back within ten minutes, from the same owner.
 * `?login_hint=ada@example.com` pre-fills the provider's login form (the accounts page uses it to reconnect).
 */
import { buildReturnUrl } from 'oauth-mailbox';
import { logFailure, redirectTo, setupProblem, text } from '@/lib/http';
import { getMailboxSetup } from '@/lib/mailbox-auth';
import { currentOwner } from '@/lib/session';

export const runtime = 'nodejs'; // the default, stated: the library needs Node (crypto, sockets)
export const dynamic = 'force-dynamic';

export async function GET(
  request: Request,
  { params }: { params: Promise<{ provider: string }> },
): Promise<Response> {
  const { provider } = await params;
  const setup = await getMailboxSetup();
  if (!setup.ok) return setupProblem(setup);
  const owner = await currentOwner();
  if (owner === null) return text('Sign in first.', 401); // your app: redirect to its login page

  if (!setup.auth.registry.has(provider)) return text('Unknown provider.', 404);

  const loginHint = new URL(request.url).searchParams.get('login_hint') ?? undefined;
  try {
    const { url } = await setup.auth.startAuthorization(provider, {
      owner,
      returnTo: '/accounts',
      ...(loginHint ? { loginHint } : {}),
    });
    return redirectTo(url);
  } catch (error) {
    // The state store failed, or a bad login_hint: back to the page with the code only.
    logFailure(`start ${provider}`, error);
    return redirectTo(buildReturnUrl('/accounts', { status: 'error', provider, error }, setup.origin));
  }
}
