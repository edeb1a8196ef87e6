/** OpenTelemetry metrics and spans of token refreshes and code exchanges, read from in-memory exporters. */
import { describe, expect, it } from 'vitest';
import { google, ProviderUnavailableError, ReauthorizationRequiredError } from '../../src/index.js';
import { fakeGoogle } from '../../src/testing/index.js';
import { memoryAuth } from '../support/auth.js';
import { CLIENT, GOOGLE_REDIRECT, mswServer } from '../support/flow.js';
import { ADA } from '../support/mail-api.js';
import { memoryTelemetry } from '../support/telemetry.js';

const server = mswServer();

async function setup(
  options: { refresh?: Parameters<typeof memoryAuth>[0]['refresh']; now?: () => number } = {},
) {
  const otel = memoryTelemetry();
  const googleFake = fakeGoogle({ ...CLIENT, accessTokenTtlS: 3599 });
  server.use(...googleFake.handlers());
  const { auth, store } = memoryAuth({
    providers: [google({ ...CLIENT, redirectUri: GOOGLE_REDIRECT })],
    refresh: { retry: { retries: 0 }, ...options.refresh },
    telemetry: otel.telemetry,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const { url } = await auth.startAuthorization('google', { owner: 'u1' });
  const { account } = await auth.completeAuthorization('google', googleFake.approve(url, { email: ADA }), {
    owner: 'u1',
  });
  return { otel, auth, store, google: googleFake, accountId: account.id };
}

describe('refresh telemetry', () => {
  it('a refresh counts with provider and outcome, records its duration in seconds and the expiry horizon, in a span', async () => {
    const { otel, auth, accountId } = await setup();
    expect(await otel.points('oauth_mailbox.token.refreshes')).toEqual([]);
    await auth.getAccessToken(accountId, { forceRefresh: true });
    const success = { 'oauth_mailbox.provider': 'google', 'oauth_mailbox.outcome': 'success' };
    expect(await otel.points('oauth_mailbox.token.refreshes')).toEqual([{ attributes: success, value: 1 }]);
    const duration = await otel.metric('oauth_mailbox.token.refresh.duration');
    expect(duration?.descriptor.unit).toBe('s');
    expect(await otel.points('oauth_mailbox.token.refresh.duration')).toEqual([
      { attributes: success, count: 1, sum: expect.any(Number) },
    ]);
    const [horizon] = await otel.points('oauth_mailbox.token.expiry_horizon');
    expect(horizon?.attributes).toEqual({ 'oauth_mailbox.provider': 'google' });
    expect(horizon?.count).toBe(1);
    expect(horizon?.sum).toBeGreaterThan(3500);
    expect(horizon?.sum).toBeLessThanOrEqual(3599);
    const [span] = otel.finished('oauth_mailbox.token.refresh');
    expect(span?.attributes).toEqual({
      'oauth_mailbox.provider': 'google',
      'oauth_mailbox.account.id': accountId,
    });
    expect(span?.status.code).toBe(0); // unset: success
    // A cached token is no refresh.
    await auth.getAccessToken(accountId);
    expect((await otel.points('oauth_mailbox.token.refreshes'))[0]?.value).toBe(1);
  });

  it('a failed refresh records the outcome and the error code, never the message', async () => {
    const { otel, auth, accountId, google: googleFake } = await setup();
    googleFake.failNext({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'sentinel-description-7f3a' },
    });
    await expect(auth.getAccessToken(accountId, { forceRefresh: true })).rejects.toBeInstanceOf(
      ReauthorizationRequiredError,
    );
    const failure = {
      'oauth_mailbox.provider': 'google',
      'oauth_mailbox.outcome': 'failure',
      'error.type': 'ERR_REAUTHORIZATION_REQUIRED',
    };
    expect(await otel.points('oauth_mailbox.token.refreshes')).toEqual([{ attributes: failure, value: 1 }]);
    expect((await otel.points('oauth_mailbox.token.refresh.duration'))[0]?.attributes).toEqual(failure);
    expect(await otel.points('oauth_mailbox.token.expiry_horizon')).toEqual([]);
    const [span] = otel.finished('oauth_mailbox.token.refresh');
    expect(span?.status).toEqual({ code: 2 });
    expect(span?.attributes['error.type']).toBe('ERR_REAUTHORIZATION_REQUIRED');
    expect(span?.events).toEqual([]); // no exception event: its message and stack could quote the provider
    expect(JSON.stringify({ a: span?.attributes, s: span?.status })).not.toContain('sentinel');
  });

  it('counts a wait for the lease another process holds, once per refresh', async () => {
    const { otel, auth, accountId } = await setup();
    await auth.persistence.acquireLease(accountId, 'another-process', 60_000);
    const refreshed = auth.getAccessToken(accountId, { forceRefresh: true });
    // Polled until the refresh found the lease busy (the deadline bounds a slow machine; nothing waits on it).
    for (const deadline = Date.now() + 10_000; ; ) {
      if (Date.now() > deadline) throw new Error('no lease wait was counted');
      const [wait] = await otel.points('oauth_mailbox.token.lease_waits');
      if (wait !== undefined) {
        expect(wait).toEqual({ attributes: { 'oauth_mailbox.provider': 'google' }, value: 1 });
        break;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await auth.persistence.releaseLease(accountId, 'another-process');
    await refreshed;
    expect(await otel.points('oauth_mailbox.token.lease_waits')).toEqual([
      { attributes: { 'oauth_mailbox.provider': 'google' }, value: 1 },
    ]);
    expect((await otel.points('oauth_mailbox.token.refreshes'))[0]?.value).toBe(1);
  });

  it("counts each change of a provider's circuit breaker state", async () => {
    let clock = Date.now();
    const {
      otel,
      auth,
      accountId,
      google: googleFake,
    } = await setup({
      refresh: { circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } },
      now: () => clock,
    });
    googleFake.failNext({ status: 500 });
    await expect(auth.getAccessToken(accountId, { forceRefresh: true })).rejects.toMatchObject({
      code: 'ERR_TOKEN_REFRESH_FAILED',
    });
    await expect(auth.getAccessToken(accountId, { forceRefresh: true })).rejects.toBeInstanceOf(
      ProviderUnavailableError,
    );
    expect(await otel.points('oauth_mailbox.circuit.state')).toEqual([
      { attributes: { 'oauth_mailbox.provider': 'google' }, value: 2 }, // open
    ]);
    clock += 60_001;
    await auth.getAccessToken(accountId, { forceRefresh: true });
    const transitions = await otel.points('oauth_mailbox.circuit.transitions');
    const byState = Object.fromEntries(
      transitions.map((p) => [p.attributes['oauth_mailbox.circuit.state'], p.value]),
    );
    expect(byState).toEqual({ open: 1, closed: 1 }); // the breaker reports open and closed (a probe is no state change)
    expect(transitions.every((p) => p.attributes['oauth_mailbox.provider'] === 'google')).toBe(true);
    expect(await otel.points('oauth_mailbox.circuit.state')).toEqual([
      { attributes: { 'oauth_mailbox.provider': 'google' }, value: 0 }, // closed again
    ]);
  });

  it('the code exchange runs in a span with the provider id only', async () => {
    const { otel } = await setup();
    const [span] = otel.finished('oauth_mailbox.code_exchange');
    expect(span?.attributes).toEqual({ 'oauth_mailbox.provider': 'google' });
    expect(span?.kind).toBe(2); // client
    expect(span?.instrumentationScope).toMatchObject({ name: 'oauth-mailbox' });
  });

  it('a failed code exchange ends its span with the error code', async () => {
    const otel = memoryTelemetry();
    const googleFake = fakeGoogle(CLIENT);
    server.use(...googleFake.handlers());
    const { auth } = memoryAuth({
      providers: [google({ ...CLIENT, redirectUri: GOOGLE_REDIRECT })],
      telemetry: otel.telemetry,
    });
    const { url } = await auth.startAuthorization('google', { owner: 'u1' });
    googleFake.failNext({ status: 400, body: { error: 'invalid_grant', error_description: 'sentinel-9c1' } });
    const err = (await auth
      .completeAuthorization('google', googleFake.approve(url, { email: ADA }), { owner: 'u1' })
      .catch((e: unknown) => e)) as { code: string };
    const [span] = otel.finished('oauth_mailbox.code_exchange');
    expect(span?.status.code).toBe(2);
    expect(span?.attributes['error.type']).toBe(err.code);
    expect(err.code).toMatch(/^ERR_/);
  });
});
