/**
 * What a refresh's failure means: for the circuit breaker, for the account's status, and whether it is
 * recorded on the account.
 * @module
 */

import { MailboxAuthError, ReauthorizationRequiredError, TokenRefreshError } from '../errors.js';
import type { AccountStatus } from '../store/account-store.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { CircuitOutcome } from './circuit-breaker.js';

/** How the breaker counts a refresh's failure (see {@link CircuitOutcome}). */
export function circuitOutcome(error: unknown): CircuitOutcome {
  if (error instanceof TokenRefreshError) return 'failure';
  if (error instanceof MailboxAuthError && error.code !== 'ERR_PROVIDER_UNAVAILABLE') return 'neutral';
  return 'none'; // aborted, or not the library's error: nothing learnt about the provider
}

/** The failures recorded on the account. */
const RECORDED = new Set([
  'ERR_TOKEN_REFRESH_FAILED',
  'ERR_REAUTHORIZATION_REQUIRED',
  'ERR_CONFIGURATION',
  'ERR_PROVIDER_UNAVAILABLE',
]);

/** What a failed refresh changes on the account. */
export interface FailureEffect {
  /** Record the failure on the account (`recordFailure`). */
  readonly record: boolean;
  /** The account's new status, if it changes. */
  readonly status: AccountStatus | undefined;
  /**
   * Only an extra resource's consent is missing (Graph for an IMAP-consented account): the refresh token and
   * the primary token still work, so the account keeps its status and its primary token.
   */
  readonly consentOnly: boolean;
}

/** What `error`, the failure of a refresh of `resource` (undefined: the primary token), changes. */
export function failureEffect(error: MailboxAuthError, resource: string | undefined): FailureEffect {
  const consentOnly =
    resource !== undefined && error instanceof ReauthorizationRequiredError && error.consentRequired;
  let status: AccountStatus | undefined;
  if (error instanceof ReauthorizationRequiredError && !consentOnly) status = 'reauth_required';
  else if (error.category === 'configuration') status = 'error';
  return { record: RECORDED.has(error.code), status, consentOnly };
}

/** Fail fast for an account that must be reconnected (its refresh token is dead, or it was disconnected). */
export function assertRefreshable(account: MailboxAccount): void {
  if (account.status === 'reauth_required' || account.status === 'revoked') {
    throw new ReauthorizationRequiredError(
      account.status === 'revoked'
        ? 'The account was disconnected: connect the mailbox again'
        : 'The refresh token was revoked or has expired: connect the mailbox again',
      { accountId: account.id, providerId: account.provider },
    );
  }
}
