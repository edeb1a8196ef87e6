/**
 * The refresher's small parts on their own: its option and argument checks, what a failure means, the token
 * set stored after a refresh, the per-provider breakers, and a source's retries with a rescued refresh token.
 */
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  InvalidArgumentError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  TokenRefreshError,
} from '../../src/index.js';
import { attachRescuedRefreshToken } from '../../src/providers/token-response.js';
import { CircuitBreakers, type CircuitState } from '../../src/refresh/circuit-breaker.js';
import { nextTokens, resourceScopes } from '../../src/refresh/next-tokens.js';
import { assertRefreshable, circuitOutcome, failureEffect } from '../../src/refresh/refresh-failure.js';
import {
  assertRefreshIfDue,
  refresherSettings,
  refuseTokenCall,
} from '../../src/refresh/refresher-options.js';
import { obtainWithRetries, type TokenRequest, type TokenSource } from '../../src/refresh/token-source.js';
import { TokenSet } from '../../src/tokens/token-set.js';

describe('refresher options and arguments', () => {
  const base = { persistence: { load: () => {} }, registry: { get: () => {} } } as never;

  it('applies the defaults and refuses bad options with ConfigurationError', () => {
    const settings = refresherSettings(base);
    expect(settings).toMatchObject({ minValidityMs: 300_000, leaseTtlMs: 60_000, waitMs: 20_000 });
    expect(settings.retry).toEqual({
      retries: 3,
      minDelayMs: 500,
      maxDelayMs: 10_000,
      maxRetryTimeMs: 30_000,
    });
    expect(settings.holder).toMatch(/:\d+:[0-9a-f]{12}$/);
    for (const bad of [
      { leaseTtlMs: 0 },
      { minValidityMs: -1 },
      { retry: { retries: 1.5 } },
      { holderId: '' },
      { holderId: 'a\nb' },
      { tokenSource: 'x' },
      { circuitBreaker: { failureThreshold: 0 } },
    ]) {
      expect(() => {
        const s = refresherSettings({ ...(base as object), ...bad } as never);
        new CircuitBreakers(s.circuitBreaker, Date.now, () => {});
      }).toThrow(ConfigurationError);
    }
    expect(() => refresherSettings({ registry: { get: () => {} } } as never)).toThrow(ConfigurationError);
  });

  it('a source function returning undefined means the refresh-token grant', () => {
    const own = { grant: 'client_credentials' } as TokenSource;
    const settings = refresherSettings({
      ...(base as object),
      tokenSource: (a: { id: string }) => (a.id === 'app' ? own : undefined),
    } as never);
    expect(settings.tokenSource({ id: 'app' } as never)).toBe(own);
    expect(settings.tokenSource({ id: 'user' } as never).grant).toBe('refresh_token');
  });

  it('refuses bad call arguments with InvalidArgumentError, and lets good ones through', () => {
    expect(refuseTokenCall('a1', {})).toBeUndefined();
    expect(refuseTokenCall('a1', { resource: 'graph', minValidityMs: 0 })).toBeUndefined();
    for (const [id, options] of [
      ['', {}],
      ['a1', { minValidityMs: -5 }],
      ['a1', { resource: 'Graph!' }],
      ['a1', { rejected: { accessToken: 'x', accountId: 'other', resource: undefined } }],
      ['a1', { rejected: { accessToken: 'x', accountId: 'a1', resource: 'graph' } }],
    ] as const) {
      expect(refuseTokenCall(id, options as never)).toBeInstanceOf(InvalidArgumentError);
    }
    expect(() => assertRefreshIfDue('a1', 1.5)).toThrow(InvalidArgumentError);
    expect(() => assertRefreshIfDue(7, 0)).toThrow(InvalidArgumentError);
    expect(() => assertRefreshIfDue('a1', 0)).not.toThrow();
  });
});

