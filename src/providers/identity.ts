/**
 * Reading the mailbox identity out of OpenID claims (an id_token's or userinfo's): the first claim of the
 * preset's list that holds an address, and never an `email` the provider marked unverified unless the preset
 * opts in.
 * @internal
 * @module
 */
import type { MailboxIdentity } from './types.js';

/** Whether the claims say the address was not proven to be the user's (`email_verified: false`). @internal */
export function marksEmailUnverified(claims: Readonly<Record<string, unknown>> | undefined): boolean {
  return claims?.email_verified === false || claims?.email_verified === 'false';
}

/**
 * The identity in `claims`: the first of `claimNames` that holds an address (with `sub` and `name` when
 * present), skipping an unverified `email` unless `trustUnverifiedEmail`; `undefined` when none does.
 * @internal
 */
export function identityFromClaims(
  claims: Readonly<Record<string, unknown>> | undefined,
  claimNames: readonly string[],
  trustUnverifiedEmail: boolean,
): MailboxIdentity | undefined {
  if (claims === undefined) return undefined;
  const unverified = marksEmailUnverified(claims) && !trustUnverifiedEmail;
  for (const name of claimNames) {
    const value = claims[name];
    if (name === 'email' && unverified) continue;
    if (typeof value === 'string' && value.includes('@')) {
      return {
        email: value,
        ...(typeof claims.sub === 'string' ? { subject: claims.sub } : {}),
        ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
      };
    }
  }
  return undefined;
}
