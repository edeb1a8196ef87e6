/**
 * The shared conformance suite of the AccountStore and StateStore contracts. Every adapter runs it against
 * its real engine: `describeStoreConformance('memory', async () => ({ store: memoryStore() }))`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  type AccountRecord,
  type AccountStore,
  InvalidArgumentError,
  iterateAccounts,
  type StateStore,
  type StoredState,
  VersionConflictError,
} from '../../src/index.js';

export interface ConformanceTarget {
  readonly store: AccountStore & StateStore;
  /** Called after each test. */
  readonly cleanup?: () => Promise<void>;
}

export type NewRecord = Omit<AccountRecord, 'version' | 'updatedAt'>;

let seq = 0;
export function newRecord(overrides: Partial<NewRecord> = {}): NewRecord {
  seq += 1;
  const n = String(seq).padStart(5, '0');
  return {
    id: `acc-${n}`,
    provider: 'google',
    owner: 'owner-1',
    email: `user${n}@example.com`,
    scopes: ['openid', 'email', 'https://mail.google.com/'],
    status: 'active',
    tokenExpiresAt: 1_900_000_000_000,
    createdAt: 1_800_000_000_000,
    lastRefreshedAt: null,
    lastError: null,
    consecutiveFailures: 0,
    metadata: {},
    secret: `om1.k1.${n}.sealed.tag`,
    ...overrides,
  };
}

function stripVolatile(r: AccountRecord): Omit<AccountRecord, 'version' | 'updatedAt'> {
  const { version: _v, updatedAt: _u, ...rest } = r;
  return rest;
}

