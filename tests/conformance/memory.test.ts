import { describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/index.js';
import { describeStoreConformance, sampleAccountRecord } from '../../src/testing/index.js';

describeStoreConformance('memory', async () => ({ store: memoryStore() }), { describe, it });

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
