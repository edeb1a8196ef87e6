/**
 * The token sets of a refresh: the scopes it asks for (a resource's), and the set to store after it.
 * @module
 */

import { InvalidArgumentError } from '../errors.js';
import type { OAuthProvider } from '../providers/types.js';
import type { TokenSet, TokenSetInput } from '../tokens/token-set.js';

/** The scopes to refresh a resource's token with; a resource the provider lacks is the caller's mistake. */
export function resourceScopes(
  provider: { readonly id: string; readonly resources?: OAuthProvider['resources'] },
  resource: string | undefined,
  accountId: string,
): readonly string[] | undefined {
  if (resource === undefined) return undefined;
  const definition = provider.resources?.[resource];
  if (definition === undefined) {
    const known = Object.keys(provider.resources ?? {});
    throw new InvalidArgumentError(
      `The provider "${provider.id}" has no resource "${resource}" (${known.length === 0 ? 'it has none' : `it has: ${known.join(', ')}`})`,
      { accountId, providerId: provider.id },
    );
  }
  return definition.scopes;
}

/** A stored token set as the input to store it again (the refresher's working copy). */
export function toTokenInput(tokens: TokenSet): TokenSetInput {
  return {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    idToken: tokens.idToken,
    expiresAt: tokens.expiresAt,
    issuedAt: tokens.issuedAt,
    tokenType: tokens.tokenType,
    resources: tokens.resourceInputs(),
  };
}

/** What a refresh obtained, to merge into the stored set. */
export interface Obtained {
  /** The token set the source returned. */
  readonly tokens: TokenSet;
  /** The scopes granted, when the provider said. */
  readonly grantedScopes: readonly string[] | undefined;
  /** The scopes asked for (a resource's). */
  readonly scopes: readonly string[] | undefined;
  /** The refresh token the request was made with (a rotated one rescued from a refusal included). */
  readonly refreshToken: string | null;
  /** When it was obtained, epoch milliseconds. */
  readonly issuedAt: number;
}

/**
 * The token set to store after a refresh: the primary token, or the resource's beside the unchanged primary
 * one; either way the (possibly rotated) refresh token and every other resource's token are kept.
 */
export function nextTokens(
  current: TokenSetInput,
  resource: string | undefined,
  obtained: Obtained,
): TokenSetInput {
  const { tokens, issuedAt } = obtained;
  const kept = tokens.refreshToken ?? obtained.refreshToken;
  if (resource === undefined) {
    return {
      accessToken: tokens.accessToken,
      refreshToken: kept,
      idToken: tokens.idToken,
      expiresAt: tokens.expiresAt,
      issuedAt,
      tokenType: tokens.tokenType,
      resources: current.resources,
    };
  }
  return {
    ...current,
    refreshToken: kept,
    resources: {
      ...current.resources,
      [resource]: {
        accessToken: tokens.accessToken,
        expiresAt: tokens.expiresAt,
        issuedAt,
        scopes: obtained.grantedScopes ?? obtained.scopes ?? [],
        tokenType: tokens.tokenType,
      },
    },
  };
}
