import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isMailboxAuthError, MailboxAuthError } from '../../src/index.js';
import { UNUSABLE_EXPIRES_IN_S } from '../../src/providers/token-response.js';
import { mswServer } from '../support/flow.js';
import { expiredAccount, recordingLogger } from '../support/refresh.js';

const server = mswServer();

type Body = Record<string, unknown>;

// Answers a rotating provider really sends (or that a proxy garbles) after it has already rotated the refresh
// token. Each must leave the new refresh token stored, so that nothing ends in invalid_grant.
const lenient: [string, (body: Body) => Body, number][] = [
  ['token_type missing', ({ token_type: _, ...body }) => body, 3599],
  ['token_type empty', (body) => ({ ...body, token_type: '' }), 3599],
  ['expires_in negative', (body) => ({ ...body, expires_in: -5 }), UNUSABLE_EXPIRES_IN_S],
  ['expires_in a word', (body) => ({ ...body, expires_in: 'soon' }), UNUSABLE_EXPIRES_IN_S],
  ['expires_in a numeric string (Azure AD v1)', (body) => ({ ...body, expires_in: '3600' }), 3600],
  ['expires_in absurdly large', (body) => ({ ...body, expires_in: 1e12 }), UNUSABLE_EXPIRES_IN_S],
  ['expires_in NaN-like null', (body) => ({ ...body, expires_in: null }), -1],
  ['scope a number', (body) => ({ ...body, scope: 42 }), 3599],
  ['scope a list', (body) => ({ ...body, scope: ['a', 'b'] }), 3599],
];

const refused: [string, (body: Body) => Body, string][] = [
  ['token_type mac', (body) => ({ ...body, token_type: 'mac' }), 'ERR_CONFIGURATION'],
  ['a garbled id_token', (body) => ({ ...body, id_token: 'not-a.jwt' }), 'ERR_TOKEN_REFRESH_FAILED'],
  ['no access_token', ({ access_token: _, ...body }) => body, 'ERR_TOKEN_REFRESH_FAILED'],
];

describe('a token response that does not validate keeps its rotated refresh token', () => {
  it.each(lenient)('%s: accepted leniently', async (_name, rewrite, lifetimeS) => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    fake.failNext({ rewrite });
    const before = Date.now();
    const token = await refresher().getAccessToken(id);
    expect(fake.stats.tokenRequests).toBe(1);
    if (lifetimeS < 0) expect(token.expiresAt).toBeNull();
    else {
      const lifetime = (token.expiresAt?.getTime() ?? 0) - before;
      expect(lifetime).toBeGreaterThan((lifetimeS - 60) * 1000);
      expect(lifetime).toBeLessThanOrEqual(lifetimeS * 1000 + 60_000);
    }
    const { tokens } = await persistence.load(id);
    expect(tokens?.tokenType.toLowerCase()).toBe('bearer');
    expect(fake.isRefreshTokenValid(tokens?.refreshToken ?? '')).toBe(true);
  });

  it.each(refused)(
    '%s: refused, typed, and the rotated refresh token is stored first',
    async (_n, rewrite, code) => {
      const { fake, refresher, id, persistence } = await expiredAccount(server);
      // Every attempt gets the bad answer: each one rotates, and each new refresh token is the one used next.
      let broken = true;
      const fault = { rewrite: (body: Body) => (broken ? rewrite(body) : body) };
      fake.failNext(fault, fault, fault, fault);
      const logger = recordingLogger();
      const r = refresher({ logger });
      const err = await r.getAccessToken(id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailboxAuthError);
      expect(isMailboxAuthError(err)).toBe(true);
      expect((err as MailboxAuthError).code).toBe(code);
      const { account, tokens } = await persistence.load(id);
      const stored = tokens?.refreshToken ?? '';
      expect(fake.isRefreshTokenValid(stored)).toBe(true);
      expect(account.status).not.toBe('reauth_required');
      // The secret is nowhere in what the error or the logs show.
      for (const text of [JSON.stringify(err), inspect(err, { showHidden: true, depth: 8 }), ...logger.lines])
        expect(text).not.toContain(stored);
      // The provider answers properly again: the next refresh works, nobody asked the user to reconnect.
      broken = false;
      await r.getAccessToken(id, { forceRefresh: true });
      expect((await persistence.getAccount(id)).status).toBe('active');
    },
  );

  it('a garbled id_token once: the retry uses the rescued refresh token and succeeds', async () => {
    const { fake, refresher, id, persistence } = await expiredAccount(server);
    fake.failNext({ rewrite: (body) => ({ ...body, id_token: 'garbled' }) });
    await refresher().getAccessToken(id);
    expect(fake.stats.refreshes).toBe(2);
    const { account, tokens } = await persistence.load(id);
    expect(account.status).toBe('active');
    expect(fake.isRefreshTokenValid(tokens?.refreshToken ?? '')).toBe(true);
  });
});
