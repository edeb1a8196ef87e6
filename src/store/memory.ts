import { InvalidArgumentError, VersionConflictError } from '../errors.js';
import { tallyAccounts } from './account-counts.js';
import type * as contract from './account-store.js';
import { addActivity, type KeptActivity, sumActivity } from './mailbox-activity.js';
import { SortedIds } from './sorted-ids.js';
import type { PutStateOptions, StateStore, StoredState } from './state-store.js';
import { storeInput as input } from './store-input.js';

/**
 * Options of {@link memoryStore}.
 *
 * @example
 * ```ts
 * const store = memoryStore({ now: () => fakeClock.now() });
 * ```
 */
export interface MemoryStoreOptions {
  /** The clock, in epoch milliseconds (for leases and state expiry). @default Date.now */
  readonly now?: () => number;
}

/**
 * A copy sharing nothing mutable with `record`: the store hands out and keeps copies. Cheaper than
 * `structuredClone` on the refresh path (strings are immutable; only the arrays and objects are copied).
 */
function copyRecord(record: contract.AccountRecord): contract.AccountRecord {
  const { metadata, lastError } = record;
  let isEmpty = true;
  for (const _ in metadata) {
    isEmpty = false;
    break;
  }
  return {
    ...record,
    scopes: [...record.scopes],
    lastError: lastError === null ? null : { ...lastError },
    metadata: isEmpty ? {} : structuredClone(metadata),
  };
}

/**
 * An in-process {@link AccountStore} and {@link StateStore}.
 * Construct with {@link memoryStore}.
 *
 * @example
 * ```ts
 * const store: MemoryStore = memoryStore();
 * store.size; // { accounts, states, leases }
 * ```
 */
export class MemoryStore implements contract.AccountStore, StateStore {
  readonly #accounts = new Map<string, contract.AccountRecord>();
  /** Account ids in order: a page is a binary search plus a short walk, an insert shifts one short chunk. */
  readonly #sortedIds = new SortedIds();
  readonly #identities = new Map<string, string>();
  readonly #leases = new Map<string, contract.Lease>();
  /** Watch positions per account, by key. */
  readonly #cursors = new Map<string, Map<string, string>>();
  readonly #activity = new Map<string, KeptActivity>();
  readonly #states = new Map<string, StoredState>();
  readonly #statesByOwner = new Map<string, Set<string>>();
  readonly #now: () => number;
  /** The listeners of {@link MemoryStore.watchAccounts}. */
  readonly #watchers = new Set<(change: contract.AccountChange) => void>();
  #sweepAt = 1024;

  constructor(options: MemoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  async getAccount(id: string): Promise<contract.AccountRecord | null> {
    input.assertId(id);
    const found = this.#accounts.get(id);
    return found === undefined ? null : copyRecord(found);
  }

  async findAccountByIdentity(identity: contract.AccountIdentity): Promise<contract.AccountRecord | null> {
    input.assertIdentity(identity);
    const id = this.#identities.get(input.identityKey(identity));
    return id === undefined ? null : this.getAccount(id);
  }

  async putAccount(record: contract.AccountRecordInput, options: contract.PutAccountOptions) {
    const expectedVersion = input.checkPutAccount(record, options);
    return this.#write(record, expectedVersion);
  }

  /** `putAccount` that also releases `holder`'s lease of the account, with the write (kept if it fails). */
  async putAccountAndRelease(
    record: contract.AccountRecordInput,
    options: contract.PutAccountOptions & { readonly holder: string },
  ): Promise<contract.AccountRecord> {
    const expectedVersion = input.checkPutAccount(record, options);
    input.assertId(options.holder, 'holder');
    return this.#write(record, expectedVersion, options.holder);
  }

  #write(record: contract.AccountRecordInput, expectedVersion: number | null, releasing?: string) {
    const existing = this.#accounts.get(record.id);
    const actualVersion = existing?.version ?? null;
    if (actualVersion !== expectedVersion) {
      throw new VersionConflictError(
        expectedVersion === null
          ? 'An account with this id already exists'
          : 'The account changed since it was read (or no longer exists)',
        { accountId: record.id, expectedVersion, actualVersion },
      );
    }
    const identity = input.identityKey(record);
    const holder = this.#identities.get(identity);
    if (holder !== undefined && holder !== record.id) {
      throw new VersionConflictError('Another account already holds this provider, owner and email', {
        accountId: record.id,
        expectedVersion,
        actualVersion: null,
      });
    }
    const stored: contract.AccountRecord = copyRecord({
      ...record,
      createdAt: existing?.createdAt ?? record.createdAt,
      version: (expectedVersion ?? 0) + 1,
      updatedAt: this.#now(),
    });
    if (existing !== undefined) this.#identities.delete(input.identityKey(existing));
    else this.#sortedIds.add(stored.id);
    this.#identities.set(identity, stored.id);
    this.#accounts.set(stored.id, stored);
    if (releasing !== undefined && this.#leases.get(stored.id)?.holder === releasing) {
      this.#leases.delete(stored.id);
    }
    this.#emit({ kind: 'written', id: stored.id, version: stored.version, record: stored });
    return copyRecord(stored);
  }

