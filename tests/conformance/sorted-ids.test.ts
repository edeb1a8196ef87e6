import { describe, expect, it } from 'vitest';
import { SortedIds } from '../../src/store/sorted-ids.js';

/** A deterministic pseudo-random sequence (no flakiness, same run every time). */
function lcg(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe('SortedIds, the id order of the memory store', () => {
  it('agrees with a sorted array through thousands of inserts and deletes, across chunk splits', () => {
    const random = lcg(7);
    const ids = new SortedIds();
    const reference = new Set<string>();
    for (let step = 0; step < 6000; step++) {
      const id = `acc-${Math.floor(random() * 3000)
        .toString(36)
        .padStart(3, '0')}`;
      if (random() < 0.65) {
        expect(ids.add(id)).toBe(!reference.has(id));
        reference.add(id);
      } else {
        expect(ids.delete(id)).toBe(reference.has(id));
        reference.delete(id);
      }
    }
    const sorted = [...reference].sort();
    expect(sorted.length).toBeGreaterThan(1024); // several chunks
    expect(ids.size).toBe(sorted.length);
    expect([...ids.after(undefined)]).toEqual(sorted);
    for (const k of [0, 1, 511, 512, 513, sorted.length - 1]) {
      const from = sorted[k] as string;
      expect([...ids.after(from)]).toEqual(sorted.slice(k + 1));
    }
    // A cursor between two ids, or past the end.
    expect([...ids.after('acc-')]).toEqual(sorted);
    expect([...ids.after('zzz')]).toEqual([]);
  });

  it('empties completely', () => {
    const ids = new SortedIds();
    for (let i = 0; i < 2000; i++) ids.add(`id-${String(i).padStart(4, '0')}`);
    for (let i = 1999; i >= 0; i--) expect(ids.delete(`id-${String(i).padStart(4, '0')}`)).toBe(true);
    expect(ids.size).toBe(0);
    expect([...ids.after(undefined)]).toEqual([]);
    expect(ids.delete('id-0000')).toBe(false);
    expect(ids.add('b')).toBe(true);
    expect(ids.add('a')).toBe(true);
    expect([...ids.after(undefined)]).toEqual(['a', 'b']);
  });
});
