/**
 * Token sources: how a new access token is obtained for an account (the refresh-token grant first; grants
 * without a refresh token, such as client credentials or a JWT bearer assertion, plug in the same way).
 * @module
 */

import { rescuedRefreshToken } from '../providers/token-response.js';
import type { OAuthProvider, ProviderTokenResult } from '../providers/types.js';
import type { MailboxAccount } from '../tokens/account.js';
import { type FailedAttempt, type RefreshRetryOptions, retryTransient } from './retry.js';

/**
 * What a {@link TokenSource} is asked for: a new access token of `account` (or of one of its provider's
 * extra resources).
 *
 * @example
 * ```ts
 * const source: TokenSource = {
 *   grant: 'client_credentials',
 *   canObtain: () => true,
 *   obtain: (request: TokenRequest) => appClient.token(request.account.metadata.tenant as string, request.scopes),
 * };
 * ```
 */
export interface TokenRequest {
  /** The account (no secret). */
  readonly account: MailboxAccount;
  /** The account's provider. */
  readonly provider: OAuthProvider;
  /** The refresh token held now, or `null` when the account has none. */
  readonly refreshToken: string | null;
  /** The extra resource (such as `graph`) the token is for; `undefined` for the primary token. */
  readonly resource: string | undefined;
  /** The scopes to ask for (the resource's), or `undefined` for the account's own. */
  readonly scopes: readonly string[] | undefined;
  /**
   * Aborted when every caller has given up or the refresher closes. A request already sent should be let
   * finish when the grant rotates a credential (its answer may hold the only valid refresh token).
   */
  readonly signal: AbortSignal;
}

/**
 * Obtains access tokens for accounts: one grant. The refresher runs it inside its policies (single flight,
 * lock, store lease, circuit breaker, retries, write-behind), so a source only makes the token request.
 * Throw `TokenRefreshError` for a transient failure (retried), `ReauthorizationRequiredError` when the grant
 * is dead (the account is marked `reauth_required`), `ConfigurationError` for a misconfiguration. A refused
 * answer that carried a rotated refresh token is handled by the refresher when the provider attached it.
 *
 * @example
 * ```ts
 * const auth = createMailboxAuth({
 *   ...config,
 *   refresh: { tokenSource: (account) => (account.metadata.appOnly ? appOnlySource : undefined) },
 * });
 * ```
 */
export interface TokenSource {
  /** The grant, for logs and spans (`refresh_token`, `client_credentials`...). */
  readonly grant: string;
  /** Whether a token can be obtained for the account with what it holds (a refresh token, say). */
  canObtain(held: {
    /** The account. */
    readonly account: MailboxAccount;
    /** The refresh token held now, or `null`. */
    readonly refreshToken: string | null;
  }): boolean;
  /** Make the token request. */
  obtain(request: TokenRequest): Promise<ProviderTokenResult>;
}

/**
 * The refresh-token grant (RFC 6749 §6) through the account's provider: the default source of every account.
 *
 * @example
 * ```ts
 * const result = await refreshTokenGrant.obtain({ account, provider, refreshToken, resource: undefined, scopes: undefined, signal });
 * ```
 */
export const refreshTokenGrant: TokenSource = Object.freeze({
  grant: 'refresh_token',
  canObtain: ({ refreshToken }: { readonly refreshToken: string | null }) =>
    typeof refreshToken === 'string' && refreshToken.length > 0,
  // The signal is not passed on: an attempt is never cut short (a rotating provider's answer holds the only
  // valid refresh token); the refresher stops between attempts.
  obtain: ({ provider, refreshToken, scopes }: TokenRequest) =>
    provider.refresh(refreshToken as string, scopes === undefined ? {} : { scopes }),
});

/** What {@link obtainWithRetries} got: the source's answer and the refresh token it was obtained with. */
export interface ObtainedTokens {
  readonly result: ProviderTokenResult;
  /** The refresh token of the successful request (a rotated one rescued from a refusal, or the one held). */
  readonly refreshToken: string | null;
  /** A refusal carried a rotated refresh token (stored by `onRotated` before the next attempt). */
  readonly rescued: boolean;
}

/**
 * Obtain a token from `source`, retrying transient failures (see {@link retryTransient}). A refused answer
 * that carried a rotated refresh token (the old one is already invalid) is handed to `onRotated`, which
 * stores it before anything else is decided, and the next attempt uses it.
 * @internal
 */
export async function obtainWithRetries(
  source: TokenSource,
  request: TokenRequest,
  options: Required<RefreshRetryOptions> & {
    readonly now: () => number;
    readonly onFailedAttempt: (failed: FailedAttempt) => void;
    readonly onRotated: (refreshToken: string) => Promise<void>;
  },
): Promise<ObtainedTokens> {
  let refreshToken = request.refreshToken;
  let rescued = false;
  const result = await retryTransient(
    async () => {
      try {
        return await source.obtain({ ...request, refreshToken });
      } catch (err) {
        const rotated = rescuedRefreshToken(err);
        if (rotated !== undefined) {
          refreshToken = rotated;
          rescued = true;
          await options.onRotated(rotated);
        }
        throw err;
      }
    },
    { ...options, signal: request.signal },
  );
  return { result, refreshToken, rescued };
}
