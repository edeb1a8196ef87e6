/**
 * The operations over many accounts (src/operations/): refreshExpiring, health and accountHealth, rotateKeys.
 * (The multi-process tests are in tests/fleet/.)
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  accountHealth,
  aesGcmCipher,
  health,
  InvalidArgumentError,
  MAX_FLEET_CONCURRENCY,
  refreshExpiring,
  rotateKeys,
  TokenPersistence,
} from '../../src/index.js';
import { mswServer } from '../support/flow.js';
import { expiredAccount, saveValidFor } from '../support/refresh.js';

const server = mswServer();

describe('refreshExpiring', () => {
  it('refreshes what expires within the window, with bounded concurrency, and reports', async () => {
    const { fake, refresher, ids, persistence } = await expiredAccount(server, { accounts: 12 });
    // Two accounts are fine for a week; one needs reauthorization; one is of another owner.
    await saveValidFor(persistence, ids[0] as string, 'a', 30);
    await saveValidFor(persistence, ids[1] as string, 'b', 30);
    fake.revokeUser('user2@contoso.com');
    fake.failNext(...Array.from({ length: 10 }, () => ({ delayMs: 30 })));
    const r = refresher();
    const progress: number[] = [];
    const report = await refreshExpiring(r, persistence, {
      withinMs: 7 * 86_400_000,
      concurrency: 3,
      pageSize: 4,
      onProgress: (p) => progress.push(p.scanned),
    });
    expect(report).toMatchObject({
      scanned: 10,
      refreshed: 9,
      skipped: 0,
      failed: 1,
      failures: { ERR_REAUTHORIZATION_REQUIRED: 1 },
      dryRun: false,
    });
    expect(progress).toHaveLength(10);
    expect(fake.stats.refreshes).toBe(10);
    // Nothing left to do.
    const again = await refreshExpiring(r, persistence, { withinMs: 60_000 });
    expect(again.scanned).toBe(0);
  });

  it('never runs more refreshes at once than the concurrency', async () => {
    const { fake, refresher, persistence } = await expiredAccount(server, { accounts: 9 });
    fake.failNext(...Array.from({ length: 9 }, () => ({ delayMs: 40 })));
    const r = refresher();
    let running = 0;
    let peak = 0;
    const original = r.refreshIfDue.bind(r);
    r.refreshIfDue = async (id, options) => {
      running++;
      peak = Math.max(peak, running);
      try {
        return await original(id, options);
      } finally {
        running--;
      }
    };
    await refreshExpiring(r, persistence, { withinMs: 60_000, concurrency: 2 });
    expect(peak).toBe(2);
  });

  it('dry run changes nothing; filters by provider, owner and accounts', async () => {
    const { fake, refresher, ids, persistence } = await expiredAccount(server, { accounts: 3 });
    const dry = await refreshExpiring(refresher(), persistence, { withinMs: 60_000, dryRun: true });
    expect(dry).toMatchObject({ scanned: 3, refreshed: 3, dryRun: true });
    expect(fake.stats.tokenRequests).toBe(0);
    expect(
      (
        await refreshExpiring(refresher(), persistence, {
          withinMs: 60_000,
          provider: 'google',
          dryRun: true,
        })
      ).scanned,
    ).toBe(0);
    expect(
      (await refreshExpiring(refresher(), persistence, { withinMs: 60_000, owner: 'nobody', dryRun: true }))
        .scanned,
    ).toBe(0);
    const one = await refreshExpiring(refresher(), persistence, {
      withinMs: 60_000,
      accountIds: [ids[1] as string],
    });
    expect(one).toMatchObject({ scanned: 1, refreshed: 1 });
    expect(fake.stats.refreshes).toBe(1);
  });

  it('stops on abort and validates its options', async () => {
    const { refresher, persistence } = await expiredAccount(server, { accounts: 2 });
    const reason = new Error('stop');
    await expect(
      refreshExpiring(refresher(), persistence, { withinMs: 1, signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
    await expect(refreshExpiring(refresher(), persistence, { withinMs: -1 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(
      refreshExpiring(refresher(), persistence, { withinMs: 1, concurrency: 0 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('bounds its concurrency (a huge one used to stall the event loop or throw an untyped RangeError)', async () => {
    const { refresher, persistence, fake } = await expiredAccount(server, { accounts: 2 });
    const r = refresher();
    for (const concurrency of [MAX_FLEET_CONCURRENCY + 1, 40_000, 2 ** 32, 1.5, Number.NaN]) {
      const refused = await refreshExpiring(r, persistence, { withinMs: 60_000, concurrency }).catch(
        (e) => e,
      );
      expect(refused, String(concurrency)).toBeInstanceOf(InvalidArgumentError);
      expect((refused as Error).message).toBe(
        `concurrency must be an integer from 1 to ${MAX_FLEET_CONCURRENCY}`,
      );
    }
    for (const pageSize of [0, 1001]) {
      await expect(refreshExpiring(r, persistence, { withinMs: 60_000, pageSize })).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
    for (const accountIds of ['acc-1', [1], {}]) {
      await expect(
        refreshExpiring(r, persistence, { withinMs: 60_000, accountIds: accountIds as never }),
      ).rejects.toThrow(new InvalidArgumentError('accountIds must be an array of account ids'));
    }
    expect(fake.stats.tokenRequests).toBe(0); // nothing was started by a refused call
    const report = await refreshExpiring(r, persistence, {
      withinMs: 60_000,
      concurrency: MAX_FLEET_CONCURRENCY,
    });
    expect(report.refreshed).toBe(2);
  });
});

describe('health', () => {
  it('counts by status, expired and expiring access tokens, failing accounts and circuits', async () => {
    const { refresher, ids, persistence, store, cipher } = await expiredAccount(server, { accounts: 4 });
    await persistence.saveTokens(ids[0] as string, { accessToken: 'a', expiresAt: Date.now() + 300_000 });
    await saveValidFor(persistence, ids[1] as string, 'b', 30);
    await persistence.recordFailure(
      ids[2] as string,
      { code: 'ERR_REAUTHORIZATION_REQUIRED', message: 'x' },
      { status: 'reauth_required' },
    );
    const expected = {
      total: 4,
      byStatus: { active: 3, reauth_required: 1, error: 0, revoked: 0 },
      accessTokensExpired: 1, // ids[3]: refreshed on next use
      accessTokensExpiring: 1, // ids[0]: within the default 10 minutes
      failingAccounts: 1,
      recentlyFailedAccounts: 1,
      windows: { expiringWithinMs: 600_000, failuresWithinMs: 86_400_000 },
      healthy: false,
    };
    const report = await health(persistence, refresher());
    expect(report).toMatchObject({ ...expected, counted: 'store' });
    // A store without countAccounts is walked, to the same figures.
    const { countAccounts: _, ...rest } = Object.fromEntries(
      [
        'getAccount',
        'findAccountByIdentity',
        'putAccount',
        'deleteAccount',
        'listAccounts',
        'acquireLease',
        'releaseLease',
        'countAccounts',
      ].map((name) => [
        name,
        (store as unknown as Record<string, (...a: unknown[]) => unknown>)[name]?.bind(store),
      ]),
    );
    const walked = new TokenPersistence({ store: rest as never, cipher });
    expect(await health(walked, refresher())).toMatchObject({ ...expected, counted: 'walk' });
    // Windows are the caller's: a day of expiry counts ids[0] only, a 1 ms failure window none.
    expect(
      await health(persistence, undefined, {
        expiringWithinMs: 86_400_000,
        failuresWithinMs: 1,
        now: Date.now() + 10,
      }),
    ).toMatchObject({ accessTokensExpiring: 1, recentlyFailedAccounts: 0, circuits: {} });
    for (const bad of [{ expiringWithinMs: -1 }, { failuresWithinMs: 1.5 }, { now: -5 }]) {
      await expect(health(persistence, undefined, bad)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    const one = await accountHealth(persistence, ids[2] as string);
    expect(one).toMatchObject({ connected: false, status: 'reauth_required', consecutiveFailures: 1 });
    expect(one.lastError?.code).toBe('ERR_REAUTHORIZATION_REQUIRED');
    expect((await accountHealth(persistence, ids[1] as string)).connected).toBe(true);
  });
});

describe('rotateKeys', () => {
  it('re-encrypts every record with the current key, resumably', async () => {
    const { store, key, ids, persistence } = await expiredAccount(server, { accounts: 7 });
    const rotated = new TokenPersistence({
      store,
      cipher: aesGcmCipher({ keys: { k1: key, k2: randomBytes(32) }, current: 'k2' }),
    });
    const cursors: (string | null)[] = [];
    // First run stops after the first page (simulated crash via abort).
    const controller = new AbortController();
    await expect(
      rotateKeys(rotated, {
        batchSize: 3,
        signal: controller.signal,
        onProgress: (p) => {
          cursors.push(p.cursor);
          controller.abort(new Error('crash'));
        },
      }),
    ).rejects.toThrow('crash');
    const resumed = await rotateKeys(rotated, { batchSize: 3, cursor: cursors[0] ?? null });
    expect(resumed).toMatchObject({ scanned: 4, reencrypted: 4, failed: 0, cursor: null });
    const all = await rotateKeys(rotated, { batchSize: 3 });
    expect(all).toMatchObject({ scanned: 7, reencrypted: 0, failed: 0 });
    for (const id of ids) expect((await store.getAccount(id))?.secret.startsWith('om1.k2.')).toBe(true);
    expect((await rotated.load(ids[0] as string)).tokens?.accessToken).toBeTruthy();
    await expect(persistence.load(ids[0] as string)).rejects.toMatchObject({ reason: 'unknown_key' });
  });

  it('counts records it cannot decrypt and goes on', async () => {
    const { store, ids } = await expiredAccount(server, { accounts: 3 });
    const wrong = new TokenPersistence({
      store,
      cipher: aesGcmCipher({ keys: { k9: randomBytes(32) }, current: 'k9' }),
    });
    const report = await rotateKeys(wrong);
    expect(report).toMatchObject({
      scanned: ids.length,
      reencrypted: 0,
      failed: 3,
      failures: { ERR_CRYPTO: 3 },
    });
  });
});
