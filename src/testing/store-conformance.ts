/**
 * The conformance suite of the {@link AccountStore} and {@link StateStore} contracts: every built-in store
 * runs it against its real engine, and so can a third-party adapter. Runner-neutral: the cases assert with
 * `node:assert` and are registered through the `describe` and `it` the caller passes (vitest, node:test,
 * jest, mocha), so the package never imports a test runner.
 * @module
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, VersionConflictError } from '../errors.js';
import type { AccountChange, AccountRecord, AccountStore, AccountWatch } from '../store/account-store.js';
import { iterateAccounts } from '../store/iterate.js';
import type { StateStore, StoredState } from '../store/state-store.js';
import { storeInput } from '../store/store-input.js';

/** A store under test. */
type Store = AccountStore & StateStore;
type NewRecord = Omit<AccountRecord, 'version' | 'updatedAt'>;

/**
 * What the factory given to {@link describeStoreConformance} returns for each test: a fresh, empty store
 * (its own schema, key prefix or database) and how to remove it afterwards.
 *
 * @example
 * ```ts
 * const target: ConformanceTarget = {
 *   store: redisStore({ client, prefix: `test:${crypto.randomUUID()}:` }),
 *   cleanup: async () => void (await dropKeys(prefix)),
 * };
 * ```
 */
export interface ConformanceTarget {
  /** An empty store implementing both contracts. */
  readonly store: AccountStore & StateStore;
  /** Called after each test, also when it failed. */
  readonly cleanup?: () => Promise<void>;
  /**
   * Another store object on the same data through a connection of its own (what another process sees), for
   * the `watchAccounts` cases: changes written through `store` must reach it. The suite closes its watches;
   * close the peer's connection in `cleanup`. Without it, the cases watch `store` itself.
   */
  readonly peer?: () => Promise<AccountStore>;
  /**
   * Move the clock the store was built with (its `now` option) forward by `ms`: the `readAndLease` case of a
   * lapsed lease uses it instead of sleeping, and is skipped without it (a store whose leases lapse by the
   * engine's own clock, such as Redis `PX`, has none).
   */
  readonly advanceClock?: (ms: number) => void;
}

/**
 * Thrown by a case of {@link storeConformanceCases} that does not apply to the store (it lacks an optional
 * method, or the target lacks what the case needs): {@link describeStoreConformance} reports the test as
 * skipped with `reason` (through the runner's `context.skip(reason)` when it has one, as vitest and
 * `node:test` do; else the test passes). A caller running the cases itself should treat it as a skip.
 *
 * @example
 * ```ts
 * try {
 *   await c.run(store);
 * } catch (err) {
 *   if (err instanceof StoreConformanceSkip) console.log(`skipped: ${err.reason}`);
 *   else throw err;
 * }
 * ```
 */
export class StoreConformanceSkip extends Error {
  /** Why the case does not apply. */
  readonly reason: string;
  constructor(reason: string) {
    super(`skipped: ${reason}`);
    this.name = 'StoreConformanceSkip';
    this.reason = reason;
  }
}

/**
 * The test-registration functions of the caller's runner: `describe` groups, `it` registers one async test.
 * vitest's, jest's, mocha's and `node:test`'s fit as they are.
 *
 * @example
 * ```ts
 * import { describe, it } from 'node:test'; // or from 'vitest'
 * const runner: ConformanceRunner = { describe, it };
 * ```
 */
export interface ConformanceRunner {
  /** Registers a group of tests; `fn` registers its tests synchronously. */
  readonly describe: (name: string, fn: () => void) => unknown;
  /** Registers one test; it fails when the promise `fn` returns rejects. */
  readonly it: (name: string, fn: () => Promise<void>) => unknown;
}

/**
 * One case of the suite, for a runner without `describe`, or to pick cases: `run` throws (an
 * `AssertionError` or the store's own error) when the store breaks the contract.
 *
 * @example
 * ```ts
 * for (const c of storeConformanceCases()) {
 *   const store = await createMyStore();
 *   await c.run(store); // throws if the store breaks the rule
 *   console.log(`${c.contract}: ${c.name} ok`);
 * }
 * ```
 */
export interface StoreConformanceCase {
  /** The contract the case checks. */
  readonly contract: 'AccountStore' | 'StateStore';
  /** What the case checks, in a sentence (the test's name). */
  readonly name: string;
  /**
   * Runs the case against an empty store (`target` gives what some cases need beyond it: the peer and the
   * clock). Throws {@link StoreConformanceSkip} when the case does not apply.
   */
  readonly run: (store: AccountStore & StateStore, target?: ConformanceTarget) => Promise<void>;
}

let seq = 0;

/**
 * A valid, new account record (what `putAccount` takes), with a fresh id and email each call: for a store's
 * own tests beside the conformance suite.
 *
 * @example
 * ```ts
 * import { sampleAccountRecord } from 'oauth-mailbox/testing';
 * const stored = await store.putAccount(sampleAccountRecord({ owner: 'user-7' }), { expectedVersion: null });
 * ```
 */
export function sampleAccountRecord(
  overrides: Partial<Omit<AccountRecord, 'version' | 'updatedAt'>> = {},
): Omit<AccountRecord, 'version' | 'updatedAt'> {
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

const newRecord = sampleAccountRecord;

function stripVolatile(r: AccountRecord): NewRecord {
  const { version: _v, updatedAt: _u, ...rest } = r;
  return rest;
}

// Assertions (node:assert, so that any runner reports them).

/** Plain data: own enumerable properties, `undefined` ones left out, prototypes ignored (as a deep equality). */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}

/** Deep equality of data. */
function equal(actual: unknown, expected: unknown, message?: string): void {
  assert.deepStrictEqual(plain(actual), plain(expected), message);
}

/** `Object.is` equality. */
function same(actual: unknown, expected: unknown, message?: string): void {
  assert.strictEqual(actual, expected, message);
}

function describeValue(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return value === null ? 'null' : typeof value;
}

function instanceOf<T>(
  value: unknown,
  type: abstract new (...args: never[]) => T,
  what?: string,
): asserts value is T {
  assert.ok(
    value instanceof type,
    `${what ? `${what}: ` : ''}expected ${type.name}, got ${describeValue(value)}`,
  );
}

/** Awaits `promise`, which must reject with an instance of `type`; returns the error. */
async function rejectsWith<T>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => T,
  what?: string,
): Promise<T> {
  let result: unknown;
  try {
    result = await promise;
  } catch (err) {
    instanceOf(err, type, what);
    return err;
  }
  assert.fail(
    `${what ? `${what}: ` : ''}expected a rejection with ${type.name}, got ${describeValue(result)}`,
  );
}

