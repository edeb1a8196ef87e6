/**
 * The two routes a host app needs, as framework-neutral web handlers (`Request` → `Response`), the
 * shape of Next.js route handlers, Hono, Bun and Deno. Type-checked in CI.
 */
import { randomBytes } from 'node:crypto';
import {
  aesGcmCipher,
  buildReturnUrl,
  createMailboxAuth,
  google,
  isMailboxAuthError,
  memoryStore,
  microsoft,
} from 'oauth-mailbox';

const APP = process.env.APP_ORIGIN ?? 'http://localhost:3000';

export const auth = createMailboxAuth({
  providers: [
    google({
      clientId: process.env.GOOGLE_CLIENT_ID ?? 'google-client-id',
      clientSecret: process.env.GOOGLE_CLIENT_SECRET ?? 'google-client-secret',
      redirectUri: `${APP}/oauth/google/callback`,
    }),
    microsoft({
      clientId: process.env.MS_CLIENT_ID ?? 'ms-client-id',
      clientSecret: process.env.MS_CLIENT_SECRET ?? 'ms-client-secret',
      redirectUri: `${APP}/oauth/microsoft/callback`,
      tenant: 'common',
    }),
  ],
  store: memoryStore(),
  cipher: aesGcmCipher({ keys: { k1: process.env.TOKEN_KEY ?? randomBytes(32) }, current: 'k1' }),
  allowedOrigins: [APP],
});

/** Your session lookup (stubbed). */
function ownerOf(request: Request): string {
  return request.headers.get('x-user-id') ?? 'demo-user';
}

/** GET /oauth/:provider/start */
export async function start(request: Request, provider: string): Promise<Response> {
  try {
    const { url } = await auth.startAuthorization(provider, {
      owner: ownerOf(request),
      returnTo: '/settings/mail',
    });
    return Response.redirect(url.href, 302);
  } catch (error) {
    if (isMailboxAuthError(error, 'ERR_UNKNOWN_PROVIDER'))
      return new Response('Unknown provider', { status: 404 });
    throw error;
  }
}

/** GET /oauth/:provider/callback */
export async function callback(request: Request, provider: string): Promise<Response> {
  try {
    const { account, returnTo } = await auth.completeAuthorization(provider, request, {
      owner: ownerOf(request),
    });
    const target = buildReturnUrl(
      returnTo ?? '/settings/mail',
      { status: 'success', provider, accountId: account.id },
      APP,
    );
    return Response.redirect(target.href, 302);
  } catch (error) {
    // Only the stable code reaches the browser: ?status=error&provider=google&error=ERR_AUTHORIZATION_DENIED
    return Response.redirect(
      buildReturnUrl('/settings/mail', { status: 'error', provider, error }, APP).href,
      302,
    );
  }
}