export function describeStoreConformance(name: string, factory: () => Promise<ConformanceTarget>): void {
  async function withStore(fn: (store: AccountStore & StateStore) => Promise<void>): Promise<void> {
    const target = await factory();
    try {
      await fn(target.store);
    } finally {
      await target.cleanup?.();
    }
  }

  describe(`AccountStore conformance: ${name}`, () => {
    it('returns null for an unknown id', () =>
      withStore(async (store) => {
        expect(await store.getAccount('no-such-account')).toBeNull();
        expect(
          await store.findAccountByIdentity({ provider: 'google', owner: 'o', email: 'x@example.com' }),
        ).toBeNull();
      }));

    it('creates with version 1 and reads back every field exactly', () =>
      withStore(async (store) => {
        const input = newRecord({
          email: 'Ünïcode.User@Example.com',
          scopes: ['a', 'b c'],
          status: 'error',
          tokenExpiresAt: null,
          lastRefreshedAt: 1_800_000_000_123,
          lastError: {
            code: 'ERR_TOKEN_REFRESH_FAILED',
            message: 'HTTP 503 from the token endpoint',
            at: 1_800_000_000_456,
          },
          consecutiveFailures: 3,
          metadata: { plan: 'pro', nested: { list: [1, 'two', null, true] }, emoji: '📬' },
        });
        const before = Date.now();
        const stored = await store.putAccount(input, { expectedVersion: null });
        expect(stored.version).toBe(1);
        expect(stored.updatedAt).toBeGreaterThanOrEqual(before - 1000);
        expect(stripVolatile(stored)).toEqual(input);
        const read = await store.getAccount(input.id);
        expect(read).toEqual(stored);
      }));

    it('refuses to create over an existing id', () =>
      withStore(async (store) => {
        const r = newRecord();
        await store.putAccount(r, { expectedVersion: null });
        const err = await store
          .putAccount({ ...r, email: 'other@example.com' }, { expectedVersion: null })
          .catch((e) => e);
        expect(err).toBeInstanceOf(VersionConflictError);
        expect(err.actualVersion).toBe(1);
        expect((await store.getAccount(r.id))?.email).toBe(r.email);
      }));

    it('keeps one account per (provider, owner, email), email compared case-insensitively', () =>
      withStore(async (store) => {
        const r = newRecord({ email: 'Ada@Example.com' });
        await store.putAccount(r, { expectedVersion: null });
        const dup = newRecord({ email: 'ada@example.COM' });
        await expect(store.putAccount(dup, { expectedVersion: null })).rejects.toBeInstanceOf(
          VersionConflictError,
        );
        expect(await store.getAccount(dup.id)).toBeNull();
        // Other owner or provider: a different identity.
        await store.putAccount(newRecord({ email: 'ada@example.com', owner: 'owner-2' }), {
          expectedVersion: null,
        });
        await store.putAccount(newRecord({ email: 'ada@example.com', provider: 'microsoft' }), {
          expectedVersion: null,
        });
        const found = await store.findAccountByIdentity({
          provider: 'google',
          owner: 'owner-1',
          email: 'ADA@example.com',
        });
        expect(found?.id).toBe(r.id);
      }));

    it('updates only at the expected version and never overwrites silently', () =>
      withStore(async (store) => {
        const r = newRecord();
        const v1 = await store.putAccount(r, { expectedVersion: null });
        const v2 = await store.putAccount(
          { ...stripVolatile(v1), status: 'reauth_required' },
          { expectedVersion: 1 },
        );
        expect(v2.version).toBe(2);
        expect(v2.status).toBe('reauth_required');
        const stale = await store
          .putAccount({ ...stripVolatile(v1), secret: 'stale-secret' }, { expectedVersion: 1 })
          .catch((e) => e);
        expect(stale).toBeInstanceOf(VersionConflictError);
        expect(stale.expectedVersion).toBe(1);
        expect(stale.actualVersion).toBe(2);
        expect(await store.getAccount(r.id)).toEqual(v2);
      }));

    it('keeps createdAt on update', () =>
      withStore(async (store) => {
        const v1 = await store.putAccount(newRecord({ createdAt: 1_700_000_000_000 }), {
          expectedVersion: null,
        });
        const v2 = await store.putAccount({ ...stripVolatile(v1), createdAt: 5 }, { expectedVersion: 1 });
        expect(v2.createdAt).toBe(1_700_000_000_000);
      }));

    it('refuses to update a record that does not exist', () =>
      withStore(async (store) => {
        const err = await store.putAccount(newRecord(), { expectedVersion: 1 }).catch((e) => e);
        expect(err).toBeInstanceOf(VersionConflictError);
        expect(err.actualVersion).toBeNull();
      }));

    it('lets exactly one of many concurrent writers at the same version win', () =>
      withStore(async (store) => {
        const v1 = await store.putAccount(newRecord(), { expectedVersion: null });
        const results = await Promise.allSettled(
          Array.from({ length: 12 }, (_, i) =>
            store.putAccount({ ...stripVolatile(v1), secret: `writer-${i}` }, { expectedVersion: 1 }),
          ),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(VersionConflictError);
        }
        const final = await store.getAccount(v1.id);
        expect(final?.version).toBe(2);
        expect(final?.secret).toBe((won[0] as PromiseFulfilledResult<AccountRecord>).value.secret);
      }));

    it('lets exactly one of many concurrent creators of the same id win', () =>
      withStore(async (store) => {
        const r = newRecord();
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            store.putAccount({ ...r, email: `racer${i}@example.com` }, { expectedVersion: null }),
          ),
        );
        expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
      }));

    it('returns copies: mutating a result changes nothing stored', () =>
      withStore(async (store) => {
        const stored = await store.putAccount(newRecord({ metadata: { a: { b: 1 } } }), {
          expectedVersion: null,
        });
        (stored.scopes as string[]).push('mutated');
        (stored.metadata as { a: { b: number } }).a.b = 2;
        const read = (await store.getAccount(stored.id)) as AccountRecord;
        expect(read.scopes).not.toContain('mutated');
        expect(read.metadata).toEqual({ a: { b: 1 } });
        (read.scopes as string[]).push('mutated-again');
        expect((await store.getAccount(stored.id))?.scopes).not.toContain('mutated-again');
      }));

    it('moves the identity with an email change', () =>
      withStore(async (store) => {
        const v1 = await store.putAccount(newRecord({ email: 'old@example.com' }), { expectedVersion: null });
        await store.putAccount({ ...stripVolatile(v1), email: 'new@example.com' }, { expectedVersion: 1 });
        expect(
          await store.findAccountByIdentity({
            provider: 'google',
            owner: 'owner-1',
            email: 'old@example.com',
          }),
        ).toBeNull();
        expect(
          (
            await store.findAccountByIdentity({
              provider: 'google',
              owner: 'owner-1',
              email: 'new@example.com',
            })
          )?.id,
        ).toBe(v1.id);
        await store.putAccount(newRecord({ email: 'old@example.com' }), { expectedVersion: null });
      }));

    it('deletes once, honours expectedVersion, and frees the identity', () =>
      withStore(async (store) => {
        const v1 = await store.putAccount(newRecord({ email: 'gone@example.com' }), {
          expectedVersion: null,
        });
        await expect(store.deleteAccount(v1.id, { expectedVersion: 7 })).rejects.toBeInstanceOf(
          VersionConflictError,
        );
        expect(await store.getAccount(v1.id)).not.toBeNull();
        expect(await store.deleteAccount(v1.id, { expectedVersion: 1 })).toBe(true);
        expect(await store.deleteAccount(v1.id)).toBe(false);
        await expect(store.deleteAccount(v1.id, { expectedVersion: 1 })).rejects.toBeInstanceOf(
          VersionConflictError,
        );
        expect(await store.getAccount(v1.id)).toBeNull();
        await store.putAccount(newRecord({ email: 'gone@example.com' }), { expectedVersion: null });
      }));

    it('rejects invalid records with InvalidArgumentError and stores nothing', () =>
      withStore(async (store) => {
        const bad: unknown[] = [
          null,
          { ...newRecord(), id: '' },
          { ...newRecord(), email: 42 },
          { ...newRecord(), status: 'bogus' },
          { ...newRecord(), scopes: 'openid' },
          { ...newRecord(), tokenExpiresAt: 'tomorrow' },
          { ...newRecord(), consecutiveFailures: -1 },
          { ...newRecord(), metadata: { n: 10n } },
          { ...newRecord(), metadata: [] },
          { ...newRecord(), lastError: { code: 'x' } },
          { ...newRecord(), secret: undefined },
        ];
        for (const record of bad) {
          await expect(
            store.putAccount(record as NewRecord, { expectedVersion: null }),
          ).rejects.toBeInstanceOf(InvalidArgumentError);
        }
        await expect(store.putAccount(newRecord(), { expectedVersion: 0 })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
        expect((await store.listAccounts()).records).toHaveLength(0);
      }));

    it('refuses control characters and lone surrogates with InvalidArgumentError, as every store does', () =>
      withStore(async (store) => {
        const bad: [string, Partial<NewRecord>][] = [
          ['NUL in id', { id: 'acc\u0000x' }],
          ['NUL in owner', { owner: 'owner\u0000' }],
          ['control in email', { email: 'a\u0001@example.com' }],
          ['DEL in provider', { provider: 'google\u007f' }],
          ['C1 control in owner', { owner: 'owner\u0085' }],
          ['lone high surrogate in owner', { owner: 'owner-\ud800' }],
          ['lone low surrogate in email', { email: '\udc00a@example.com' }],
          ['lone surrogate in id', { id: 'acc-\udbff' }],
          ['NUL in a metadata key', { metadata: { 'a\u0000': 1 } }],
          ['control in a nested metadata key', { metadata: { a: { 'b\n': 1 } } }],
          ['lone surrogate in a metadata key', { metadata: { '\ud800': 1 } }],
          ['NUL in a metadata value', { metadata: { note: 'x\u0000y' } }],
          ['lone surrogate in a metadata value', { metadata: { list: ['ok', '\udfff'] } }],
          ['NUL in a scope', { scopes: ['openid\u0000'] }],
        ];
        for (const [what, overrides] of bad) {
          const attempt = store.putAccount(newRecord(overrides), { expectedVersion: null });
          await expect(attempt, what).rejects.toBeInstanceOf(InvalidArgumentError);
        }
        expect((await store.listAccounts()).records).toHaveLength(0);
        const reads: [string, () => Promise<unknown>][] = [
          ['getAccount', () => store.getAccount('a\u0000')],
          ['deleteAccount', () => store.deleteAccount('a\ud800')],
          [
            'findAccountByIdentity',
            () =>
              store.findAccountByIdentity({ provider: 'google', owner: 'o\ud800', email: 'a@example.com' }),
          ],
          ['listAccounts', () => store.listAccounts({ owner: 'o\u0000' })],
          ['acquireLease', () => store.acquireLease('a\u0000', 'h', 1000)],
          [
            'putState',
            () =>
              store.putState(
                'k',
                { owner: 'o\ud800', provider: 'google', payload: 'p', createdAt: 1, expiresAt: 2 },
                { maxPerOwner: 5 },
              ),
          ],
          ['takeState', () => store.takeState('k\u0000')],
        ];
        for (const [what, call] of reads)
          await expect(call(), what).rejects.toBeInstanceOf(InvalidArgumentError);
        // Well-formed text is kept exactly: astral characters, and a newline inside a metadata value.
        const record = newRecord({ owner: 'owner-🙂', metadata: { note: 'line 1\nline 2', ключ: '值' } });
        await store.putAccount(record, { expectedVersion: null });
        const read = await store.getAccount(record.id);
        expect(read?.owner).toBe('owner-🙂');
        expect(read?.metadata).toEqual({ note: 'line 1\nline 2', ключ: '值' });
      }));

    it('lists with filters, ordered by id', () =>
      withStore(async (store) => {
        const base = 1_900_000_000_000;
        const a = await store.putAccount(
          newRecord({ provider: 'google', owner: 'o1', tokenExpiresAt: base + 10 }),
          { expectedVersion: null },
        );
        const b = await store.putAccount(
          newRecord({ provider: 'microsoft', owner: 'o1', tokenExpiresAt: base - 10 }),
          { expectedVersion: null },
        );
        const c = await store.putAccount(
          newRecord({ provider: 'google', owner: 'o2', status: 'reauth_required', tokenExpiresAt: null }),
          { expectedVersion: null },
        );
        const d = await store.putAccount(
          newRecord({ provider: 'google', owner: 'o2', status: 'error', tokenExpiresAt: base - 5 }),
          { expectedVersion: null },
        );
        const ids = async (filter: Parameters<AccountStore['listAccounts']>[0]) =>
          (await store.listAccounts(filter)).records.map((r) => r.id);
        expect(await ids({})).toEqual([a.id, b.id, c.id, d.id]);
        expect(await ids({ provider: 'google' })).toEqual([a.id, c.id, d.id]);
        expect(await ids({ owner: 'o2' })).toEqual([c.id, d.id]);
        expect(await ids({ status: 'active' })).toEqual([a.id, b.id]);
        expect(await ids({ status: ['reauth_required', 'error'] })).toEqual([c.id, d.id]);
        expect(await ids({ expiresBefore: base })).toEqual([b.id, d.id]);
        expect(await ids({ provider: 'google', owner: 'o2', status: 'error', expiresBefore: base })).toEqual([
          d.id,
        ]);
        expect(await ids({ provider: 'yahoo' })).toEqual([]);
      }));

    it('pages with an opaque cursor, visiting every record exactly once', () =>
      withStore(async (store) => {
        const created: string[] = [];
        for (let i = 0; i < 23; i++) {
          created.push(
            (await store.putAccount(newRecord({ owner: i % 2 ? 'odd' : 'even' }), { expectedVersion: null }))
              .id,
          );
        }
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await store.listAccounts({}, { cursor, limit: 5 });
          expect(page.records.length).toBeLessThanOrEqual(5);
          seen.push(...page.records.map((r) => r.id));
          cursor = page.nextCursor;
          pages++;
        } while (cursor !== null && pages < 100);
        expect(seen).toEqual([...created].sort());
        const evens: string[] = [];
        for await (const r of iterateAccounts(store, { owner: 'even' }, { pageSize: 4 })) evens.push(r.id);
        expect(evens).toEqual(created.filter((_, i) => i % 2 === 0).sort());
        // The last page says so.
        const all = await store.listAccounts({}, { limit: 1000 });
        expect(all.records).toHaveLength(23);
        expect(all.nextCursor).toBeNull();
      }));

    it('keeps paging correct when visited records are deleted mid-walk', () =>
      withStore(async (store) => {
        const ids: string[] = [];
        for (let i = 0; i < 10; i++)
          ids.push((await store.putAccount(newRecord(), { expectedVersion: null })).id);
        const first = await store.listAccounts({}, { limit: 4 });
        for (const r of first.records) await store.deleteAccount(r.id);
        const rest = await store.listAccounts({}, { cursor: first.nextCursor, limit: 100 });
        expect(rest.records.map((r) => r.id)).toEqual(ids.slice(4));
      }));

    it('rejects a bad page size or cursor', () =>
      withStore(async (store) => {
        for (const limit of [0, -1, 1001, 1.5]) {
          await expect(store.listAccounts({}, { limit })).rejects.toBeInstanceOf(InvalidArgumentError);
        }
        await expect(store.listAccounts({}, { cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
        await expect(store.listAccounts({ status: 'bogus' as 'active' })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
      }));

    it('grants a lease to one holder at a time until it lapses or is released', () =>
      withStore(async (store) => {
        const lease = await store.acquireLease('acc-lease', 'worker-a', 60_000);
        expect(lease?.holder).toBe('worker-a');
        expect(lease?.expiresAt).toBeGreaterThan(Date.now());
        expect(await store.acquireLease('acc-lease', 'worker-b', 60_000)).toBeNull();
        const extended = await store.acquireLease('acc-lease', 'worker-a', 120_000);
        expect(extended?.expiresAt).toBeGreaterThan(lease?.expiresAt ?? 0);
        expect(await store.releaseLease('acc-lease', 'worker-b')).toBe(false);
        expect(await store.acquireLease('acc-lease', 'worker-b', 60_000)).toBeNull();
        expect(await store.releaseLease('acc-lease', 'worker-a')).toBe(true);
        expect((await store.acquireLease('acc-lease', 'worker-b', 60_000))?.holder).toBe('worker-b');
        // Leases are per account.
        expect(await store.acquireLease('acc-other', 'worker-a', 60_000)).not.toBeNull();
      }));

    it('lets a lapsed lease be taken over', () =>
      withStore(async (store) => {
        expect(await store.acquireLease('acc-lapse', 'crashed-worker', 40)).not.toBeNull();
        await sleep(90);
        expect((await store.acquireLease('acc-lapse', 'worker-b', 60_000))?.holder).toBe('worker-b');
        expect(await store.releaseLease('acc-lapse', 'crashed-worker')).toBe(false);
      }));

    it('gives a contended lease to exactly one of many concurrent holders', () =>
      withStore(async (store) => {
        const results = await Promise.all(
          Array.from({ length: 16 }, (_, i) => store.acquireLease('acc-race', `worker-${i}`, 60_000)),
        );
        expect(results.filter((r) => r !== null)).toHaveLength(1);
      }));

    it('rejects a bad lease request', () =>
      withStore(async (store) => {
        await expect(store.acquireLease('acc', 'w', 0)).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(store.acquireLease('acc', '', 1000)).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(store.acquireLease('', 'w', 1000)).rejects.toBeInstanceOf(InvalidArgumentError);
      }));
  });

  describe(`StateStore conformance: ${name}`, () => {
    const state = (owner = 'owner-1', ttlMs = 600_000, payload = 'sealed-payload'): StoredState => {
      const now = Date.now();
      return { owner, provider: 'google', payload, createdAt: now, expiresAt: now + ttlMs };
    };

    it('returns a state once, then never again', () =>
      withStore(async (store) => {
        const s = state();
        await store.putState('state-1', s, { maxPerOwner: 5 });
        expect(await store.takeState('state-1')).toEqual(s);
        expect(await store.takeState('state-1')).toBeNull();
        expect(await store.takeState('never-stored')).toBeNull();
      }));

    it('keeps at most maxTotal states in all, whoever the owners, dropping the oldest; taken ones do not count', () =>
      withStore(async (store) => {
        // Five owners, one start each (each later than the one before), a global bound of 3.
        for (let i = 0; i < 5; i++)
          await store.putState(`g-${i}`, state(`owner-g${i}`, 600_000 + i), { maxPerOwner: 5, maxTotal: 3 });
        expect(await store.takeState('g-0')).toBeNull();
        expect(await store.takeState('g-1')).toBeNull();
        expect(await store.takeState('g-4')).not.toBeNull(); // taken: frees a place
        await store.putState('g-5', state('owner-g5', 600_010), { maxPerOwner: 5, maxTotal: 3 });
        for (const key of ['g-2', 'g-3', 'g-5']) expect(await store.takeState(key), key).not.toBeNull();
        await expect(store.putState('g-x', state(), { maxPerOwner: 5, maxTotal: 0 })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
        expect(await store.takeState('g-x')).toBeNull();
      }));

    it('gives a state to exactly one of many concurrent takers', () =>
      withStore(async (store) => {
        await store.putState('state-race', state(), { maxPerOwner: 5 });
        const results = await Promise.all(Array.from({ length: 20 }, () => store.takeState('state-race')));
        expect(results.filter((r) => r !== null)).toHaveLength(1);
      }));

    it('never returns an expired state', () =>
      withStore(async (store) => {
        await store.putState('state-exp', state('owner-1', 40), { maxPerOwner: 5 });
        await sleep(90);
        expect(await store.takeState('state-exp')).toBeNull();
      }));

    it('keeps at most maxPerOwner states per owner, dropping the oldest', () =>
      withStore(async (store) => {
        for (let i = 0; i < 6; i++) await store.putState(`s-${i}`, state('flooder'), { maxPerOwner: 3 });
        await store.putState('other', state('someone-else'), { maxPerOwner: 3 });
        const got = [];
        for (let i = 0; i < 6; i++) got.push((await store.takeState(`s-${i}`)) !== null);
        expect(got).toEqual([false, false, false, true, true, true]);
        expect(await store.takeState('other')).not.toBeNull();
      }));

    it('stays bounded under a flood of starts from one owner', () =>
      withStore(async (store) => {
        for (let i = 0; i < 2000; i++)
          await store.putState(`flood-${i}`, state('flooder'), { maxPerOwner: 5 });
        let alive = 0;
        for (let i = 0; i < 2000; i++) if ((await store.takeState(`flood-${i}`)) !== null) alive++;
        expect(alive).toBe(5);
      }));

    it('rejects invalid states', () =>
      withStore(async (store) => {
        await expect(store.putState('', state(), { maxPerOwner: 5 })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
        await expect(
          store.putState('k', { ...state(), owner: '' }, { maxPerOwner: 5 }),
        ).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(store.putState('k', state(), { maxPerOwner: 0 })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
        expect(await store.takeState('k')).toBeNull();
      }));
  });
}