const accountCases: [string, (store: Store, target: ConformanceTarget) => Promise<void>][] = [
  [
    'returns null for an unknown id',
    async (store) => {
      same(await store.getAccount('no-such-account'), null);
      same(
        await store.findAccountByIdentity({ provider: 'google', owner: 'o', email: 'x@example.com' }),
        null,
      );
    },
  ],
  [
    'creates with version 1 and reads back every field exactly',
    async (store) => {
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
      same(stored.version, 1);
      assert.ok(stored.updatedAt >= before - 1000, `updatedAt ${stored.updatedAt} is before the write`);
      equal(stripVolatile(stored), input);
      const read = await store.getAccount(input.id);
      equal(read, stored);
    },
  ],
  [
    'refuses to create over an existing id',
    async (store) => {
      const r = newRecord();
      await store.putAccount(r, { expectedVersion: null });
      const err = await rejectsWith(
        store.putAccount({ ...r, email: 'other@example.com' }, { expectedVersion: null }),
        VersionConflictError,
      );
      same(err.actualVersion, 1);
      same((await store.getAccount(r.id))?.email, r.email);
    },
  ],
  [
    'keeps one account per (provider, owner, email), email compared case-insensitively',
    async (store) => {
      const r = newRecord({ email: 'Ada@Example.com' });
      await store.putAccount(r, { expectedVersion: null });
      const dup = newRecord({ email: 'ada@example.COM' });
      await rejectsWith(store.putAccount(dup, { expectedVersion: null }), VersionConflictError);
      same(await store.getAccount(dup.id), null);
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
      same(found?.id, r.id);
    },
  ],
  [
    'updates only at the expected version and never overwrites silently',
    async (store) => {
      const r = newRecord();
      const v1 = await store.putAccount(r, { expectedVersion: null });
      const v2 = await store.putAccount(
        { ...stripVolatile(v1), status: 'reauth_required' },
        { expectedVersion: 1 },
      );
      same(v2.version, 2);
      same(v2.status, 'reauth_required');
      const stale = await rejectsWith(
        store.putAccount({ ...stripVolatile(v1), secret: 'stale-secret' }, { expectedVersion: 1 }),
        VersionConflictError,
      );
      same(stale.expectedVersion, 1);
      same(stale.actualVersion, 2);
      equal(await store.getAccount(r.id), v2);
    },
  ],
  [
    'keeps createdAt on update',
    async (store) => {
      const v1 = await store.putAccount(newRecord({ createdAt: 1_700_000_000_000 }), {
        expectedVersion: null,
      });
      const v2 = await store.putAccount({ ...stripVolatile(v1), createdAt: 5 }, { expectedVersion: 1 });
      same(v2.createdAt, 1_700_000_000_000);
    },
  ],
  [
    'refuses to update a record that does not exist',
    async (store) => {
      const err = await rejectsWith(
        store.putAccount(newRecord(), { expectedVersion: 1 }),
        VersionConflictError,
      );
      same(err.actualVersion, null);
    },
  ],
  [
    'lets exactly one of many concurrent writers at the same version win',
    async (store) => {
      const v1 = await store.putAccount(newRecord(), { expectedVersion: null });
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          store.putAccount({ ...stripVolatile(v1), secret: `writer-${i}` }, { expectedVersion: 1 }),
        ),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      same(won.length, 1, 'writers that won');
      for (const r of results) {
        if (r.status === 'rejected') instanceOf(r.reason, VersionConflictError, 'a losing writer');
      }
      const final = await store.getAccount(v1.id);
      same(final?.version, 2);
      same(final?.secret, (won[0] as PromiseFulfilledResult<AccountRecord>).value.secret);
    },
  ],
  [
    'lets exactly one of many concurrent creators of the same id win',
    async (store) => {
      const r = newRecord();
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          store.putAccount({ ...r, email: `racer${i}@example.com` }, { expectedVersion: null }),
        ),
      );
      same(results.filter((x) => x.status === 'fulfilled').length, 1, 'creators that won');
    },
  ],
  [
    'returns copies: mutating a result changes nothing stored',
    async (store) => {
      const stored = await store.putAccount(newRecord({ metadata: { a: { b: 1 } } }), {
        expectedVersion: null,
      });
      (stored.scopes as string[]).push('mutated');
      (stored.metadata as { a: { b: number } }).a.b = 2;
      const read = (await store.getAccount(stored.id)) as AccountRecord;
      assert.ok(!read.scopes.includes('mutated'), 'a pushed scope was stored');
      equal(read.metadata, { a: { b: 1 } });
      (read.scopes as string[]).push('mutated-again');
      assert.ok(
        !(await store.getAccount(stored.id))?.scopes.includes('mutated-again'),
        'a scope pushed on a read was stored',
      );
    },
  ],
  [
    'moves the identity with an email change',
    async (store) => {
      const v1 = await store.putAccount(newRecord({ email: 'old@example.com' }), { expectedVersion: null });
      await store.putAccount({ ...stripVolatile(v1), email: 'new@example.com' }, { expectedVersion: 1 });
      same(
        await store.findAccountByIdentity({ provider: 'google', owner: 'owner-1', email: 'old@example.com' }),
        null,
      );
      same(
        (
          await store.findAccountByIdentity({
            provider: 'google',
            owner: 'owner-1',
            email: 'new@example.com',
          })
        )?.id,
        v1.id,
      );
      await store.putAccount(newRecord({ email: 'old@example.com' }), { expectedVersion: null });
    },
  ],
  [
    'deletes once, honours expectedVersion, and frees the identity',
    async (store) => {
      const v1 = await store.putAccount(newRecord({ email: 'gone@example.com' }), {
        expectedVersion: null,
      });
      await rejectsWith(store.deleteAccount(v1.id, { expectedVersion: 7 }), VersionConflictError);
      assert.notStrictEqual(await store.getAccount(v1.id), null);
      same(await store.deleteAccount(v1.id, { expectedVersion: 1 }), true);
      same(await store.deleteAccount(v1.id), false);
      await rejectsWith(store.deleteAccount(v1.id, { expectedVersion: 1 }), VersionConflictError);
      same(await store.getAccount(v1.id), null);
      await store.putAccount(newRecord({ email: 'gone@example.com' }), { expectedVersion: null });
    },
  ],
  [
    'rejects invalid records with InvalidArgumentError and stores nothing',
    async (store) => {
      const bad: [string, unknown][] = [
        ['null', null],
        ['empty id', { ...newRecord(), id: '' }],
        ['email a number', { ...newRecord(), email: 42 }],
        ['unknown status', { ...newRecord(), status: 'bogus' }],
        ['scopes a string', { ...newRecord(), scopes: 'openid' }],
        ['tokenExpiresAt a string', { ...newRecord(), tokenExpiresAt: 'tomorrow' }],
        ['negative consecutiveFailures', { ...newRecord(), consecutiveFailures: -1 }],
        ['a bigint in metadata', { ...newRecord(), metadata: { n: 10n } }],
        ['metadata an array', { ...newRecord(), metadata: [] }],
        ['lastError without message', { ...newRecord(), lastError: { code: 'x' } }],
        ['no secret', { ...newRecord(), secret: undefined }],
      ];
      for (const [what, record] of bad) {
        await rejectsWith(
          store.putAccount(record as NewRecord, { expectedVersion: null }),
          InvalidArgumentError,
          what,
        );
      }
      await rejectsWith(
        store.putAccount(newRecord(), { expectedVersion: 0 }),
        InvalidArgumentError,
        'expectedVersion 0',
      );
      same((await store.listAccounts()).records.length, 0, 'records stored');
    },
  ],
  [
    'refuses control characters and lone surrogates with InvalidArgumentError, as every store does',
    async (store) => {
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
        await rejectsWith(attempt, InvalidArgumentError, what);
      }
      same((await store.listAccounts()).records.length, 0, 'records stored');
      const reads: [string, () => Promise<unknown>][] = [
        ['getAccount', () => store.getAccount('a\u0000')],
        ['deleteAccount', () => store.deleteAccount('a\ud800')],
        [
          'findAccountByIdentity',
          () => store.findAccountByIdentity({ provider: 'google', owner: 'o\ud800', email: 'a@example.com' }),
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
      for (const [what, call] of reads) await rejectsWith(call(), InvalidArgumentError, what);
      // Well-formed text is kept exactly: astral characters, and a newline inside a metadata value.
      const record = newRecord({ owner: 'owner-🙂', metadata: { note: 'line 1\nline 2', ключ: '值' } });
      await store.putAccount(record, { expectedVersion: null });
      const read = await store.getAccount(record.id);
      same(read?.owner, 'owner-🙂');
      equal(read?.metadata, { note: 'line 1\nline 2', ключ: '值' });
    },
  ],
  [
    'lists with filters, ordered by id',
    async (store) => {
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
      equal(await ids({}), [a.id, b.id, c.id, d.id]);
      equal(await ids({ provider: 'google' }), [a.id, c.id, d.id]);
      equal(await ids({ owner: 'o2' }), [c.id, d.id]);
      equal(await ids({ status: 'active' }), [a.id, b.id]);
      equal(await ids({ status: ['reauth_required', 'error'] }), [c.id, d.id]);
      equal(await ids({ expiresBefore: base }), [b.id, d.id]);
      equal(await ids({ provider: 'google', owner: 'o2', status: 'error', expiresBefore: base }), [d.id]);
      equal(await ids({ provider: 'yahoo' }), []);
    },
  ],
  [
    'filters by metadata values (a tenant’s mailbox roles), across pages; a bad metadata filter is refused',
    async (store) => {
      const put = (owner: string, metadata: AccountRecord['metadata']) =>
        store.putAccount(newRecord({ owner, metadata }), { expectedVersion: null }).then((r) => r.id);
      const booking = [
        await put('t1', { role: 'booking', tier: 2, vip: true }),
        await put('t1', { role: 'booking', tier: 1, note: null }),
        await put('t1', { role: 'booking', tier: 2.0, vip: false }),
      ];
      const stopsale = await put('t1', { role: 'stopsale', tier: 2 });
      const other = await put('t2', { role: 'booking' });
      await put('t1', { roles: ['booking'] }); // an array holding the value is not the value
      await put('t1', {});
      const ids = async (filter: Parameters<AccountStore['listAccounts']>[0]) => {
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const page: Awaited<ReturnType<AccountStore['listAccounts']>> = await store.listAccounts(filter, {
            cursor,
            limit: 2,
          });
          seen.push(...page.records.map((r) => r.id));
          cursor = page.nextCursor;
        } while (cursor !== null);
        return seen;
      };
      const sorted = (list: string[]) => [...list].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      equal(await ids({ owner: 't1', metadata: { role: 'booking' } }), sorted(booking));
      equal(await ids({ metadata: { role: 'booking' } }), sorted([...booking, other]));
      equal(await ids({ metadata: { role: 'stopsale' } }), [stopsale]);
      equal(
        await ids({ metadata: { role: 'booking', tier: 2 } }),
        sorted([booking[0], booking[2]] as string[]),
      );
      equal(await ids({ metadata: { vip: true } }), [booking[0]]);
      equal(await ids({ metadata: { vip: false } }), [booking[2]]);
      equal(await ids({ metadata: { note: null } }), [booking[1]]); // a missing key is not null
      equal(await ids({ metadata: { role: 'Booking' } }), []);
      equal(await ids({ metadata: { tier: '2' } }), []); // a string is not a number
      equal(await ids({ metadata: {} }), (await ids({})) as string[]);
      for (const metadata of [
        'booking',
        null,
        ['role'],
        { role: { nested: true } },
        { role: ['booking'] },
        { tier: Number.NaN },
        { role: 'x'.repeat(1025) },
        Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i])),
      ]) {
        await rejectsWith(
          store.listAccounts({ metadata } as never),
          InvalidArgumentError,
          `metadata filter ${JSON.stringify(metadata)?.slice(0, 40)}`,
        );
      }
    },
  ],
  [
    'pages with an opaque cursor, visiting every record exactly once',
    async (store) => {
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
        assert.ok(page.records.length <= 5, `a page of limit 5 held ${page.records.length} records`);
        seen.push(...page.records.map((r) => r.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== null && pages < 100);
      equal(seen, [...created].sort());
      const evens: string[] = [];
      for await (const r of iterateAccounts(store, { owner: 'even' }, { pageSize: 4 })) evens.push(r.id);
      equal(evens, created.filter((_, i) => i % 2 === 0).sort());
      // The last page says so.
      const all = await store.listAccounts({}, { limit: 1000 });
      same(all.records.length, 23);
      same(all.nextCursor, null);
    },
  ],
  [
    'keeps paging correct when visited records are deleted mid-walk',
    async (store) => {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++)
        ids.push((await store.putAccount(newRecord(), { expectedVersion: null })).id);
      const first = await store.listAccounts({}, { limit: 4 });
      for (const r of first.records) await store.deleteAccount(r.id);
      const rest = await store.listAccounts({}, { cursor: first.nextCursor, limit: 100 });
      equal(
        rest.records.map((r) => r.id),
        ids.slice(4),
      );
    },
  ],
  [
    'walks the due active accounts by expiry in id order, page by page, following every update',
    async (store) => {
      const base = 1_900_000_000_000;
      const statuses = ['active', 'active', 'error', 'active', 'revoked', 'reauth_required'] as const;
      const created: AccountRecord[] = [];
      for (let i = 0; i < 40; i++) {
        created.push(
          await store.putAccount(
            newRecord({
              status: statuses[i % statuses.length],
              tokenExpiresAt: i % 7 === 0 ? null : base + ((i * 37) % 50) - 25,
            }),
            { expectedVersion: null },
          ),
        );
      }
      const walk = async (limit: number) => {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await store.listAccounts({ status: 'active', expiresBefore: base }, { cursor, limit });
          assert.ok(page.records.length <= limit, `a page of limit ${limit} held ${page.records.length}`);
          seen.push(...page.records.map((r) => r.id));
          cursor = page.nextCursor;
        } while (cursor !== null && ++pages < 100);
        return seen;
      };
      const expected = async () =>
        (await store.listAccounts({}, { limit: 1000 })).records
          .filter((r) => r.status === 'active' && r.tokenExpiresAt !== null && r.tokenExpiresAt < base)
          .map((r) => r.id);
      const due = await expected();
      assert.ok(due.length >= 5, 'the fixture has due accounts');
      for (const limit of [1, 3, 1000]) equal(await walk(limit), due, `pages of ${limit}`);
      // Updates move records in and out: a refreshed token, a status change, a deletion, a new due account.
      const [first, second, third] = due as [string, string, string];
      const refreshed = (await store.getAccount(first)) as AccountRecord;
      await store.putAccount(
        { ...refreshed, tokenExpiresAt: base + 3_600_000 },
        { expectedVersion: refreshed.version },
      );
      const failed = (await store.getAccount(second)) as AccountRecord;
      await store.putAccount({ ...failed, status: 'reauth_required' }, { expectedVersion: failed.version });
      await store.deleteAccount(third);
      const later = created.find(
        (r) => r.status === 'active' && r.tokenExpiresAt !== null && r.tokenExpiresAt >= base,
      );
      assert.ok(later !== undefined, 'the fixture has an active account not yet due');
      const current = (await store.getAccount(later.id)) as AccountRecord;
      await store.putAccount({ ...current, tokenExpiresAt: base - 1 }, { expectedVersion: current.version });
      const after = await expected();
      assert.ok(!after.includes(first) && !after.includes(second) && after.includes(later.id));
      equal(await walk(2), after);
      // A cursor from the middle resumes after its id.
      const page = await store.listAccounts({ status: 'active', expiresBefore: base }, { limit: 2 });
      const rest = await store.listAccounts(
        { status: 'active', expiresBefore: base },
        { cursor: page.nextCursor, limit: 1000 },
      );
      equal(
        [...page.records, ...rest.records].map((r) => r.id),
        after,
      );
    },
  ],
  [
    'counts accounts as the reference tally does, if it implements countAccounts',
    async (store) => {
      if (store.countAccounts === undefined) return; // optional: health() walks the accounts instead
      const now = 1_900_000_000_000;
      const query = { now, expiringBefore: now + 600_000, failedSince: now - 86_400_000 };
      const all = async () => (await store.listAccounts({}, { limit: 1000 })).records;
      equal(await store.countAccounts(query), storeInput.tallyAccounts([], query), 'an empty store');
      const statuses = ['active', 'active', 'error', 'reauth_required', 'active', 'revoked'] as const;
      for (let i = 0; i < 30; i++) {
        const failures = i % 4;
        await store.putAccount(
          newRecord({
            status: statuses[i % statuses.length],
            // expired, expiring, later, or unknown
            tokenExpiresAt:
              [now - 1, now, now + 1, now + 599_999, now + 600_000, null, now + 5_000_000][i % 7] ?? null,
            consecutiveFailures: failures,
            lastError:
              i % 5 === 0
                ? null
                : { code: 'ERR_TOKEN_REFRESH', message: 'failed', at: now - 86_400_000 + (i % 3) - 1 },
          }),
          { expectedVersion: null },
        );
      }
      const counted = await store.countAccounts(query);
      equal(counted, storeInput.tallyAccounts(await all(), query));
      same(counted.total, 30);
      assert.ok(
        counted.activeExpired > 0 &&
          counted.activeExpiring > 0 &&
          counted.failedSince > 0 &&
          counted.failing > 0,
      );
      // The figures follow updates and deletions.
      const records = await all();
      for (const r of records.slice(0, 10)) {
        await store.putAccount(
          { ...r, status: 'active', tokenExpiresAt: now + 1000, consecutiveFailures: 0, lastError: null },
          { expectedVersion: r.version },
        );
      }
      for (const r of records.slice(10, 14)) await store.deleteAccount(r.id);
      equal(await store.countAccounts(query), storeInput.tallyAccounts(await all(), query), 'after updates');
      for (const bad of [
        null,
        {},
        { now: -1, expiringBefore: 0, failedSince: 0 },
        { now: 10, expiringBefore: 5, failedSince: 0 },
        { now: 1.5, expiringBefore: 2, failedSince: 0 },
      ]) {
        await rejectsWith(store.countAccounts(bad as never), InvalidArgumentError, JSON.stringify(bad));
      }
    },
  ],
  [
    'rejects a bad page size or cursor',
    async (store) => {
      for (const limit of [0, -1, 1001, 1.5]) {
        await rejectsWith(store.listAccounts({}, { limit }), InvalidArgumentError, `limit ${limit}`);
      }
      await rejectsWith(store.listAccounts({}, { cursor: 'not-a-cursor' }), InvalidArgumentError, 'cursor');
      await rejectsWith(
        store.listAccounts({ status: 'bogus' as 'active' }),
        InvalidArgumentError,
        'unknown status',
      );
    },
  ],
  [
    'grants a lease to one holder at a time until it lapses or is released',
    async (store) => {
      const lease = await store.acquireLease('acc-lease', 'worker-a', 60_000);
      same(lease?.holder, 'worker-a');
      assert.ok((lease?.expiresAt ?? 0) > Date.now(), 'the lease expires in the future');
      same(await store.acquireLease('acc-lease', 'worker-b', 60_000), null);
      const extended = await store.acquireLease('acc-lease', 'worker-a', 120_000);
      assert.ok((extended?.expiresAt ?? 0) > (lease?.expiresAt ?? 0), 'the same holder extends its lease');
      same(await store.releaseLease('acc-lease', 'worker-b'), false);
      same(await store.acquireLease('acc-lease', 'worker-b', 60_000), null);
      same(await store.releaseLease('acc-lease', 'worker-a'), true);
      same((await store.acquireLease('acc-lease', 'worker-b', 60_000))?.holder, 'worker-b');
      // Leases are per account.
      assert.notStrictEqual(await store.acquireLease('acc-other', 'worker-a', 60_000), null);
    },
  ],
  [
    'lets a lapsed lease be taken over',
    async (store) => {
      assert.notStrictEqual(await store.acquireLease('acc-lapse', 'crashed-worker', 40), null);
      await sleep(90);
      same((await store.acquireLease('acc-lapse', 'worker-b', 60_000))?.holder, 'worker-b');
      same(await store.releaseLease('acc-lapse', 'crashed-worker'), false);
    },
  ],
  [
    'gives a contended lease to exactly one of many concurrent holders',
    async (store) => {
      const results = await Promise.all(
        Array.from({ length: 16 }, (_, i) => store.acquireLease('acc-race', `worker-${i}`, 60_000)),
      );
      same(results.filter((r) => r !== null).length, 1, 'holders granted the lease');
    },
  ],
  [
    'keeps leases apart whatever characters the ids and holders hold (quotes, backslashes, unicode)',
    async (store) => {
      const id = "acc-o'brien\\\\x-🙂";
      const holder = "worker' OR '1'='1";
      assert.ok(await store.acquireLease(id, 'owner-a', 60_000), 'the first holder gets the lease');
      same(await store.acquireLease(id, holder, 60_000), null, 'a crafted holder gets no lease');
      same(await store.releaseLease(id, holder), false, 'a crafted holder releases nothing');
      same(await store.releaseLease("acc-o'brien", 'owner-a'), false, 'a prefix of the id is another id');
      same(await store.releaseLease(id, 'owner-a'), true);
      assert.ok(await store.acquireLease(id, holder, 60_000), 'once released, anyone may take it');
      same(await store.releaseLease(id, holder), true);
    },
  ],
  [
    'rejects a bad lease request',
    async (store) => {
      await rejectsWith(store.acquireLease('acc', 'w', 0), InvalidArgumentError, 'ttlMs 0');
      await rejectsWith(store.acquireLease('acc', '', 1000), InvalidArgumentError, 'empty holder');
      await rejectsWith(store.acquireLease('', 'w', 1000), InvalidArgumentError, 'empty id');
    },
  ],
];

