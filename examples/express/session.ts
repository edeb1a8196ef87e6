/**
 * A stand-in for your authentication: every browser gets a random user id in a signed, HttpOnly,
 * SameSite=Lax cookie, and that id is the `owner` of the mailboxes it connects.
 *
 * REPLACE THIS WITH YOUR AUTH. In a real app the owner is your logged-in user's id (or tenant id), and the
 * CSRF token comes from your session or framework.
 *
 * CSRF: the cookie is SameSite=Lax, so other sites cannot make the browser POST with it; on top of that every
 * form carries a per-session token (an HMAC of the user id), checked on every POST.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

const COOKIE = 'mailbox_demo_user';
const MAX_AGE_SECONDS = 30 * 86_400;

/** The current visitor. */
export interface Session {
  /** The owner of the mailboxes this browser connects. */
  readonly userId: string;
  /** Put it in every form as `_csrf`. */
  readonly csrfToken: string;
}

/** The session set by {@link sessions} for this request. */
export function sessionOf(res: Response): Session {
  return res.locals.session as Session;
}

function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return cookies;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The session middleware and the CSRF check, signed with `secret`. */
export function sessions(options: { readonly secret: string; readonly secure: boolean }) {
  const sign = (purpose: string, value: string) =>
    createHmac('sha256', options.secret).update(`${purpose}:${value}`).digest('base64url');

  /** Read (or create) the visitor's id; sets `res.locals.session`. */
  const middleware = (req: Request, res: Response, next: NextFunction): void => {
    const cookie = parseCookies(req.headers.cookie).get(COOKIE) ?? '';
    const [id = '', signature = ''] = cookie.split('.');
    let userId = id;
    if (id === '' || !sameText(signature, sign('user', id))) {
      userId = randomUUID();
      const attributes = ['Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${MAX_AGE_SECONDS}`];
      if (options.secure) attributes.push('Secure');
      res.append('Set-Cookie', `${COOKIE}=${userId}.${sign('user', userId)}; ${attributes.join('; ')}`);
    }
    const session: Session = { userId, csrfToken: sign('csrf', userId) };
    res.locals.session = session;
    next();
  };

  /** Whether the POSTed form carries this session's CSRF token. */
  const validCsrf = (req: Request, res: Response): boolean => {
    const sent: unknown = (req.body as Record<string, unknown> | undefined)?._csrf;
    return typeof sent === 'string' && sameText(sent, sessionOf(res).csrfToken);
  };

  return { middleware, validCsrf };
}
