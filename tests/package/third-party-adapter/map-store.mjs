// A third-party store adapter, as someone outside this repository writes one: a plain JavaScript Map store
// that uses only the package's public API (`storeInput` for the input checks, the error classes). The
// package check installs the packed tarball beside it and runs the exported conformance suite against it
// (conformance.test.mjs).
import { storeInput, VersionConflictError } from 'oauth-mailbox';

/** @returns {import('oauth-mailbox').AccountStore & import('oauth-mailbox').StateStore} */
export function mapStore({ now = Date.now } = {}) {
  const accounts = new Map(); // id -> record
  const identities = new Map(); // identity key -> id
  const leases = new Map(); // id -> { holder, expiresAt }
  const states = new Map(); // key -> state, oldest first
  const copy = (value) => structuredClone(value);

  return {
    async getAccount(id) {
      storeInput.assertId(id);
      const found = accounts.get(id);
      return found === undefined ? null : copy(found);
    },

    async findAccountByIdentity(identity) {
      storeInput.assertIdentity(identity);
      const id = identities.get(storeInput.identityKey(identity));
      return id === undefined ? null : copy(accounts.get(id));
    },

    async putAccount(record, options) {
      storeInput.assertAccount(record);
      const expectedVersion = options?.expectedVersion;
      storeInput.assertExpectedVersion(expectedVersion);
      const existing = accounts.get(record.id);
      const actualVersion = existing?.version ?? null;
      if (actualVersion !== expectedVersion) {
        throw new VersionConflictError('The stored version is not the expected one', {
          accountId: record.id,
          expectedVersion,
          actualVersion,
        });
      }
      const key = storeInput.identityKey(record);
      const holder = identities.get(key);
      if (holder !== undefined && holder !== record.id) {
        throw new VersionConflictError('Another account holds this provider, owner and email', {
          accountId: record.id,
          expectedVersion,
          actualVersion: null,
        });
      }
      const stored = {
        ...copy(record),
        createdAt: existing?.createdAt ?? record.createdAt,
        version: (expectedVersion ?? 0) + 1,
        updatedAt: now(),
      };
      if (existing !== undefined) identities.delete(storeInput.identityKey(existing));
      identities.set(key, stored.id);
      accounts.set(stored.id, stored);
      return copy(stored);
    },

    async deleteAccount(id, options = {}) {
      storeInput.assertId(id);
      const existing = accounts.get(id);
      const actualVersion = existing?.version ?? null;
      if (options.expectedVersion !== undefined && options.expectedVersion !== actualVersion) {
        throw new VersionConflictError('The account changed or no longer exists', {
          accountId: id,
          expectedVersion: options.expectedVersion,
          actualVersion,
        });
      }
      if (existing === undefined) return false;
      accounts.delete(id);
      identities.delete(storeInput.identityKey(existing));
      leases.delete(id);
      return true;
    },

    async listAccounts(filter, options) {
      const q = storeInput.normalizeList(filter, options);
      const ids = [...accounts.keys()].sort();
      let i = q.after === undefined ? 0 : ids.findIndex((id) => id > q.after);
      if (i === -1) i = ids.length;
      const records = [];
      let last;
      for (; i < ids.length && records.length < q.limit; i++) {
        last = ids[i];
        const record = accounts.get(last);
        if (storeInput.matchesFilter(record, q)) records.push(copy(record));
      }
      return {
        records,
        nextCursor: i < ids.length && last !== undefined ? storeInput.encodeCursor(last) : null,
      };
    },

    async acquireLease(id, holder, ttlMs) {
      storeInput.assertId(id);
      storeInput.assertId(holder, 'holder');
      storeInput.assertTtl(ttlMs);
      const current = leases.get(id);
      if (current !== undefined && current.expiresAt > now() && current.holder !== holder) return null;
      const lease = { holder, expiresAt: now() + ttlMs };
      leases.set(id, lease);
      return { ...lease };
    },

    async releaseLease(id, holder) {
      storeInput.assertId(id);
      storeInput.assertId(holder, 'holder');
      const current = leases.get(id);
      if (current === undefined || current.holder !== holder) return false;
      leases.delete(id);
      return current.expiresAt > now();
    },

    async putState(key, state, options) {
      storeInput.assertState(key, state, options?.maxPerOwner, options?.maxTotal);
      for (const [k, s] of states) if (s.expiresAt <= now()) states.delete(k);
      states.delete(key);
      states.set(key, copy(state));
      const own = [...states].filter(([, s]) => s.owner === state.owner).map(([k]) => k);
      for (const k of own.slice(0, Math.max(0, own.length - options.maxPerOwner))) states.delete(k);
      if (options.maxTotal !== undefined) {
        for (const k of [...states.keys()].slice(0, Math.max(0, states.size - options.maxTotal)))
          states.delete(k);
      }
    },

    async takeState(key) {
      storeInput.assertId(key, 'state key');
      const state = states.get(key);
      if (state === undefined) return null;
      states.delete(key);
      return state.expiresAt > now() ? state : null;
    },
  };
}