describe('what a refresh failure means', () => {
  it('for the breaker: transient failures count, refusals prove the provider up, the rest tells nothing', () => {
    expect(circuitOutcome(new TokenRefreshError('down'))).toBe('failure');
    expect(circuitOutcome(new ReauthorizationRequiredError('dead'))).toBe('neutral');
    expect(circuitOutcome(new ProviderUnavailableError('open'))).toBe('none');
    expect(circuitOutcome(new Error('bug'))).toBe('none');
    expect(circuitOutcome(new DOMException('aborted', 'AbortError'))).toBe('none');
  });

  it('for the account: a dead grant is reauth_required; a resource without consent changes nothing', () => {
    expect(failureEffect(new ReauthorizationRequiredError('dead'), undefined)).toEqual({
      record: true,
      status: 'reauth_required',
      consentOnly: false,
    });
    const consent = new ReauthorizationRequiredError('no consent', { consentRequired: true });
    expect(failureEffect(consent, 'graph')).toEqual({ record: true, status: undefined, consentOnly: true });
    // Without a resource the same refusal is the account's own.
    expect(failureEffect(consent, undefined).status).toBe('reauth_required');
    expect(failureEffect(new ConfigurationError('bad client'), undefined).status).toBe('error');
    expect(failureEffect(new TokenRefreshError('down'), undefined)).toEqual({
      record: true,
      status: undefined,
      consentOnly: false,
    });
    expect(failureEffect(new InvalidArgumentError('bad'), undefined).record).toBe(false);
  });

  it('fails fast for an account that must be reconnected', () => {
    const account = (status: string) => ({ id: 'a1', provider: 'google', status }) as never;
    expect(() => assertRefreshable(account('reauth_required'))).toThrow(ReauthorizationRequiredError);
    expect(() => assertRefreshable(account('revoked'))).toThrow(/disconnected/);
    expect(() => assertRefreshable(account('active'))).not.toThrow();
    expect(() => assertRefreshable(account('error'))).not.toThrow();
  });
});

describe('the token set stored after a refresh', () => {
  const current = {
    accessToken: 'old',
    refreshToken: 'rt-1',
    expiresAt: 1,
    resources: { graph: { accessToken: 'g-old', expiresAt: 1, scopes: ['Mail.Read'] } },
  };
  const obtained = (refreshToken: string | null) =>
    new TokenSet({ accessToken: 'new', refreshToken, expiresAt: 5_000 });

  it('primary: the new token, the rotated refresh token, the resources kept', () => {
    const next = nextTokens(current, undefined, {
      tokens: obtained('rt-2'),
      grantedScopes: undefined,
      scopes: undefined,
      refreshToken: 'rt-1',
      issuedAt: 100,
    });
    expect(next).toMatchObject({ accessToken: 'new', refreshToken: 'rt-2', issuedAt: 100 });
    expect(next.resources).toBe(current.resources);
  });

  it('a resource: beside the unchanged primary token; no new refresh token keeps the one used', () => {
    const next = nextTokens(current, 'graph', {
      tokens: obtained(null),
      grantedScopes: undefined,
      scopes: ['Mail.ReadWrite'],
      refreshToken: 'rt-rescued',
      issuedAt: 100,
    });
    expect(next).toMatchObject({ accessToken: 'old', refreshToken: 'rt-rescued' });
    expect(next.resources?.graph).toMatchObject({
      accessToken: 'new',
      issuedAt: 100,
      scopes: ['Mail.ReadWrite'],
    });
  });

  it('a resource the provider lacks is the caller’s mistake, naming the ones it has', () => {
    const provider = { id: 'microsoft', resources: { graph: { scopes: ['Mail.Read'] } } };
    expect(resourceScopes(provider, undefined, 'a1')).toBeUndefined();
    expect(resourceScopes(provider, 'graph', 'a1')).toEqual(['Mail.Read']);
    expect(() => resourceScopes(provider, 'outlook', 'a1')).toThrow(/it has: graph/);
    expect(() => resourceScopes({ id: 'google' }, 'graph', 'a1')).toThrow(/it has none/);
  });
});

