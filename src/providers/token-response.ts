/**
 * What the library does with a token endpoint's 200 before openid-client validates it: rescue a rotated
 * refresh token, and be lenient where providers are.
 *
 * A provider that rotates refresh tokens has already invalidated the old one when it answers. If that answer
 * is then refused (an unsupported `token_type`, a garbled `id_token`, no `access_token`), retrying with the old
 * refresh token can only end in `invalid_grant` and a user asked to reconnect. So the new refresh token is
 * taken out of the raw body first, and travels with the typed error to the refresher, which stores it before
 * it decides anything else.
 *
 * Leniency, as providers are in practice: `token_type` absent is `Bearer` (RFC 6749 requires it, several
 * servers omit it on refresh); an `expires_in` that is a numeric string is read as its number (Azure AD v1);
 * one that cannot be used (negative, not a number, more than {@link MAX_EXPIRES_IN_S}) becomes
 * {@link UNUSABLE_EXPIRES_IN_S}, so the token is refreshed soon rather than trusted for ever; a `scope` that is
 * a list of strings is joined, one of another type is dropped (the stored scopes are kept). Everything else
 * (a `token_type` that is not Bearer or DPoP, a malformed `id_token`) is refused by openid-client, typed.
 *
 * @module
 */

/** An `expires_in` longer than this (366 days, in seconds) is not believed. */
export const MAX_EXPIRES_IN_S = 366 * 24 * 3600;

/** The lifetime, in seconds, given to an access token whose `expires_in` cannot be used. */
export const UNUSABLE_EXPIRES_IN_S = 300;

/** Rotated refresh tokens that arrived in an answer that was then refused, by the error that refused it. */
const rescued = new WeakMap<object, string>();

/**
 * The refresh token that arrived in the refused answer behind `err`, if any. Held in a `WeakMap`, never on
 * the error: it shows in no serialization.
 * @internal
 */
export function rescuedRefreshToken(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? rescued.get(err) : undefined;
}

/**
 * Attach a rescued refresh token to the error that refused its answer (see {@link rescuedRefreshToken}).
 * @internal
 */
export function attachRescuedRefreshToken(err: unknown, refreshToken: string): void {
  if (typeof err === 'object' && err !== null) rescued.set(err, refreshToken);
}

/** The refresh token of a token endpoint answer, when it has a usable one. */
export function refreshTokenOf(body: unknown): string | undefined {
  const value = isObject(body) ? body.refresh_token : undefined;
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/**
 * The answer with the lenient fixes applied, or `undefined` when it needs none (the usual case: the
 * original response is then handed on untouched).
 */
export function normalizeTokenResponse(body: unknown): Record<string, unknown> | undefined {
  if (!isObject(body) || Array.isArray(body)) return undefined;
  let out: Record<string, unknown> | undefined;
  const set = (name: string, value: unknown) => {
    out ??= { ...body };
    if (value === undefined) delete out[name];
    else out[name] = value;
  };
  if (body.token_type === undefined || body.token_type === null || body.token_type === '')
    set('token_type', 'Bearer');
  if ('expires_in' in body) {
    const expiresIn = usableExpiresIn(body.expires_in);
    if (expiresIn !== body.expires_in) set('expires_in', expiresIn);
  }
  if ('scope' in body && typeof body.scope !== 'string') {
    const scope = body.scope;
    set(
      'scope',
      Array.isArray(scope) && scope.every((s) => typeof s === 'string') ? scope.join(' ') : undefined,
    );
  }
  return out;
}

function usableExpiresIn(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > MAX_EXPIRES_IN_S)
    return UNUSABLE_EXPIRES_IN_S;
  return Math.floor(n);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
