/**
 * The tokens this process holds, per account and resource, and when a token is still valid enough to hand out.
 * @module
 */

import type { MailboxAccount } from '../tokens/account.js';
import type { TokenSetInput } from '../tokens/token-set.js';
import { AccessToken } from './access-token.js';

/** An account with the tokens read from (or about to be written to) the store. */
export interface HeldTokens {
  readonly account: MailboxAccount;
  readonly tokens: TokenSetInput;
}

interface CacheEntry {
  readonly token: AccessToken;
  readonly expiresAtMs: number | null;
  /** Half the token's issued lifetime: the refresh skew never exceeds it (Infinity when unknown). */
  readonly halfLifeMs: number;
  /** `token`, already resolved: every hot-path call returns this one promise (no allocation per call). */
  readonly resolved: Promise<AccessToken>;
}

interface Picked {
  readonly accessToken: string;
  readonly expiresAtMs: number | null;
  readonly issuedAtMs: number | null;
}

/**
 * Whether a token expiring at `expiresAtMs` is still valid for `minValidityMs` at `now`. The skew is clamped to
 * half the token's issued lifetime: a token that lives 5 minutes or less (Keycloak's default is 300 s) would
 * otherwise be refreshed on every call, and by every process sharing the store.
 * @internal
 */
export function validFor(
  expiresAtMs: number | null,
  minValidityMs: number,
  halfLifeMs: number,
  now: number,
): boolean {
  return expiresAtMs === null || expiresAtMs - Math.min(minValidityMs, halfLifeMs) > now;
}

/** Half of a token's issued lifetime, or Infinity when it is unknown. */
function halfLife(expiresAtMs: number | null, issuedAtMs: number | null): number {
  if (expiresAtMs === null || issuedAtMs === null || expiresAtMs <= issuedAtMs)
    return Number.POSITIVE_INFINITY;
  return (expiresAtMs - issuedAtMs) / 2;
}

function msOf(e: Date | number | null | undefined): number | null {
  return e === undefined || e === null ? null : e instanceof Date ? e.getTime() : e;
}

/** The token of the target (the primary one, or a resource's) in a token set, if any. */
export function pickToken(tokens: TokenSetInput, resource: string | undefined): Picked | undefined {
  const t = resource === undefined ? tokens : tokens.resources?.[resource];
  if (t === undefined) return undefined;
  return { accessToken: t.accessToken, expiresAtMs: msOf(t.expiresAt), issuedAtMs: msOf(t.issuedAt) };
}

/**
 * The tokens this process holds: the hot path reads them without touching the store or the cipher.
 * @internal
 */
export class TokenCache {
  readonly #now: () => number;
  readonly #primary = new Map<string, CacheEntry>();
  /** Extra resource tokens, by account then resource. */
  readonly #resources = new Map<string, Map<string, CacheEntry>>();

  constructor(now: () => number) {
    this.#now = now;
  }

  get size(): number {
    return this.#primary.size;
  }

  /**
   * The held token's resolved promise when it is valid for `minValidityMs` and is not `stale` (a token a server
   * refused); `undefined` otherwise.
   */
  valid(
    accountId: string,
    resource: string | undefined,
    minValidityMs: number,
    stale?: string,
  ): Promise<AccessToken> | undefined {
    const entry = this.held(accountId, resource);
    if (entry === undefined || (stale !== undefined && entry.token.accessToken === stale)) return undefined;
    return validFor(entry.expiresAtMs, minValidityMs, entry.halfLifeMs, this.#now())
      ? entry.resolved
      : undefined;
  }

  /** The held token, valid or not. */
  held(accountId: string, resource: string | undefined): CacheEntry | undefined {
    return resource === undefined
      ? this.#primary.get(accountId)
      : this.#resources.get(accountId)?.get(resource);
  }

  /** Whether the target's token in `held` can be handed out: present, not `stale`, valid for `minValidityMs`. */
  usable(
    held: HeldTokens,
    resource: string | undefined,
    stale: string | undefined,
    minValidityMs: number,
  ): boolean {
    const picked = pickToken(held.tokens, resource);
    if (picked === undefined || picked.accessToken === stale) return false;
    // Tokens stored by earlier versions carry no issue time: the account's last token write stands in.
    const issuedAtMs = picked.issuedAtMs ?? held.account.lastRefreshedAt?.getTime() ?? null;
    return validFor(picked.expiresAtMs, minValidityMs, halfLife(picked.expiresAtMs, issuedAtMs), this.#now());
  }

  /** Hold the target's token from `held` and return it. */
  remember(held: HeldTokens, resource: string | undefined): AccessToken {
    const { account } = held;
    const picked = pickToken(held.tokens, resource) as Picked;
    const issuedAtMs = picked.issuedAtMs ?? account.lastRefreshedAt?.getTime() ?? null;
    const token = new AccessToken(picked.accessToken, account, picked.expiresAtMs, resource);
    const entry: CacheEntry = {
      token,
      expiresAtMs: picked.expiresAtMs,
      halfLifeMs: halfLife(picked.expiresAtMs, issuedAtMs),
      resolved: Promise.resolve(token),
    };
    if (resource === undefined) {
      this.#primary.set(account.id, entry);
    } else {
      let byResource = this.#resources.get(account.id);
      if (byResource === undefined) {
        byResource = new Map();
        this.#resources.set(account.id, byResource);
      }
      byResource.set(resource, entry);
    }
    return token;
  }

  /** Forget the account's tokens: every resource's, and the primary one unless `keepPrimary`. */
  forget(accountId: string, options: { readonly keepPrimary?: boolean } = {}): void {
    if (options.keepPrimary !== true) this.#primary.delete(accountId);
    this.#resources.delete(accountId);
  }
}
