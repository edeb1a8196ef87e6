/**
 * A stand-in for your authentication: a signed, HttpOnly, SameSite=Lax cookie holding a user id, set by
 * `POST /demo/sign-in`, and `UserGuard`, which answers 401 to a request without a valid one. The user id is
 * the `owner` of the mailboxes that user connects.
 *
 * REPLACE THIS WITH YOUR AUTH: keep the guard's contract (put your signed-in user's id, or tenant id, on
 * `request.user`, or refuse with 401) and drop the demo sign-in route. Never take the owner from a header,
 * query parameter or unsigned cookie: the client sets those.
 *
 * Cross-site requests: a SameSite=Lax cookie is sent on a top-level GET navigation (the provider's redirect
 * to the callback) but not on another site's POST, DELETE or fetch, so those arrive without a user (401).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  Body,
  type CanActivate,
  Controller,
  createParamDecorator,
  type ExecutionContext,
  HttpCode,
  Inject,
  Injectable,
  Post,
  Res,
  UnauthorizedException,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { SESSION_OPTIONS, type SessionOptions } from './tokens.js';

const COOKIE = 'mailbox_demo_user';
const MAX_AGE_SECONDS = 30 * 86_400;
/** A demo user name: letters, digits, `.`, `_`, `-`. */
const USER = /^[\w.-]{1,64}$/;

/** The signed-in user, as the guard puts it on the request. */
export interface SignedInUser {
  /** The owner of the mailboxes this user connects. */
  readonly id: string;
}

type RequestWithUser = Request & { user?: SignedInUser };

const sign = (secret: string, value: string) =>
  createHmac('sha256', secret).update(`user:${value}`).digest('base64url');

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The user id in a valid session cookie, or `undefined`. */
export function userOf(request: Request, secret: string): string | undefined {
  const [id = '', signature = ''] = (cookie(request.headers.cookie, COOKIE) ?? '').split('.');
  return USER.test(id) && sameText(signature, sign(secret, id)) ? id : undefined;
}

/** Lets a request through only with a signed-in user, which it puts on `request.user`; else 401. */
@Injectable()
export class UserGuard implements CanActivate {
  // Explicit tokens: the example does not rely on emitted type metadata (esbuild and tsx do not emit it).
  constructor(@Inject(SESSION_OPTIONS) private readonly options: SessionOptions) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<RequestWithUser>();
    const id = userOf(request, this.options.secret);
    if (id === undefined) throw new UnauthorizedException('Sign in first.');
    request.user = { id };
    return true;
  }
}

/** The signed-in user's id, in a handler behind {@link UserGuard}. */
export const CurrentUser = createParamDecorator((_data: unknown, context: ExecutionContext): string => {
  const user = context.switchToHttp().getRequest<RequestWithUser>().user;
  if (user === undefined) throw new UnauthorizedException('Sign in first.');
  return user.id;
});

/** `POST /demo/sign-in {"user":"ada"}`: the demo's whole login. Replace with your own. */
@Controller('demo')
export class DemoSessionController {
  constructor(@Inject(SESSION_OPTIONS) private readonly options: SessionOptions) {}

  @Post('sign-in')
  @HttpCode(204)
  signIn(@Body() body: unknown, @Res({ passthrough: true }) res: Response): void {
    const user = (body as { user?: unknown } | undefined)?.user;
    if (typeof user !== 'string' || !USER.test(user))
      throw new UnauthorizedException('user must be 1 to 64 letters, digits, ".", "_" or "-"');
    const attributes = ['Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${MAX_AGE_SECONDS}`];
    if (this.options.secure) attributes.push('Secure');
    res.append(
      'Set-Cookie',
      `${COOKIE}=${user}.${sign(this.options.secret, user)}; ${attributes.join('; ')}`,
    );
  }
}