  async deleteAccount(id: string, options: { readonly expectedVersion?: number } = {}): Promise<boolean> {
    input.assertId(id);
    const existing = this.#accounts.get(id);
    if (existing === undefined) {
      if (options.expectedVersion !== undefined) {
        throw new VersionConflictError('The account no longer exists', {
          accountId: id,
          expectedVersion: options.expectedVersion,
          actualVersion: null,
        });
      }
      return false;
    }
    if (options.expectedVersion !== undefined && options.expectedVersion !== existing.version) {
      throw new VersionConflictError('The account changed since it was read', {
        accountId: id,
        expectedVersion: options.expectedVersion,
        actualVersion: existing.version,
      });
    }
    this.#accounts.delete(id);
    this.#sortedIds.delete(id);
    this.#identities.delete(input.identityKey(existing));
    this.#leases.delete(id);
    this.#cursors.delete(id);
    this.#activity.delete(id);
    this.#emit({ kind: 'deleted', id });
    return true;
  }

  async listAccounts(
    filter?: contract.AccountFilter,
    options?: contract.ListOptions,
  ): Promise<contract.AccountPage> {
    const f = input.normalizeList(filter, options);
    const records: contract.AccountRecord[] = [];
    let last: string | undefined;
    for (const id of this.#sortedIds.after(f.after)) {
      if (records.length === f.limit) return { records, nextCursor: input.encodeCursor(last as string) };
      last = id;
      const record = this.#accounts.get(id) as contract.AccountRecord;
      if (input.matchesFilter(record, f)) records.push(copyRecord(record));
    }
    return { records, nextCursor: null };
  }

