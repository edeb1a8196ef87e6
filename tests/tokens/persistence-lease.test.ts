/**
 * TokenPersistence.readAndLease, saveTokens({ releaseLease }) and watchAccounts: the refresher's calls, each
 * one store round trip where the store allows it, with the fallbacks for stores without the optional methods.
 */
import { describe, expect, it } from 'vitest';
import {
  type AccountChangeEvent,
  AccountNotFoundError,
  type AccountStore,
  InvalidArgumentError,
  memoryStore,
  StorageError,
} from '../../src/index.js';
import { ACCESS, connectInput, REFRESH, setup } from './helpers.js';

const OPTIONAL = ['readAndLease', 'putAccountAndRelease', 'watchAccounts'] as const;

/** The memory store behind a proxy that counts calls, can hide the optional methods and fail some calls. */
function counted(options: { hide?: readonly string[]; fail?: readonly string[]; now?: () => number } = {}) {
  const store = memoryStore(options.now ? { now: options.now } : {});
  const calls: string[] = [];
  const wrapped = new Proxy(store, {
    has: (target, name) => !options.hide?.includes(name as string) && Reflect.has(target, name),
    get(target, name) {
      if (options.hide?.includes(name as string)) return undefined;
      const value = Reflect.get(target, name, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(name));
        if (options.fail?.includes(name as string))
          return Promise.reject(new Error('engine down: r1 secret'));
        return value.apply(target, args);
      };
    },
  }) as AccountStore;
  const { persistence } = setup({ store: wrapped });
  return { store, persistence, calls };
}

const due = (ms = 0) => ({ dueBefore: Date.now() + ms });