/** The store's optional method, or a skip naming it. */
function optional<
  K extends
    | 'readAndLease'
    | 'putAccountAndRelease'
    | 'watchAccounts'
    | 'getWatchCursor'
    | 'putWatchCursor'
    | 'addMailboxActivity'
    | 'getMailboxActivity',
>(store: AccountStore, name: K): NonNullable<AccountStore[K]> {
  const method = store[name];
  if (typeof method !== 'function') throw new StoreConformanceSkip(`the store has no ${name} (optional)`);
  return (method as (...args: never[]) => unknown).bind(store) as NonNullable<AccountStore[K]>;
}

/** A watch whose changes are awaited one by one (each `next()` is the next change not yet taken). */
async function watchQueue(store: AccountStore) {
  const watchAccounts = optional(store, 'watchAccounts');
  const queued: AccountChange[] = [];
  const waiting: ((change: AccountChange) => void)[] = [];
  const watch: AccountWatch = await watchAccounts((change) => {
    const waiter = waiting.shift();
    if (waiter) waiter(change);
    else queued.push(change);
  });
  return {
    watch,
    received: () => queued.length,
    next: (): Promise<AccountChange> => {
      const change = queued.shift();
      if (change !== undefined) return Promise.resolve(change);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

const optionalCases: [string, (store: Store, target: ConformanceTarget) => Promise<void>][] = [
  [
    'keeps watch positions per account and key, replaces them, and deletes them with the account',
    async (store) => {
      const getWatchCursor = optional(store, 'getWatchCursor');
      const putWatchCursor = optional(store, 'putWatchCursor');
      await store.putAccount(newRecord({ id: 'acc-cursor' }), { expectedVersion: null });
      await store.putAccount(newRecord({ id: 'acc-cursor-2' }), { expectedVersion: null });
      same(await getWatchCursor('acc-cursor', 'imap:INBOX'), null, 'nothing saved yet');
      same(await putWatchCursor('acc-cursor', 'imap:INBOX', '1700000000:41'), true);
      same(await putWatchCursor('acc-cursor', 'imap:Junk', '1700000000:7'), true);
      same(await putWatchCursor('acc-cursor-2', 'imap:INBOX', '99:3'), true);
      same(await getWatchCursor('acc-cursor', 'imap:INBOX'), '1700000000:41');
      same(await getWatchCursor('acc-cursor', 'imap:Junk'), '1700000000:7', 'each key has its own position');
      same(await getWatchCursor('acc-cursor-2', 'imap:INBOX'), '99:3', 'each account has its own');
      same(await putWatchCursor('acc-cursor', 'imap:INBOX', '1700000000:42'), true);
      same(await getWatchCursor('acc-cursor', 'imap:INBOX'), '1700000000:42', 'replaced');
      const long = `https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=${'x'.repeat(16_000)}`;
      same(await putWatchCursor('acc-cursor', 'graph:inbox', long.slice(0, 16_384)), true);
      same(await getWatchCursor('acc-cursor', 'graph:inbox'), long.slice(0, 16_384), 'a 16 KiB position');
      // An account update keeps its positions; its deletion removes them.
      const stored = (await store.getAccount('acc-cursor')) as AccountRecord;
      await store.putAccount(
        { ...stripVolatile(stored), status: 'error' },
        { expectedVersion: stored.version },
      );
      same(await getWatchCursor('acc-cursor', 'imap:INBOX'), '1700000000:42', 'kept over an update');
      same(await store.deleteAccount('acc-cursor'), true);
      same(await getWatchCursor('acc-cursor', 'imap:INBOX'), null, 'deleted with the account');
      same(await getWatchCursor('acc-cursor', 'imap:Junk'), null);
      same(await getWatchCursor('acc-cursor-2', 'imap:INBOX'), '99:3', "another account's are kept");
      await store.putAccount(newRecord({ id: 'acc-cursor' }), { expectedVersion: null });
      same(
        await getWatchCursor('acc-cursor', 'imap:INBOX'),
        null,
        'a new account of the same id starts clean',
      );
    },
  ],
  [
    'saves no watch position for a missing account, and refuses bad positions without storing anything',
    async (store) => {
      const getWatchCursor = optional(store, 'getWatchCursor');
      const putWatchCursor = optional(store, 'putWatchCursor');
      same(await putWatchCursor('acc-no-such', 'imap:INBOX', '1:1'), false, 'no account: not saved');
      same(await getWatchCursor('acc-no-such', 'imap:INBOX'), null);
      await store.putAccount(newRecord({ id: 'acc-cursor-bad' }), { expectedVersion: null });
      same(await putWatchCursor('acc-cursor-bad', 'imap:INBOX', '5:9'), true);
      for (const [cursor, why] of [
        ['', 'empty'],
        ['x'.repeat(16_385), 'over 16 KiB'],
        ['a\u0000b', 'a NUL'],
        [42, 'not a string'],
      ] as const) {
        await rejectsWith(
          putWatchCursor('acc-cursor-bad', 'imap:INBOX', cursor as never),
          InvalidArgumentError,
          why,
        );
      }
      await rejectsWith(putWatchCursor('acc-cursor-bad', '', '1:1'), InvalidArgumentError, 'empty key');
      await rejectsWith(putWatchCursor('', 'imap:INBOX', '1:1'), InvalidArgumentError, 'empty account id');
      await rejectsWith(
        getWatchCursor('acc-cursor-bad', 'k'.repeat(256)),
        InvalidArgumentError,
        'a long key',
      );
      same(await getWatchCursor('acc-cursor-bad', 'imap:INBOX'), '5:9', 'nothing changed');
    },
  ],
  [
    'adds mailbox activity per account and hour, keeps the latest success and error, and deletes it with the account',
    async (store) => {
      const add = optional(store, 'addMailboxActivity');
      const get = optional(store, 'getMailboxActivity');
      const H = 3_600_000;
      const h0 = 1_900_000_000_000 - (1_900_000_000_000 % H);
      const quiet = {
        processed: 0,
        failed: 0,
        errors: 0,
        handlerMs: 0,
        lastSuccessAt: null,
        lastError: null,
      };
      await store.putAccount(newRecord({ id: 'acc-act' }), { expectedVersion: null });
      await store.putAccount(newRecord({ id: 'acc-act-2' }), { expectedVersion: null });
      same((await get(['acc-act', 'acc-act-2'], h0)).length, 0, 'no activity yet');
      same(
        await add('acc-act', { ...quiet, hour: h0, processed: 3, handlerMs: 30, lastSuccessAt: h0 + 10 }),
        true,
      );
      // Two instances add to the same hour: the counts add up.
      same(
        await add('acc-act', {
          ...quiet,
          hour: h0,
          processed: 2,
          failed: 1,
          handlerMs: 12,
          lastSuccessAt: h0 + 5,
        }),
        true,
      );
      const boom = { code: 'ERR_MAIL_CONNECTION_FAILED', message: 'connection closed', at: h0 + H + 7 };
      same(
        await add('acc-act', {
          ...quiet,
          hour: h0 + H,
          processed: 1,
          errors: 2,
          handlerMs: 8,
          lastError: boom,
        }),
        true,
      );
      // An older error, written late (another instance's flush), does not replace the later one.
      const older = { code: 'ERR_STORAGE', message: 'older', at: h0 + 1 };
      same(await add('acc-act', { ...quiet, hour: h0, errors: 1, lastError: older }), true);
      same(await add('acc-act-2', { ...quiet, hour: h0, failed: 4 }), true);
      const both = await get(['acc-act', 'acc-act-2', 'acc-act-none'], h0);
      const byId = new Map(both.map((t) => [t.accountId, t]));
      same(both.length, 2, 'one entry per account with activity');
      equal(byId.get('acc-act'), {
        accountId: 'acc-act',
        processed: 6,
        failed: 1,
        errors: 3,
        handlerMs: 50,
        lastSuccessAt: h0 + 10,
        lastError: boom,
      });
      equal(byId.get('acc-act-2'), {
        accountId: 'acc-act-2',
        processed: 0,
        failed: 4,
        errors: 0,
        handlerMs: 0,
        lastSuccessAt: null,
        lastError: null,
      });
      const later = await get(['acc-act'], h0 + H);
      equal(
        later[0],
        {
          accountId: 'acc-act',
          processed: 1,
          failed: 0,
          errors: 2,
          handlerMs: 8,
          lastSuccessAt: h0 + 10,
          lastError: boom,
        },
        'the hours before sinceHour are not summed; the last success and error are',
      );
      // A day and more later: the old hours are dropped, the last success and error kept.
      same(
        await add('acc-act', { ...quiet, hour: h0 + 30 * H, processed: 1, lastSuccessAt: h0 + 30 * H }),
        true,
      );
      const dayLater = await get(['acc-act'], 0);
      same(dayLater[0]?.processed, 1, 'hours over 25 before the newest are dropped');
      same(dayLater[0]?.lastError?.code, boom.code);
      // An update keeps it; a deletion removes it; a new account of the same id starts clean.
      const stored = (await store.getAccount('acc-act')) as AccountRecord;
      await store.putAccount(
        { ...stripVolatile(stored), status: 'error' },
        { expectedVersion: stored.version },
      );
      same((await get(['acc-act'], 0)).length, 1, 'kept over an update');
      same(await store.deleteAccount('acc-act'), true);
      same((await get(['acc-act'], 0)).length, 0, 'deleted with the account');
      await store.putAccount(newRecord({ id: 'acc-act' }), { expectedVersion: null });
      same((await get(['acc-act'], 0)).length, 0, 'a new account of the same id starts clean');
      same((await get(['acc-act-2'], 0))[0]?.failed, 4, "another account's is kept");
    },
  ],
  [
    'writes no mailbox activity for a missing account, and refuses bad activity without storing anything',
    async (store) => {
      const add = optional(store, 'addMailboxActivity');
      const get = optional(store, 'getMailboxActivity');
      const hour = 1_899_997_200_000;
      const quiet = {
        hour,
        processed: 1,
        failed: 0,
        errors: 0,
        handlerMs: 0,
        lastSuccessAt: null,
        lastError: null,
      };
      same(await add('acc-act-missing', quiet), false, 'no account: not written');
      same((await get(['acc-act-missing'], 0)).length, 0);
      await store.putAccount(newRecord({ id: 'acc-act-bad' }), { expectedVersion: null });
      same(await add('acc-act-bad', quiet), true);
      for (const [activity, why] of [
        [{ ...quiet, hour: hour + 1 }, 'not the start of an hour'],
        [{ ...quiet, hour: -3_600_000 }, 'a negative hour'],
        [{ ...quiet, processed: -1 }, 'a negative count'],
        [{ ...quiet, failed: 1.5 }, 'a fraction'],
        [{ ...quiet, errors: '1' }, 'a string count'],
        [{ ...quiet, handlerMs: Number.NaN }, 'NaN'],
        [{ ...quiet, lastSuccessAt: 'now' }, 'a string time'],
        [{ ...quiet, lastError: { code: '', message: 'm', at: 1 } }, 'an empty error code'],
        [{ ...quiet, lastError: { code: 'E', message: 'm'.repeat(301), at: 1 } }, 'a long error message'],
        [{ ...quiet, lastError: { code: 'E', message: 'm' } }, 'an error without a time'],
        [null, 'not an object'],
      ] as const) {
        await rejectsWith(add('acc-act-bad', activity as never), InvalidArgumentError, why);
      }
      await rejectsWith(add('', quiet), InvalidArgumentError, 'an empty account id');
      await rejectsWith(get([], 0), InvalidArgumentError, 'no ids');
      await rejectsWith(get(['a', 'a'], 0), InvalidArgumentError, 'repeated ids');
      await rejectsWith(get(['acc-act-bad'], 5), InvalidArgumentError, 'not the start of an hour');
      await rejectsWith(
        get(
          Array.from({ length: 1001 }, (_, i) => `id-${i}`),
          0,
        ),
        InvalidArgumentError,
        'over 1000 ids',
      );
      same((await get(['acc-act-bad'], 0))[0]?.processed, 1, 'nothing changed');
    },
  ],
  [
    'readAndLease takes the lease only when the token is due, or whenever the record exists with dueBefore null',
    async (store) => {
      const readAndLease = optional(store, 'readAndLease');
      const stored = await store.putAccount(newRecord({ id: 'acc-due', tokenExpiresAt: 1_900_000_000_000 }), {
        expectedVersion: null,
      });
      const early = await readAndLease('acc-due', 'worker-a', 60_000, { dueBefore: 1_899_999_999_999 });
      equal(early.record, stored, 'the record is read whether or not the lease is taken');
      same(early.lease, null, 'not due: no lease');
      same(early.busy, false);
      assert.ok(await store.acquireLease('acc-due', 'worker-b', 60_000), 'no lease was taken when not due');
      same(await store.releaseLease('acc-due', 'worker-b'), true);
      const due = await readAndLease('acc-due', 'worker-a', 60_000, { dueBefore: 1_900_000_000_000 });
      equal(due.record, stored);
      same(due.lease?.holder, 'worker-a', 'due (expiry <= dueBefore): leased');
      same(due.busy, false);
      same(await store.releaseLease('acc-due', 'worker-a'), true, 'the lease taken is a real one');
      await store.putAccount(newRecord({ id: 'acc-unknown-expiry', tokenExpiresAt: null }), {
        expectedVersion: null,
      });
      same(
        (await readAndLease('acc-unknown-expiry', 'worker-a', 60_000, { dueBefore: Number.MAX_SAFE_INTEGER }))
          .lease,
        null,
        'an unknown expiry is never due',
      );
      same(
        (await readAndLease('acc-unknown-expiry', 'worker-a', 60_000, { dueBefore: null })).lease?.holder,
        'worker-a',
        'dueBefore null: a forced refresh leases',
      );
    },
  ],
  [
    "readAndLease reports another holder's unexpired lease as busy, and is re-entrant for the same holder",
    async (store) => {
      const readAndLease = optional(store, 'readAndLease');
      const stored = await store.putAccount(newRecord({ id: 'acc-busy' }), { expectedVersion: null });
      const first = await readAndLease('acc-busy', 'worker-a', 60_000, { dueBefore: null });
      same(first.lease?.holder, 'worker-a');
      assert.ok((first.lease?.expiresAt ?? 0) > Date.now() - 1000, 'the lease expires in the future');
      const other = await readAndLease('acc-busy', 'worker-b', 60_000, { dueBefore: null });
      equal(other.record, stored, 'a busy read still returns the record');
      same(other.lease, null);
      same(other.busy, true);
      const again = await readAndLease('acc-busy', 'worker-a', 120_000, { dueBefore: null });
      same(again.lease?.holder, 'worker-a', 'the same holder takes its own lease again');
      assert.ok((again.lease?.expiresAt ?? 0) > (first.lease?.expiresAt ?? 0), 'and extends it');
      same(again.busy, false);
      same(await store.acquireLease('acc-busy', 'worker-b', 60_000), null, 'the lease is exclusive');
    },
  ],
  [
    'readAndLease takes over a lease that lapsed',
    async (store, target) => {
      const readAndLease = optional(store, 'readAndLease');
      if (target.advanceClock === undefined) {
        throw new StoreConformanceSkip('the target has no advanceClock (the engine expires leases itself)');
      }
      await store.putAccount(newRecord({ id: 'acc-lapsed' }), { expectedVersion: null });
      same((await readAndLease('acc-lapsed', 'crashed', 1000, { dueBefore: null })).lease?.holder, 'crashed');
      same((await readAndLease('acc-lapsed', 'worker-b', 1000, { dueBefore: null })).busy, true);
      target.advanceClock(1001);
      const taken = await readAndLease('acc-lapsed', 'worker-b', 60_000, { dueBefore: null });
      same(taken.lease?.holder, 'worker-b', 'a lapsed lease is free');
      same(taken.busy, false);
    },
  ],
  [
    'readAndLease of a missing id returns record null and takes no lease',
    async (store) => {
      const readAndLease = optional(store, 'readAndLease');
      equal(await readAndLease('acc-missing', 'worker-a', 60_000, { dueBefore: null }), {
        record: null,
        lease: null,
        busy: false,
      });
      assert.ok(await store.acquireLease('acc-missing', 'worker-b', 60_000), 'no lease was taken');
      await rejectsWith(
        readAndLease('acc-missing', 'worker-a', 0, { dueBefore: null }),
        InvalidArgumentError,
        'ttlMs 0',
      );
      await rejectsWith(
        readAndLease('acc-missing', '', 1000, { dueBefore: null }),
        InvalidArgumentError,
        'empty holder',
      );
      await rejectsWith(
        readAndLease('acc-missing', 'w', 1000, { dueBefore: 'soon' as never }),
        InvalidArgumentError,
        'dueBefore not a number',
      );
    },
  ],
  [
    'putAccountAndRelease writes and releases the lease; a failed write keeps it (VersionConflictError)',
    async (store) => {
      const putAccountAndRelease = optional(store, 'putAccountAndRelease');
      const stored = await store.putAccount(newRecord({ id: 'acc-par' }), { expectedVersion: null });
      assert.ok(await store.acquireLease('acc-par', 'worker-a', 60_000));
      const written = await putAccountAndRelease(
        { ...stripVolatile(stored), status: 'error' },
        { expectedVersion: 1, holder: 'worker-a' },
      );
      same(written.version, 2);
      same(written.status, 'error');
      equal(await store.getAccount('acc-par'), written);
      assert.ok(await store.acquireLease('acc-par', 'worker-b', 60_000), 'the lease was released');
      await rejectsWith(
        putAccountAndRelease(stripVolatile(stored), { expectedVersion: 1, holder: 'worker-b' }),
        VersionConflictError,
        'stale version',
      );
      same(
        await store.acquireLease('acc-par', 'worker-c', 60_000),
        null,
        'the lease is kept after a conflict',
      );
      same((await store.getAccount('acc-par'))?.version, 2);
      // Another holder's lease is not released by the write.
      await putAccountAndRelease(stripVolatile(written), { expectedVersion: 2, holder: 'worker-c' });
      same(await store.acquireLease('acc-par', 'worker-c', 60_000), null, "worker-b's lease is kept");
      // The identity rule of putAccount holds too.
      await rejectsWith(
        putAccountAndRelease(
          newRecord({ id: 'acc-par-2', provider: stored.provider, owner: stored.owner, email: stored.email }),
          { expectedVersion: null, holder: 'worker-b' },
        ),
        VersionConflictError,
        'identity held by another account',
      );
    },
  ],
  [
    'watchAccounts: another store object sees written (with version and record), released and deleted, and nothing of a failed write',
    async (store, target) => {
      optional(store, 'watchAccounts');
      const peer = (await target.peer?.()) ?? store;
      const changes = await watchQueue(peer);
      try {
        const created = await store.putAccount(newRecord({ id: 'acc-watch' }), { expectedVersion: null });
        let change = await changes.next();
        same(change.kind, 'written');
        same(change.id, 'acc-watch');
        same(change.version, 1);
        equal(change.record, created, 'a written change carries the record as stored');
        await rejectsWith(
          store.putAccount(stripVolatile(created), { expectedVersion: 7 }),
          VersionConflictError,
          'stale write',
        );
        if (typeof store.putAccountAndRelease === 'function') {
          assert.ok(await store.acquireLease('acc-watch', 'worker-a', 60_000));
          const updated = await store.putAccountAndRelease(
            { ...stripVolatile(created), status: 'error' },
            { expectedVersion: 1, holder: 'worker-a' },
          );
          change = await changes.next();
          same(change.kind, 'written', 'the failed write reported nothing; putAccountAndRelease is a write');
          same(change.version, 2);
          equal(change.record, updated);
        }
        assert.ok(await store.acquireLease('acc-watch', 'worker-b', 60_000));
        same(await store.releaseLease('acc-watch', 'worker-b'), true);
        same(await store.releaseLease('acc-watch', 'worker-b'), false);
        change = await changes.next();
        same(change.kind, 'released', 'a release is reported (and nothing before it)');
        same(change.id, 'acc-watch');
        same(await store.deleteAccount('acc-watch'), true);
        same(await store.deleteAccount('acc-watch'), false);
        change = await changes.next();
        same(change.kind, 'deleted', 'a release that released nothing is not reported');
        same(change.id, 'acc-watch');
        await store.putAccount(newRecord({ id: 'acc-watch-end' }), { expectedVersion: null });
        change = await changes.next();
        same(change.id, 'acc-watch-end', 'a delete that deleted nothing is not reported');
      } finally {
        await changes.watch.close();
      }
    },
  ],
  [
    'watchAccounts: close() stops delivery (and is idempotent)',
    async (store, target) => {
      optional(store, 'watchAccounts');
      const peer = (await target.peer?.()) ?? store;
      const closed = await watchQueue(peer);
      const open = await watchQueue(peer);
      try {
        await closed.watch.close();
        await closed.watch.close();
        await store.putAccount(newRecord({ id: 'acc-closed' }), { expectedVersion: null });
        same((await open.next()).id, 'acc-closed');
        same(closed.received(), 0, 'a closed watch receives nothing');
      } finally {
        await open.watch.close();
      }
    },
  ],
];

const state = (owner = 'owner-1', ttlMs = 600_000, payload = 'sealed-payload'): StoredState => {
  const now = Date.now();
  return { owner, provider: 'google', payload, createdAt: now, expiresAt: now + ttlMs };
};

const stateCases: [string, (store: Store) => Promise<void>][] = [
  [
    'returns a state once, then never again',
    async (store) => {
      const s = state();
      await store.putState('state-1', s, { maxPerOwner: 5 });
      equal(await store.takeState('state-1'), s);
      same(await store.takeState('state-1'), null);
      same(await store.takeState('never-stored'), null);
    },
  ],
  [
    'keeps at most maxTotal states in all, whoever the owners, dropping the oldest; taken ones do not count',
    async (store) => {
      // Five owners, one start each (each later than the one before), a global bound of 3.
      for (let i = 0; i < 5; i++)
        await store.putState(`g-${i}`, state(`owner-g${i}`, 600_000 + i), { maxPerOwner: 5, maxTotal: 3 });
      same(await store.takeState('g-0'), null, 'g-0');
      same(await store.takeState('g-1'), null, 'g-1');
      assert.notStrictEqual(await store.takeState('g-4'), null, 'g-4'); // taken: frees a place
      await store.putState('g-5', state('owner-g5', 600_010), { maxPerOwner: 5, maxTotal: 3 });
      for (const key of ['g-2', 'g-3', 'g-5']) assert.notStrictEqual(await store.takeState(key), null, key);
      await rejectsWith(
        store.putState('g-x', state(), { maxPerOwner: 5, maxTotal: 0 }),
        InvalidArgumentError,
        'maxTotal 0',
      );
      same(await store.takeState('g-x'), null, 'g-x');
    },
  ],
  [
    'gives a state to exactly one of many concurrent takers',
    async (store) => {
      await store.putState('state-race', state(), { maxPerOwner: 5 });
      const results = await Promise.all(Array.from({ length: 20 }, () => store.takeState('state-race')));
      same(results.filter((r) => r !== null).length, 1, 'takers given the state');
    },
  ],
  [
    'never returns an expired state',
    async (store) => {
      await store.putState('state-exp', state('owner-1', 40), { maxPerOwner: 5 });
      await sleep(90);
      same(await store.takeState('state-exp'), null);
    },
  ],
  [
    'keeps at most maxPerOwner states per owner, dropping the oldest',
    async (store) => {
      for (let i = 0; i < 6; i++) await store.putState(`s-${i}`, state('flooder'), { maxPerOwner: 3 });
      await store.putState('other', state('someone-else'), { maxPerOwner: 3 });
      const got = [];
      for (let i = 0; i < 6; i++) got.push((await store.takeState(`s-${i}`)) !== null);
      equal(got, [false, false, false, true, true, true]);
      assert.notStrictEqual(await store.takeState('other'), null, 'another owner keeps its state');
    },
  ],
  [
    'stays bounded under a flood of starts from one owner',
    async (store) => {
      for (let i = 0; i < 2000; i++) await store.putState(`flood-${i}`, state('flooder'), { maxPerOwner: 5 });
      let alive = 0;
      for (let i = 0; i < 2000; i++) if ((await store.takeState(`flood-${i}`)) !== null) alive++;
      same(alive, 5, 'states left');
    },
  ],
  [
    'rejects invalid states',
    async (store) => {
      await rejectsWith(store.putState('', state(), { maxPerOwner: 5 }), InvalidArgumentError, 'empty key');
      await rejectsWith(
        store.putState('k', { ...state(), owner: '' }, { maxPerOwner: 5 }),
        InvalidArgumentError,
        'empty owner',
      );
      await rejectsWith(
        store.putState('k', state(), { maxPerOwner: 0 }),
        InvalidArgumentError,
        'maxPerOwner 0',
      );
      same(await store.takeState('k'), null);
    },
  ],
];

/**
 * Every case of the conformance suite, in order: the rules of `docs/storage.md` ("Rules every adapter
 * keeps"). {@link describeStoreConformance} registers them with a test runner.
 *
 * @example
 * ```ts
 * import { storeConformanceCases } from 'oauth-mailbox/testing';
 * for (const c of storeConformanceCases()) {
 *   test(`${c.contract}: ${c.name}`, async () => c.run(await freshStore()));
 * }
 * ```
 */
export function storeConformanceCases(): readonly StoreConformanceCase[] {
  return [
    ...[...accountCases, ...optionalCases].map(([name, run]) => ({
      contract: 'AccountStore' as const,
      name,
      run: (store: Store, target?: ConformanceTarget) => run(store, target ?? { store }),
    })),
    ...stateCases.map(([name, run]) => ({ contract: 'StateStore' as const, name, run })),
  ];
}

/**
 * Register the conformance suite of the store contracts with the caller's test runner: two groups,
 * `AccountStore conformance: <name>` and `StateStore conformance: <name>`, one test per case of
 * {@link storeConformanceCases}. `factory` is called for each test and must return an empty store; its
 * `cleanup` runs after the test. The cases assert with `node:assert`, so a failure is reported by any runner.
 *
 * @example
 * ```ts
 * // my-store.test.ts, with vitest (or `import { describe, it } from 'node:test'`)
 * import { describe, it } from 'vitest';
 * import { describeStoreConformance } from 'oauth-mailbox/testing';
 *
 * describeStoreConformance('my-engine', async () => {
 *   const store = await createMyStore({ prefix: `test-${crypto.randomUUID()}` });
 *   return { store, cleanup: () => store.dropAll() };
 * }, { describe, it });
 * ```
 */
export function describeStoreConformance(
  name: string,
  factory: () => Promise<ConformanceTarget>,
  runner: ConformanceRunner,
): void {
  if (typeof runner?.describe !== 'function' || typeof runner.it !== 'function') {
    throw new TypeError(
      "describeStoreConformance needs the test runner's functions: describeStoreConformance(name, factory, { describe, it })",
    );
  }
  const { describe, it } = runner;
  const cases = storeConformanceCases();
  for (const contract of ['AccountStore', 'StateStore'] as const) {
    describe(`${contract} conformance: ${name}`, () => {
      for (const c of cases) {
        if (c.contract !== contract) continue;
        it(c.name, async (context?: unknown) => {
          const target = await factory();
          let skipped: string | undefined;
          try {
            await c.run(target.store, target);
          } catch (err) {
            if (!(err instanceof StoreConformanceSkip)) throw err;
            skipped = err.reason;
          } finally {
            await target.cleanup?.();
          }
          // vitest's context.skip(note) and node:test's t.skip(message) report the reason.
          const skip = (context as { skip?: (reason: string) => void } | undefined)?.skip;
          if (skipped !== undefined && typeof skip === 'function') skip.call(context, skipped);
        });
      }
    });
  }
}
