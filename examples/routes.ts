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

/**
 * STUB: replace with your session lookup (the signed-in user's id from your session). Never take the owner
 * from a header, query parameter or unsigned cookie: the client sets those. For a local demo only, set
 * `UNSAFE_DEMO_OWNER=demo-user` and every request is that user.
 */
function ownerOf(_request: Request): string {
  const demo = process.env.UNSAFE_DEMO_OWNER;
  if (demo && process.env.NODE_ENV !== 'production') return demo;
  throw new Error(
    'examples/routes.ts: ownerOf() is a stub; replace it with your session lookup (UNSAFE_DEMO_OWNER=… for a local demo)',
  );
}

/** A 302 that is never cached and sends no Referer onwards. */
function redirect(url: URL): Response {
  return new Response(null, {
    status: 302,
    headers: { location: url.href, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' },
  });
}

/** GET /oauth/:provider/start */
export async function start(request: Request, provider: string): Promise<Response> {
  try {
    const { url } = await auth.startAuthorization(provider, {
      owner: ownerOf(request),
      returnTo: '/settings/mail',
    });
    return redirect(url);
  } catch (error) {
    if (isMailboxAuthError(error, 'ERR_UNKNOWN_PROVIDER'))
      return new Response('Unknown provider', { status: 404 });
    throw error;
  }
}

/** GET /oauth/:provider/callback */
export async function callback(request: Request, provider: string): Promise<Response> {
  const owner = ownerOf(request);
  try {
    const { account, returnTo } = await auth.completeAuthorization(provider, request, { owner });
    const target = buildReturnUrl(
      returnTo ?? '/settings/mail',
      { status: 'success', provider, accountId: account.id },
      APP,
    );
    return redirect(target);
  } catch (error) {
    if (!isMailboxAuthError(error)) {
      // Unexpected (a bug, the store down): its code or name only, never its message or the request URL.
      const { code, name } = Object(error) as { code?: unknown; name?: unknown };
      console.error(`oauth callback ${provider}: unexpected ${String(code ?? name ?? typeof error)}`);
    }
    // Only the stable code reaches the browser: ?status=error&provider=google&error=ERR_AUTHORIZATION_DENIED
    return redirect(buildReturnUrl('/settings/mail', { status: 'error', provider, error }, APP));
  }
}
