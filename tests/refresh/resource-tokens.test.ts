/**
 * Per-resource access tokens (Microsoft: one access token per resource). The Graph token and the IMAP/SMTP
 * one come from the same rotating refresh token: refreshes of one account run one at a time, every rotation
 * is stored before use, and the resource token is stored (encrypted) beside the primary one.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  MICROSOFT_GRAPH_SCOPES,
  TokenRefresher,
  type TokenRefresherEvents,
  TokenSet,
} from '../../src/index.js';
import { mswServer } from '../support/flow.js';
import { gmailSetup, graphSetup } from '../support/mail-api.js';

const server = mswServer();
const GRAPH = [...MICROSOFT_GRAPH_SCOPES, 'offline_access'];

async function expireBoth(auth: Awaited<ReturnType<typeof graphSetup>>['auth'], id: string) {
  const { tokens } = await auth.persistence.load(id);
  await auth.persistence.saveTokens(id, {
    accessToken: 'expired-outlook',
    expiresAt: Date.now() - 1000,
    resources:
      tokens?.resource('graph') === undefined
        ? {}
        : { graph: { accessToken: 'expired-graph', expiresAt: Date.now() - 1000, scopes: GRAPH } },
  });
  auth.refresher.invalidate(id);
}

describe('per-resource access tokens', () => {
  it('concurrent callers of both resources on expired tokens: one refresh each, serialized, every rotation stored', async () => {
    const { auth, accountId, microsoft: ms } = await graphSetup(server);
    await auth.getAccessToken(accountId, { resource: 'graph' });
    await expireBoth(auth, accountId);
    ms.stats.refreshes = 0;
    const events: TokenRefresherEvents['refreshed'][] = [];
    auth.on('refreshed', (e) => events.push(e));
    const calls = Array.from({ length: 100 }, (_, i) =>
      auth.getAccessToken(accountId, i % 2 === 0 ? {} : { resource: 'graph' }),
    );
    const tokens = await Promise.all(calls);
    expect(ms.stats.refreshes).toBe(2); // rotating tokens: a second concurrent use would be invalid_grant
    const outlook = new Set(tokens.filter((t) => t.resource === undefined).map((t) => t.accessToken));
    const graph = new Set(tokens.filter((t) => t.resource === 'graph').map((t) => t.accessToken));
    expect([outlook.size, graph.size]).toEqual([1, 1]);
    expect(ms.accessTokenInfo([...graph][0] as string)?.scopes).toEqual(GRAPH);
    expect(ms.accessTokenInfo([...outlook][0] as string)?.scopes[0]).toBe(
      'https://outlook.office.com/IMAP.AccessAsUser.All',
    );
    const stored = (await auth.persistence.load(accountId)).tokens as TokenSet;
    expect(ms.isRefreshTokenValid(stored.refreshToken as string)).toBe(true);
    expect(stored.accessToken).toBe([...outlook][0]);
    expect(stored.resource('graph')?.accessToken).toBe([...graph][0]);
    expect(events.map((e) => e.resource ?? 'primary').sort()).toEqual(['graph', 'primary']);
    expect(events.every((e) => e.rotated)).toBe(true);
  });

  it('the resource token survives a reload from the store (encrypted in the same record), and forceRefresh renews only it', async () => {
    const { auth, make, accountId, microsoft: ms, store } = await graphSetup(server);
    const graph = await auth.getAccessToken(accountId, { resource: 'graph' });
    const outlook = await auth.getAccessToken(accountId);
    const record = await store.getAccount(accountId);
    expect(record?.secret).not.toContain(graph.accessToken);
    const requests = ms.stats.tokenRequests;
    const other = make(); // another process on the same store
    expect((await other.getAccessToken(accountId, { resource: 'graph' })).accessToken).toBe(
      graph.accessToken,
    );
    expect((await other.getAccessToken(accountId)).accessToken).toBe(outlook.accessToken);
    expect(ms.stats.tokenRequests).toBe(requests);
    const renewed = await other.getAccessToken(accountId, { resource: 'graph', forceRefresh: true });
    expect(renewed.accessToken).not.toBe(graph.accessToken);
    expect((await other.getAccessToken(accountId)).accessToken).toBe(outlook.accessToken);
    const { tokens } = await auth.persistence.load(accountId);
    expect(tokens?.resource('graph')?.scopes).toEqual(GRAPH);
    expect(tokens?.resource('graph')?.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
    expect(ms.isRefreshTokenValid(tokens?.refreshToken as string)).toBe(true);
    // Redacted wherever it could be printed.
    for (const text of [
      JSON.stringify(tokens),
      inspect(tokens, { depth: 10, showHidden: true }),
      String(tokens),
    ]) {
      expect(text).not.toContain(renewed.accessToken);
    }
    expect(JSON.parse(JSON.stringify(tokens)).resources.graph).toMatchObject({ accessToken: '[redacted]' });
    expect(JSON.stringify(renewed)).toContain('"resource":"graph"');
    expect(JSON.stringify(renewed)).not.toContain(renewed.accessToken);
  });

  it('two processes refresh an expired resource token once (the account lease decides)', async () => {
    const { auth, accountId, microsoft: ms } = await graphSetup(server);
    await auth.getAccessToken(accountId, { resource: 'graph' });
    await expireBoth(auth, accountId);
    ms.stats.refreshes = 0;
    ms.failNext({ delayMs: 200 });
    const p1 = new TokenRefresher({ persistence: auth.persistence, registry: auth.registry, holderId: 'p1' });
    const p2 = new TokenRefresher({ persistence: auth.persistence, registry: auth.registry, holderId: 'p2' });
    const results = await Promise.all([
      ...Array.from({ length: 20 }, () => p1.getAccessToken(accountId, { resource: 'graph' })),
      ...Array.from({ length: 20 }, () => p2.getAccessToken(accountId, { resource: 'graph' })),
    ]);
    expect(ms.stats.refreshes).toBe(1);
    expect(new Set(results.map((t) => t.accessToken)).size).toBe(1);
  });

  it('a record written before resource tokens existed loads as before and gains the resource', async () => {
    const { auth, accountId, store, cipher, microsoft: ms } = await graphSetup(server);
    const { tokens } = await auth.persistence.load(accountId);
    const record = await store.getAccount(accountId);
    if (record === null || tokens === null) throw new Error('setup');
    // The exact blob format older versions wrote: no `rs`.
    const legacy = JSON.stringify({
      v: 1,
      at: tokens.accessToken,
      rt: tokens.refreshToken,
      it: tokens.idToken,
      tt: 'Bearer',
    });
    await store.putAccount(
      { ...record, secret: await cipher.encrypt(legacy, `oauth-mailbox/account/${accountId}`) },
      { expectedVersion: record.version },
    );
    const loaded = (await auth.persistence.load(accountId)).tokens as TokenSet;
    expect(loaded.resourceNames()).toEqual([]);
    expect(loaded.accessToken).toBe(tokens.accessToken);
    expect(JSON.parse(loaded.toSecretJSON())).not.toHaveProperty('rs'); // written back in the old shape too
    const graph = await auth.getAccessToken(accountId, { resource: 'graph' });
    const after = (await auth.persistence.load(accountId)).tokens as TokenSet;
    expect(after.resource('graph')?.accessToken).toBe(graph.accessToken);
    expect(after.accessToken).toBe(tokens.accessToken);
    expect(ms.isRefreshTokenValid(after.refreshToken as string)).toBe(true);
    expect(TokenSet.fromSecretJSON(after.toSecretJSON(), null).resource('graph')?.accessToken).toBe(
      graph.accessToken,
    );
  });

  it('refuses a resource the provider does not have, changing nothing', async () => {
    const { auth, accountId, store } = await graphSetup(server);
    const before = (await store.getAccount(accountId))?.version;
    await expect(auth.getAccessToken(accountId, { resource: 'Graph!' })).rejects.toThrow(
      new InvalidArgumentError(
        'resource must be a resource name such as "graph" (lowercase, at most 32 characters)',
      ),
    );
    await expect(auth.getAccessToken(accountId, { resource: 'gmail' })).rejects.toThrow(
      'The provider "microsoft" has no resource "gmail" (it has: graph)',
    );
    expect((await store.getAccount(accountId))?.version).toBe(before);
    expect((await auth.getAccount(accountId)).status).toBe('active');
    const google = await gmailSetup(server);
    await expect(google.auth.getAccessToken(google.accountId, { resource: 'graph' })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: 'The provider "google" has no resource "graph" (it has none)',
    });
  });

  it('saveTokens without a refresh token keeps the resource tokens; a new consent (connect) drops them', async () => {
    const { auth, accountId } = await graphSetup(server);
    await auth.getAccessToken(accountId, { resource: 'graph' });
    await auth.persistence.saveTokens(accountId, {
      accessToken: 'new-primary',
      expiresAt: Date.now() + 60_000,
    });
    const kept = (await auth.persistence.load(accountId)).tokens;
    expect(kept?.resourceNames()).toEqual(['graph']);
    const account = await auth.getAccount(accountId);
    await auth.persistence.connect({
      provider: 'microsoft',
      owner: account.owner,
      email: account.email,
      tokens: { accessToken: 'fresh', refreshToken: 'fresh-refresh', expiresAt: Date.now() + 60_000 },
    });
    expect((await auth.persistence.load(accountId)).tokens?.resourceNames()).toEqual([]);
    expect(() => new TokenSet({ accessToken: 'a', resources: { 'Bad Name': { accessToken: 'x' } } })).toThrow(
      InvalidArgumentError,
    );
    expect(() => new TokenSet({ accessToken: 'a', resources: { graph: { accessToken: '' } } })).toThrow(
      'tokens.resources.graph.accessToken must be a non-empty string',
    );
  });
});
