/**
 * The pending-authorization storage contract.
 *
 * @module
 */

/**
 * A pending authorization as a {@link StateStore} keeps it.
 *
 * @example
 * ```ts
 * const state: StoredState | null = await store.takeState(key);
 * ```
 */
export interface StoredState {
  /** The owner who started it; at most `maxPerOwner` are kept per owner. */
  readonly owner: string;
  /** The provider it was started for. */
  readonly provider: string;
  /** Opaque data for the flow (it holds the PKCE verifier, so the flow encrypts it). */
  readonly payload: string;
  /** When it was stored (epoch ms). */
  readonly createdAt: number;
  /** When it lapses (epoch ms). */
  readonly expiresAt: number;
}

/**
 * Options of {@link StateStore.putState}.
 *
 * @example
 * ```ts
 * await store.putState(key, state, { maxPerOwner: 10 });
 * ```
 */
export interface PutStateOptions {
  /** Keep at most this many unexpired states per owner; the oldest are dropped first. */
  readonly maxPerOwner: number;
  /**
   * Keep at most this many unexpired states in all, whoever their owners (many owners at once); the oldest
   * are dropped first. Omitted: no global bound.
   */
  readonly maxTotal?: number;
}

/**
 * Where pending authorizations live between the start and the callback. Rules (checked by the
 * conformance suite):
 * - `takeState` returns a state at most once, even to concurrent callers; expired states are never
 *   returned.
 * - At most `maxPerOwner` states are kept per owner, the oldest dropped first, and expired states do not
 *   accumulate: memory stays bounded under a flood of starts.
 *
 * @example
 * ```ts
 * const store = memoryStore();
 * await store.putState('abc', { owner: 'u1', provider: 'google', payload: '…', createdAt: now, expiresAt: now + 600_000 }, { maxPerOwner: 5 });
 * await store.takeState('abc'); // the state
 * await store.takeState('abc'); // null
 * ```
 */
export interface StateStore {
  /** Store a state under `key` (the value of the `state` parameter, or a hash of it). */
  putState(key: string, state: StoredState, options: PutStateOptions): Promise<void>;
  /** Remove and return the state, or `null` when unknown, expired or already taken. */
  takeState(key: string): Promise<StoredState | null>;
}
