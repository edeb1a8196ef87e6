/**
 * A framework-neutral health endpoint: a `Request` → `Response` function over `health()`, for readiness
 * probes and dashboards (Next.js route handlers, Hono, Bun and Deno take it as it is; Express and NestJS
 * through a few lines, see docs/operations.md).
 * @module
 */
import { InvalidArgumentError, isMailboxAuthError } from '../errors.js';
import type { HealthOptions, HealthReport } from './health.js';

/**
 * Options of {@link healthHandler}.
 *
 * @example
 * ```ts
 * const probe = healthHandler(auth, { failWhen: 'unhealthy', expiringWithinMs: 15 * 60_000 });
 * ```
 */
export interface HealthHandlerOptions extends Omit<HealthOptions, 'signal' | 'now'> {
  /**
   * When the answer is `503`:
   * - `'unreachable'`: only when the figures cannot be computed (the store failed): a readiness probe that
   *   does not take an instance out of rotation because one user revoked access;
   * - `'unhealthy'`: also when the report is not `healthy` (an account needs attention, a circuit is open),
   *   for an alerting check.
   * @default 'unreachable'
   */
  readonly failWhen?: 'unreachable' | 'unhealthy';
}

const HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

/**
 * A `Request` → `Response` health endpoint: `GET` (or `HEAD`) answers the {@link HealthReport} as JSON, with
 * `200`, or `503` per `failWhen`; a failure to compute it answers `503` with `{ status: 'unavailable',
 * error: { code, message } }` (typed errors carry no secret). Other methods get `405`. The request's
 * `signal` stops the work when the client goes away.
 *
 * @example
 * ```ts
 * // app/api/health/route.ts (Next.js)
 * import { healthHandler } from 'oauth-mailbox';
 * export const GET = healthHandler(auth);
 * ```
 */
export function healthHandler(
  auth: { health(options?: HealthOptions): Promise<HealthReport> },
  options: HealthHandlerOptions = {},
): (request: Request) => Promise<Response> {
  if (typeof auth?.health !== 'function') {
    throw new InvalidArgumentError('healthHandler needs a MailboxAuth (an object with health())');
  }
  const failWhen = options.failWhen ?? 'unreachable';
  if (failWhen !== 'unreachable' && failWhen !== 'unhealthy') {
    throw new InvalidArgumentError("failWhen must be 'unreachable' or 'unhealthy'");
  }
  const windows: HealthOptions = {
    ...(options.expiringWithinMs === undefined ? {} : { expiringWithinMs: options.expiringWithinMs }),
    ...(options.failuresWithinMs === undefined ? {} : { failuresWithinMs: options.failuresWithinMs }),
  };
  return async (request: Request): Promise<Response> => {
    const head = request.method === 'HEAD';
    if (request.method !== 'GET' && !head) {
      return new Response(
        JSON.stringify({ error: { code: 'ERR_METHOD_NOT_ALLOWED', message: 'Use GET or HEAD' } }),
        { status: 405, headers: { ...HEADERS, allow: 'GET, HEAD' } },
      );
    }
    let status: number;
    let body: unknown;
    try {
      const report = await auth.health({ ...windows, signal: request.signal });
      status = failWhen === 'unhealthy' && !report.healthy ? 503 : 200;
      body = report;
    } catch (err) {
      if (request.signal.aborted) throw err;
      status = 503;
      body = {
        status: 'unavailable',
        error: isMailboxAuthError(err)
          ? { code: err.code, message: err.message }
          : { code: 'ERR_UNEXPECTED', message: 'The health figures could not be computed' },
      };
    }
    return new Response(head ? null : JSON.stringify(body), { status, headers: HEADERS });
  };
}