describe('the breakers of a refresher', () => {
  it('one per provider, made at its first call, reporting each change with its snapshot', async () => {
    const changes: [string, CircuitState, number][] = [];
    const now = 1_000;
    const breakers = new CircuitBreakers(
      { failureThreshold: 1, cooldownMs: 500 },
      () => now,
      (p, s, snap) => changes.push([p, s, snap.retryAfterMs]),
    );
    expect(breakers.snapshots()).toEqual({});
    await expect(
      breakers.execute('google', () => Promise.reject(new TokenRefreshError('down')), circuitOutcome),
    ).rejects.toBeInstanceOf(TokenRefreshError);
    expect(changes).toEqual([['google', 'open', 500]]);
    await expect(breakers.execute('google', async () => 1, circuitOutcome)).rejects.toBeInstanceOf(
      ProviderUnavailableError,
    );
    expect(await breakers.execute('microsoft', async () => 2, circuitOutcome)).toBe(2);
    expect(Object.keys(breakers.snapshots()).sort()).toEqual(['google', 'microsoft']);
  });

  it('disabled: every call goes through and nothing is kept', async () => {
    const breakers = new CircuitBreakers(false, Date.now, () => {});
    for (let i = 0; i < 10; i++) {
      await expect(
        breakers.execute('google', () => Promise.reject(new TokenRefreshError('down')), circuitOutcome),
      ).rejects.toBeInstanceOf(TokenRefreshError);
    }
    expect(breakers.snapshots()).toEqual({});
  });
});

describe('obtaining from a source with retries', () => {
  const request = (signal = new AbortController().signal): TokenRequest =>
    ({
      account: { id: 'a1' },
      provider: {},
      refreshToken: 'rt-1',
      resource: undefined,
      scopes: undefined,
      signal,
    }) as never;
  const retry = { retries: 2, minDelayMs: 0, maxDelayMs: 0, maxRetryTimeMs: 60_000, now: Date.now };

  it('a refusal carrying a rotated refresh token: stored first, used by the next attempt', async () => {
    const used: (string | null)[] = [];
    const rotated: string[] = [];
    const source: TokenSource = {
      grant: 'refresh_token',
      canObtain: () => true,
      obtain: async ({ refreshToken }) => {
        used.push(refreshToken);
        if (used.length === 1) {
          const err = new TokenRefreshError('temporarily unavailable');
          attachRescuedRefreshToken(err, 'rt-2'); // as a provider does with a refused answer's rotated token
          throw err;
        }
        return {
          tokens: new TokenSet({ accessToken: 'at', refreshToken: null, expiresAt: 1 }),
          scopes: undefined,
          claims: undefined,
        };
      },
    };
    const got = await obtainWithRetries(source, request(), {
      ...retry,
      onFailedAttempt: () => {},
      onRotated: async (token) => {
        rotated.push(token);
      },
    });
    expect(used).toEqual(['rt-1', 'rt-2']);
    expect(rotated).toEqual(['rt-2']);
    expect(got).toMatchObject({ rescued: true, refreshToken: 'rt-2' });
  });

  it('a permanent refusal is not retried; transient ones are, each reported', async () => {
    const failed: number[] = [];
    let calls = 0;
    const dead: TokenSource = {
      grant: 'refresh_token',
      canObtain: () => true,
      obtain: async () => {
        calls++;
        throw new ReauthorizationRequiredError('invalid_grant');
      },
    };
    await expect(
      obtainWithRetries(dead, request(), {
        ...retry,
        onFailedAttempt: (f) => failed.push(f.attempt),
        onRotated: async () => {},
      }),
    ).rejects.toBeInstanceOf(ReauthorizationRequiredError);
    expect(calls).toBe(1);
    calls = 0;
    const down: TokenSource = {
      ...dead,
      obtain: async () => {
        calls++;
        throw new TokenRefreshError('down');
      },
    };
    await expect(
      obtainWithRetries(down, request(), {
        ...retry,
        onFailedAttempt: (f) => failed.push(f.attempt),
        onRotated: async () => {},
      }),
    ).rejects.toBeInstanceOf(TokenRefreshError);
    expect(calls).toBe(3);
    expect(failed).toEqual([1, 1, 2, 3]);
  });
});
