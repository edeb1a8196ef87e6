/** Without a `telemetry` option the library records into the global providers the host registered. */
import { metrics, trace } from '@opentelemetry/api';
import { afterAll, describe, expect, it } from 'vitest';
import { google } from '../../src/index.js';
import { fakeGoogle } from '../../src/testing/index.js';
import { memoryAuth } from '../support/auth.js';
import { CLIENT, GOOGLE_REDIRECT, mswServer } from '../support/flow.js';
import { ADA } from '../support/mail-api.js';
import { memoryTelemetry } from '../support/telemetry.js';

const server = mswServer();

describe('global OpenTelemetry providers', () => {
  afterAll(() => {
    metrics.disable();
    trace.disable();
  });

  it('a refresh and a code exchange are recorded by the SDK registered globally', async () => {
    const otel = memoryTelemetry();
    metrics.setGlobalMeterProvider(otel.meterProvider);
    trace.setGlobalTracerProvider(otel.tracerProvider);
    const googleFake = fakeGoogle(CLIENT);
    server.use(...googleFake.handlers());
    const { auth } = memoryAuth({ providers: [google({ ...CLIENT, redirectUri: GOOGLE_REDIRECT })] });
    const { url } = await auth.startAuthorization('google', { owner: 'u1' });
    const { account } = await auth.completeAuthorization('google', googleFake.approve(url, { email: ADA }), {
      owner: 'u1',
    });
    await auth.getAccessToken(account.id, { forceRefresh: true });
    expect(await otel.points('oauth_mailbox.token.refreshes')).toEqual([
      { attributes: { 'oauth_mailbox.provider': 'google', 'oauth_mailbox.outcome': 'success' }, value: 1 },
    ]);
    expect(otel.finished().map((s) => s.name)).toEqual([
      'oauth_mailbox.code_exchange',
      'oauth_mailbox.token.refresh',
    ]);
  });
});
