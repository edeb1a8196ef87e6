import { describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/index.js';
import { describeStoreConformance, sampleAccountRecord } from '../../src/testing/index.js';

describeStoreConformance(
  'memory',
  async () => {
    // Real time (the state cases sleep), moved forward by the lease cases that would otherwise wait.
    let offset = 0;
    return {
      store: memoryStore({ now: () => Date.now() + offset }),
      advanceClock: (ms: number) => {
        offset += ms;
      },
    };
  },
  { describe, it },
);

describe('memoryStore specifics', () => {
  it('sweeps expired states so a flood across many owners stays bounded', async () => {
    let now = 1_000_000;
    const store = memoryStore({ now: () => now });
    for (let i = 0; i < 10_000; i++) {
      await store.putState(
        `k${i}`,
        { owner: `o${i}`, provider: 'p', payload: '', createdAt: now, expiresAt: now + 1000 },
        { maxPerOwner: 3 },
      );
      now += 10; // each state lapses 100 puts later
    }
    expect(store.size.states).toBeLessThan(2100);
  });

  it('drops the lease of a deleted account', async () => {
    const store = memoryStore();
    await store.putAccount(sampleAccountRecord({ id: 'leased' }), { expectedVersion: null });
    await store.acquireLease('leased', 'w', 60_000);
    expect(store.size.leases).toBe(1);
    expect(await store.deleteAccount('leased')).toBe(true);
    expect(store.size.leases).toBe(0);
  });
});

describe('memoryStore change feed', () => {
  it('implements the optional refresher methods (the conformance cases would be skipped otherwise)', () => {
    const store = memoryStore();
    for (const name of ['readAndLease', 'putAccountAndRelease', 'watchAccounts'] as const) {
      expect(typeof store[name], name).toBe('function');
    }
  });

  it('delivers asynchronously, to every watcher, each its own copy of the record', async () => {
    const store = memoryStore();
    const got: unknown[] = [];
    let done: () => void = () => {};
    const both = new Promise<void>((resolve) => {
      done = resolve;
    });
    const listener = (change: { record?: { metadata: object } }) => {
      got.push(change.record);
      (change.record?.metadata as Record<string, unknown>).touched = true;
      if (got.length === 2) done();
    };
    await store.watchAccounts(listener as never);
    await store.watchAccounts(listener as never);
    const writing = store.putAccount(sampleAccountRecord({ id: 'w' }), { expectedVersion: null });
    expect(got).toEqual([]); // not during the call: delivered in a microtask
    await writing;
    await both;
    expect(got[0]).not.toBe(got[1]);
    expect((await store.getAccount('w'))?.metadata).toEqual({});
  });
});
