/** Small helpers shared by the route handlers. */
import { isMailboxAuthError, type MailboxAccount, type MailboxAuth } from 'oauth-mailbox';
import type { MailboxSetup } from './mailbox-auth';

/** A redirect that no cache keeps (302 after a GET, 303 after a form POST). */
export function redirectTo(location: URL | string, status: 302 | 303 = 302): Response {
  return new Response(null, {
    status,
    headers: { location: String(location), 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' },
  });
}

export function text(body: string, status: number): Response {
  return new Response(`${body}\n`, {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
  });
}

/** 503 with the configuration problems (they name variables, never their values). */
export function setupProblem(setup: Extract<MailboxSetup, { ok: false }>): Response {
  return text(`The mailbox connection is not configured:\n- ${setup.problems.join('\n- ')}`, 503);
}

/**
 * A form POST must come from this app's own pages (CSRF): browsers send `Origin` with every POST.
 * Open the app on `APP_ORIGIN` itself (not 127.0.0.1 when it says localhost).
 */
export function fromOwnPage(request: Request, origin: string): boolean {
  return request.headers.get('origin') === origin;
}

/** The account if it exists and belongs to `owner`; `null` otherwise (answer 404 either way). */
export async function ownedAccount(
  auth: MailboxAuth,
  accountId: string,
  owner: string,
): Promise<MailboxAccount | null> {
  try {
    const account = await auth.getAccount(accountId);
    return account.owner === owner ? account : null;
  } catch (error) {
    if (
      isMailboxAuthError(error, 'ERR_ACCOUNT_NOT_FOUND') ||
      isMailboxAuthError(error, 'ERR_INVALID_ARGUMENT')
    )
      return null;
    throw error;
  }
}

/** The stable code of a failure, for logs and `?error=` (never its message: that stays in the server log). */
export function errorCode(error: unknown): string {
  return isMailboxAuthError(error) ? error.code : 'ERR_UNEXPECTED';
}

/**
 * Write a failure to the server log: a library error as its `{ code, name, message }` (messages hold no
 * secret), never the whole object: its `cause` can be a raw provider response or a socket error. Anything
 * else gets one generic line with its type only.
 */
export function logFailure(where: string, error: unknown, level: 'error' | 'warn' = 'error'): void {
  const write = level === 'warn' ? console.warn : console.error;
  if (isMailboxAuthError(error)) {
    const { code, name, message } = error;
    write(`[oauth-mailbox example] ${where}: ${code}`, { code, name, message });
  } else {
    write(
      `[oauth-mailbox example] ${where}: ERR_UNEXPECTED (an unexpected ${error instanceof Error ? error.name : typeof error})`,
    );
  }
}