describe('TokenPersistence.readAndLease', () => {
  it('reads and leases a due account in one store call; open() decrypts once and feeds basedOn', async () => {
    const { persistence, calls, store } = counted();
    const { account: connected } = await persistence.connect(connectInput());
    calls.length = 0;
    const read = await persistence.readAndLease(connected.id, 'w1', 60_000, due(7200_000));
    expect(calls).toEqual(['readAndLease']);
    expect(read.lease?.holder).toBe('w1');
    expect(read.busy).toBe(false);
    expect(read.account.id).toBe(connected.id);
    expect(JSON.stringify(read.account)).not.toContain(ACCESS);
    const opened = await read.open();
    expect(await read.open()).toBe(opened);
    expect(opened.tokens?.accessToken).toBe(ACCESS);
    calls.length = 0;
    const saved = await persistence.saveTokens(
      connected.id,
      { accessToken: 'new-access' },
      { basedOn: opened.account, releaseLease: 'w1' },
    );
    expect(calls).toEqual(['putAccountAndRelease']);
    expect(saved.released).toBe(true);
    expect(saved.tokens?.refreshToken).toBe(REFRESH);
    expect(store.size.leases).toBe(0);
  });

  it('takes no lease when the token is not due, and reports another holder as busy', async () => {
    const { persistence } = counted();
    const { account } = await persistence.connect(connectInput());
    const early = await persistence.readAndLease(account.id, 'w1', 60_000, due(0));
    expect(early).toMatchObject({ lease: null, busy: false });
    expect(
      (await persistence.readAndLease(account.id, 'w1', 60_000, { dueBefore: null })).lease,
    ).not.toBeNull();
    const other = await persistence.readAndLease(account.id, 'w2', 60_000, { dueBefore: null });
    expect(other).toMatchObject({ lease: null, busy: true });
  });

  it('throws AccountNotFoundError for a missing id, and refuses bad input before the store', async () => {
    const { persistence, calls } = counted();
    await expect(persistence.readAndLease('nope', 'w1', 60_000, due())).rejects.toBeInstanceOf(
      AccountNotFoundError,
    );
    calls.length = 0;
    for (const [id, holder, ttl, options] of [
      ['a', 'w', 0, due()],
      ['a', 'w', 1.5, due()],
      ['a', '', 1000, due()],
      ['a', 7, 1000, due()],
      ['', 'w', 1000, due()],
      ['a', 'w', 1000, { dueBefore: 'soon' }],
      ['a', 'w', 1000, undefined],
    ] as const) {
      await expect(
        persistence.readAndLease(id as string, holder as string, ttl, options as never),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(calls).toEqual([]);
  });

  it('falls back to getAccount then acquireLease (only when due) and a read under the lease on a store without readAndLease', async () => {
    const { persistence, calls } = counted({ hide: OPTIONAL });
    const { account } = await persistence.connect(connectInput());
    calls.length = 0;
    const read = await persistence.readAndLease(account.id, 'w1', 60_000, due(7200_000));
    expect(calls).toEqual(['getAccount', 'acquireLease', 'getAccount']);
    expect(read.lease?.holder).toBe('w1');
    calls.length = 0;
    expect(await persistence.readAndLease(account.id, 'w2', 60_000, due(7200_000))).toMatchObject({
      lease: null,
      busy: true,
    });
    calls.length = 0;
    expect((await persistence.readAndLease(account.id, 'w2', 60_000, due(0))).lease).toBeNull();
    expect(calls).toEqual(['getAccount']);
  });

  it('maps a store failure to StorageError (never "not found")', async () => {
    const { persistence } = counted({ fail: ['readAndLease'] });
    const err = await persistence.readAndLease('a', 'w', 1000, due()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ operation: 'readAndLease', accountId: 'a' });
  });
});

describe('TokenPersistence.saveTokens({ releaseLease })', () => {
  it('without putAccountAndRelease: putAccount then releaseLease', async () => {
    const { persistence, calls, store } = counted({ hide: OPTIONAL });
    const { account } = await persistence.connect(connectInput());
    await persistence.acquireLease(account.id, 'w1', 60_000);
    const { account: loaded } = await persistence.load(account.id);
    calls.length = 0;
    const saved = await persistence.saveTokens(
      account.id,
      { accessToken: 'x' },
      { basedOn: loaded, releaseLease: 'w1' },
    );
    expect(calls).toEqual(['putAccount', 'releaseLease']);
    expect(saved.released).toBe(true);
    expect(store.size.leases).toBe(0);
  });

  it('a failed separate release does not fail the save: released is false', async () => {
    const { persistence, store } = counted({ hide: OPTIONAL, fail: ['releaseLease'] });
    const { account } = await persistence.connect(connectInput());
    await store.acquireLease(account.id, 'w1', 60_000);
    const saved = await persistence.saveTokens(account.id, { accessToken: 'x' }, { releaseLease: 'w1' });
    expect(saved.released).toBe(false);
    expect(saved.tokens?.accessToken).toBe('x');
    expect((await store.getAccount(account.id))?.version).toBe(2);
  });

  it('keeps the lease when the write fails, and without releaseLease changes nothing', async () => {
    const { persistence, store } = counted();
    const { account } = await persistence.connect(connectInput());
    await store.acquireLease(account.id, 'w1', 60_000);
    await expect(
      persistence.saveTokens(account.id, { accessToken: 'x' }, { expectedVersion: 7, releaseLease: 'w1' }),
    ).rejects.toMatchObject({ code: 'ERR_VERSION_CONFLICT' });
    expect(store.size.leases).toBe(1);
    const saved = await persistence.saveTokens(account.id, { accessToken: 'y' });
    expect('released' in saved).toBe(false);
    expect(store.size.leases).toBe(1);
    await expect(
      persistence.saveTokens(account.id, { accessToken: 'x' }, { releaseLease: '' }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('TokenPersistence.watchAccounts', () => {
  it('reports changes with the account, open() decrypting the carried record for basedOn', async () => {
    const { persistence, calls } = counted();
    const { account } = await persistence.connect(connectInput());
    const seen: AccountChangeEvent[] = [];
    let wake: (change: AccountChangeEvent) => void = () => {};
    const watch = await persistence.watchAccounts((change) => {
      seen.push(change);
      wake(change);
    });
    expect(watch).not.toBeNull();
    const written = new Promise<AccountChangeEvent>((resolve) => {
      wake = resolve;
    });
    await persistence.saveTokens(account.id, { accessToken: 'ya29.FRESH-SECRET' });
    const change = await written;
    expect(change).toMatchObject({ kind: 'written', id: account.id, version: 2 });
    expect(JSON.stringify(change)).not.toContain('ya29.FRESH-SECRET');
    const opened = await change.open?.();
    expect(opened?.tokens?.accessToken).toBe('ya29.FRESH-SECRET');
    calls.length = 0;
    await persistence.saveTokens(account.id, { accessToken: 'next' }, { basedOn: opened?.account });
    expect(calls).toEqual(['putAccount']); // no re-read
    await watch?.close();
  });

  it('isolates a throwing listener, and is null on a store without watchAccounts', async () => {
    const { persistence } = counted();
    const { account } = await persistence.connect(connectInput());
    let calls = 0;
    const second = new Promise<void>((resolve) => {
      void persistence.watchAccounts(() => {
        calls++;
        if (calls === 2) resolve();
        throw new Error('host bug');
      });
    });
    await persistence.recordFailure(account.id, { code: 'E', message: 'm' });
    await persistence.recordFailure(account.id, { code: 'E', message: 'm' });
    await second;
    expect(calls).toBe(2);
    expect(await counted({ hide: OPTIONAL }).persistence.watchAccounts(() => {})).toBeNull();
    await expect(persistence.watchAccounts('x' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