  /** The figures of `health()`, counted over the records in memory (no copy, no decrypt). */
  async countAccounts(query: contract.AccountCountQuery): Promise<contract.AccountCounts> {
    return tallyAccounts(this.#accounts.values(), query);
  }

  /** The record and, when it is due, the refresh lease for `holder`, in one step. */
  async readAndLease(
    id: string,
    holder: string,
    ttlMs: number,
    options: contract.ReadAndLeaseOptions,
  ): Promise<contract.LeasedRead> {
    const dueBefore = input.checkReadAndLease(id, holder, ttlMs, options);
    const found = this.#accounts.get(id);
    if (found === undefined) return { record: null, lease: null, busy: false };
    const record = copyRecord(found);
    const due = dueBefore === null || (found.tokenExpiresAt !== null && found.tokenExpiresAt <= dueBefore);
    if (!due) return { record, lease: null, busy: false };
    const lease = this.#lease(id, holder, ttlMs);
    return { record, lease, busy: lease === null };
  }

  async getWatchCursor(accountId: string, key: string): Promise<string | null> {
    input.assertWatchCursorKey(accountId, key);
    return this.#cursors.get(accountId)?.get(key) ?? null;
  }

  async putWatchCursor(accountId: string, key: string, cursor: string): Promise<boolean> {
    input.assertWatchCursor(accountId, key, cursor);
    if (!this.#accounts.has(accountId)) return false;
    let cursors = this.#cursors.get(accountId);
    if (cursors === undefined) {
      cursors = new Map();
      this.#cursors.set(accountId, cursors);
    }
    cursors.set(key, cursor);
    return true;
  }

  async addMailboxActivity(accountId: string, activity: contract.MailboxActivity): Promise<boolean> {
    input.assertMailboxActivity(accountId, activity);
    if (!this.#accounts.has(accountId)) return false;
    this.#activity.set(accountId, addActivity(this.#activity.get(accountId), activity));
    return true;
  }

  async getMailboxActivity(
    accountIds: readonly string[],
    sinceHour: number,
  ): Promise<contract.MailboxActivityTotals[]> {
    input.assertMailboxActivityQuery(accountIds, sinceHour);
    return accountIds.flatMap((id) => {
      const kept = this.#activity.get(id);
      return kept === undefined ? [] : [sumActivity(id, kept, sinceHour)];
    });
  }

  async acquireLease(id: string, holder: string, ttlMs: number): Promise<contract.Lease | null> {
    input.assertId(id);
    input.assertId(holder, 'holder');
    input.assertTtl(ttlMs);
    return this.#lease(id, holder, ttlMs);
  }

  #lease(id: string, holder: string, ttlMs: number): contract.Lease | null {
    const now = this.#now();
    const current = this.#leases.get(id);
    if (current !== undefined && current.expiresAt > now && current.holder !== holder) return null;
    const lease = { holder, expiresAt: now + ttlMs };
    this.#leases.set(id, lease);
    return { ...lease };
  }

  async releaseLease(id: string, holder: string): Promise<boolean> {
    input.assertId(id);
    input.assertId(holder, 'holder');
    const current = this.#leases.get(id);
    if (current === undefined || current.holder !== holder) return false;
    this.#leases.delete(id);
    const released = current.expiresAt > this.#now();
    if (released) this.#emit({ kind: 'released', id });
    return released;
  }

  /**
   * Every committed change of this store object's accounts, delivered asynchronously (a microtask after the
   * write) to each listener, with a copy of the record written. A listener that throws is ignored.
   */
  async watchAccounts(listener: (change: contract.AccountChange) => void): Promise<contract.AccountWatch> {
    if (typeof listener !== 'function') throw new InvalidArgumentError('listener must be a function');
    // A listener registered twice is two watches: wrap it so that each close removes its own.
    const own = (change: contract.AccountChange) => listener(change);
    this.#watchers.add(own);
    return {
      close: async () => {
        this.#watchers.delete(own);
      },
    };
  }

  #emit(change: contract.AccountChange): void {
    for (const watcher of this.#watchers) {
      const copy =
        change.record === undefined ? { ...change } : { ...change, record: copyRecord(change.record) };
      queueMicrotask(() => {
        // Closed since the write: deliver nothing more.
        if (!this.#watchers.has(watcher)) return;
        try {
          watcher(copy);
        } catch {
          // The listener's own bug; the store and the other listeners go on.
        }
      });
    }
  }

  async putState(key: string, state: StoredState, options: PutStateOptions): Promise<void> {
    input.assertState(key, state, options?.maxPerOwner, options?.maxTotal);
    const now = this.#now();
    if (this.#states.size >= this.#sweepAt) {
      for (const [k, s] of this.#states) if (s.expiresAt <= now) this.#dropState(k, s);
      this.#sweepAt = Math.max(1024, this.#states.size * 2);
    }
    const previous = this.#states.get(key);
    if (previous !== undefined) this.#dropState(key, previous);
    let keys = this.#statesByOwner.get(state.owner);
    if (keys === undefined) {
      keys = new Set();
      this.#statesByOwner.set(state.owner, keys);
    }
    for (const k of keys) {
      const s = this.#states.get(k) as StoredState;
      if (s.expiresAt <= now) this.#dropState(k, s);
    }
    const copy = structuredClone(state);
    this.#states.set(key, copy);
    keys.add(key);
    // Sets iterate in insertion order: the first keys are the oldest states.
    for (const k of keys) {
      if (keys.size <= options.maxPerOwner) break;
      this.#dropState(k, this.#states.get(k) as StoredState);
    }
    if (options.maxTotal !== undefined) {
      // The Map iterates in insertion order: oldest first. Expired ones go without counting.
      for (const [k, s] of this.#states) {
        if (this.#states.size <= options.maxTotal) break;
        this.#dropState(k, s);
      }
    }
  }

  async takeState(key: string): Promise<StoredState | null> {
    input.assertId(key, 'state key');
    const state = this.#states.get(key);
    if (state === undefined) return null;
    this.#dropState(key, state);
    return state.expiresAt > this.#now() ? state : null;
  }

  #dropState(key: string, state: StoredState): void {
    this.#states.delete(key);
    const keys = this.#statesByOwner.get(state.owner);
    keys?.delete(key);
    if (keys?.size === 0) this.#statesByOwner.delete(state.owner);
  }

  /** Counts, for tests and health checks. */
  get size(): {
    /** Stored accounts. */
    readonly accounts: number;
    /** Pending authorizations (states), expired ones included until swept. */
    readonly states: number;
    /** Refresh and watch leases, lapsed ones included until replaced or released. */
    readonly leases: number;
  } {
    return { accounts: this.#accounts.size, states: this.#states.size, leases: this.#leases.size };
  }
}

/**
 * An in-process store for accounts, refresh leases and pending authorizations: the embedded default for
 * a single process and for tests. Nothing survives a restart; share a PostgreSQL or Redis store between
 * processes.
 *
 * @example
 * ```ts
 * import { memoryStore, TokenPersistence, aesGcmCipher } from 'oauth-mailbox';
 * const store = memoryStore();
 * const persistence = new TokenPersistence({ store, cipher: aesGcmCipher({ keys: { k1: key }, current: 'k1' }) });
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore(options);
}
