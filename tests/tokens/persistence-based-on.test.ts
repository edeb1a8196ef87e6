/** saveTokens({ basedOn }): the write starts from the record just read, and never from a stale one. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type AccountStore, memoryStore, TokenPersistence, VersionConflictError } from '../../src/index.js';
import { testCipher } from '../support/auth.js';

function counted() {
  const store = memoryStore();
  const reads = { getAccount: 0 };
  const wrapped = new Proxy(store, {
    get(target, name) {
      if (name === 'getAccount')
        return (id: string) => {
          reads.getAccount++;
          return target.getAccount(id);
        };
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as AccountStore;
  const persistence = new TokenPersistence({ store: wrapped, cipher: testCipher(randomBytes(32)) });
  return { store, persistence, reads };
}

async function connected(persistence: TokenPersistence) {
  const { account } = await persistence.connect({
    provider: 'google',
    owner: 'u1',
    email: 'ada@example.com',
    tokens: { accessToken: 'a1', refreshToken: 'r1', expiresAt: Date.now() + 60_000 },
  });
  return account.id;
}

describe('TokenPersistence.saveTokens({ basedOn })', () => {
  it('writes from the record load() returned, without reading it again', async () => {
    const { persistence, reads } = counted();
    const id = await connected(persistence);
    const { account } = await persistence.load(id);
    reads.getAccount = 0;
    await persistence.saveTokens(id, { accessToken: 'a2', refreshToken: 'r2' }, { basedOn: account });
    expect(reads.getAccount).toBe(0);
    await persistence.saveTokens(id, { accessToken: 'a3', refreshToken: 'r3' });
    expect(reads.getAccount).toBe(1); // without it: one read
    expect((await persistence.load(id)).tokens?.accessToken).toBe('a3');
  });

  it('reads afresh when the record changed since (another writer is never overwritten)', async () => {
    const { persistence, store } = counted();
    const id = await connected(persistence);
    const { account } = await persistence.load(id);
    // Another process reconnects the mailbox meanwhile, with new metadata.
    await persistence.connect({
      provider: 'google',
      owner: 'u1',
      email: 'ada@example.com',
      tokens: { accessToken: 'b1', refreshToken: 'rb' },
      metadata: { plan: 'pro' },
    });
    const saved = await persistence.saveTokens(
      id,
      { accessToken: 'a2', refreshToken: 'r2' },
      { basedOn: account },
    );
    expect(saved.account.metadata).toEqual({ plan: 'pro' });
    expect(saved.account.version).toBe((await store.getAccount(id))?.version ?? 0);
    // With expectedVersion the stale base is a conflict, as without basedOn.
    await expect(
      persistence.saveTokens(
        id,
        { accessToken: 'a3' },
        { basedOn: account, expectedVersion: account.version },
      ),
    ).rejects.toBeInstanceOf(VersionConflictError);
  });

  it('ignores an account it did not load, or of another id', async () => {
    const { persistence, reads } = counted();
    const id = await connected(persistence);
    const listed = (await persistence.listAccounts()).accounts[0];
    reads.getAccount = 0;
    await persistence.saveTokens(id, { accessToken: 'a2', refreshToken: 'r2' }, { basedOn: listed as never });
    expect(reads.getAccount).toBe(1);
    const other = await persistence.connect({
      provider: 'google',
      owner: 'u1',
      email: 'bob@example.com',
      tokens: { accessToken: 'x', refreshToken: 'y' },
    });
    const { account } = await persistence.load(other.account.id);
    reads.getAccount = 0;
    await persistence.saveTokens(id, { accessToken: 'a3', refreshToken: 'r3' }, { basedOn: account });
    expect(reads.getAccount).toBe(1);
    expect((await persistence.load(other.account.id)).tokens?.accessToken).toBe('x');
  });
});
