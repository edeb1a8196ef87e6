import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, memoryStore, storeInput } from '../../src/index.js';
import * as validate from '../../src/store/validate.js';
import { sampleAccountRecord } from '../../src/testing/index.js';

describe('storeInput (the validation helper for store adapters)', () => {
  it('is the validation the built-in stores run: the same functions, frozen', () => {
    expect(Object.isFrozen(storeInput)).toBe(true);
    expect(storeInput.assertAccount).toBe(validate.assertAccountInput);
    expect(storeInput.assertExpectedVersion).toBe(validate.assertExpectedVersion);
    expect(storeInput.assertId).toBe(validate.assertId);
    expect(storeInput.assertIdentity).toBe(validate.assertIdentity);
    expect(storeInput.assertTtl).toBe(validate.assertTtl);
    expect(storeInput.assertState).toBe(validate.assertStateInput);
    expect(storeInput.normalizeList).toBe(validate.normalizeList);
    expect(storeInput.matchesFilter).toBe(validate.matchesFilter);
    expect(storeInput.encodeCursor).toBe(validate.encodeCursor);
    expect(storeInput.decodeCursor).toBe(validate.decodeCursor);
    expect(storeInput.identityKey).toBe(validate.identityKey);
    expect(storeInput.maxPageSize).toBe(validate.MAX_PAGE_SIZE);
    expect(storeInput.defaultPageSize).toBe(validate.DEFAULT_PAGE_SIZE);
  });

  it('refuses what the built-in stores refuse, and narrows the input', async () => {
    const input: unknown = sampleAccountRecord({ owner: 'owner\u0000' });
    expect(() => storeInput.assertAccount(input)).toThrow(InvalidArgumentError);
    await expect(memoryStore().putAccount(input as never, { expectedVersion: null })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    const ok: unknown = sampleAccountRecord();
    storeInput.assertAccount(ok);
    expect(ok.secret).toMatch(/^om1\./); // typed after the assertion
    const q = storeInput.normalizeList({ status: 'active' }, { cursor: storeInput.encodeCursor('acc-1') });
    expect(q).toMatchObject({ statuses: ['active'], after: 'acc-1', limit: storeInput.defaultPageSize });
    expect(() => storeInput.decodeCursor('nope')).toThrow(InvalidArgumentError);
    expect(storeInput.identityKey({ provider: 'g', owner: 'o', email: 'A@B.com' })).toBe(
      storeInput.identityKey({ provider: 'g', owner: 'o', email: 'a@b.com' }),
    );
  });
});
