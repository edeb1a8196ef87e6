/**
 * No secret and no email address in any exported span or metric: a whole flow (connect, refresh, a failed
 * refresh, API calls with throttling, a watcher) runs with in-memory exporters, and everything they hold
 * is serialized and searched for every secret that crossed the wire.
 */
import { describe, expect, it } from 'vitest';
import { google } from '../../src/index.js';
import { fakeGmailApi, fakeGoogle } from '../../src/testing/index.js';
import { all, waitFor } from '../support/async.js';
import { memoryAuth } from '../support/auth.js';
import { CLIENT, GOOGLE_REDIRECT, mswServer } from '../support/flow.js';
import { ADA, FAST_API } from '../support/mail-api.js';
import { memoryTelemetry } from '../support/telemetry.js';

const server = mswServer();

describe('telemetry redaction', () => {
  it('exports no token, refresh token, code, verifier, client secret or email in any attribute', async () => {
    const otel = memoryTelemetry();
    const googleFake = fakeGoogle({ ...CLIENT, rotateRefreshTokens: true });
    const gmail = fakeGmailApi({ tokens: googleFake, email: ADA });
    server.use(...googleFake.handlers(), ...gmail.handlers());
    // Every secret that crosses the wire, both ways.
    const secrets = new Set<string>([CLIENT.clientSecret, ADA]);
    const seen = new Set<string>();
    const pending: Promise<void>[] = [];
    const collect = (text: string) => {
      for (const [key, value] of new URLSearchParams(text))
        if (/code|verifier|token|secret|assertion/.test(key) && value.length > 0) {
          secrets.add(value);
          seen.add(key);
        }
      try {
        for (const [key, value] of Object.entries(JSON.parse(text) as Record<string, unknown>))
          if (/token/.test(key) && typeof value === 'string') {
            secrets.add(value);
            seen.add(key);
          }
      } catch {}
    };
    server.events.on('request:start', ({ request }) => {
      const authorization = request.headers.get('authorization');
      if (authorization !== null) {
        secrets.add(authorization);
        secrets.add(authorization.replace(/^\w+ /, ''));
      }
      if (request.method === 'POST') pending.push(request.clone().text().then(collect));
    });
    server.events.on('response:mocked', ({ response }) => {
      pending.push(response.clone().text().then(collect));
    });

    const { auth } = memoryAuth({
      providers: [google({ ...CLIENT, redirectUri: GOOGLE_REDIRECT, mailTransport: 'gmail-api' })],
      refresh: { retry: { retries: 0 } },
      telemetry: otel.telemetry,
    });
    const { url } = await auth.startAuthorization('google', { owner: 'u1' });
    const callback = googleFake.approve(url, { email: ADA });
    for (const [key, value] of callback.searchParams)
      if (key === 'code' || key === 'state') secrets.add(value);
    const { account } = await auth.completeAuthorization('google', callback, { owner: 'u1' });
    await auth.getAccessToken(account.id, { forceRefresh: true });
    googleFake.failNext({ status: 400, body: { error: 'invalid_request', error_description: ADA } });
    await auth.getAccessToken(account.id, { forceRefresh: true }).catch(() => {});
    await auth.getAccessToken(account.id, { forceRefresh: true });
    const mailbox = auth.mailbox(account.id, {
      api: FAST_API,
      reconnect: { minDelayMs: 10, maxDelayMs: 20 },
    });
    gmail.deliver({ subject: 'hello', from: 'sender@example.com' });
    gmail.throttleNext(1, { retryAfterS: 0 });
    await all(mailbox.fetchUnread());
    const received: string[] = [];
    const watcher = mailbox.watch((m) => {
      received.push(m.subject as string);
    });
    await waitFor(() => (watcher.cursor !== undefined ? true : undefined));
    gmail.deliver({ subject: 'watched', from: 'sender@example.com' });
    await waitFor(() => (mailbox.health().messagesLast24h === 2 ? true : undefined));
    await watcher.stop();
    await auth.connectImap(account.id, { host: '127.0.0.1', port: 1, secure: false }).catch(() => {});
    await Promise.all(pending);
    for (const [key, value] of new URLSearchParams(callback.search)) if (key === 'code') secrets.add(value);
    const stored = await auth.persistence.load(account.id);
    for (const token of [stored.tokens?.accessToken, stored.tokens?.refreshToken, stored.tokens?.idToken])
      if (token) secrets.add(token);

    const spans = otel.finished();
    expect(new Set(spans.map((s) => s.name))).toEqual(
      new Set([
        'oauth_mailbox.code_exchange',
        'oauth_mailbox.token.refresh',
        'oauth_mailbox.mail.api.call',
        'oauth_mailbox.imap.connect',
      ]),
    );
    // Failed spans (the refused refresh, the throttled call, the IMAP connection) carry the code, never a
    // message: no status description and no exception event (its message and stack can quote a server).
    expect(spans.filter((s) => s.status.code === 2).length).toBeGreaterThanOrEqual(3);
    for (const span of spans) {
      expect(span.status.message).toBeUndefined();
      expect(span.events).toEqual([]);
    }
    const metrics = (await otel.collect()).scopeMetrics.flatMap((s) => s.metrics);
    expect(metrics.length).toBeGreaterThanOrEqual(8);
    const exported = JSON.stringify({
      spans: spans.map((s) => ({
        name: s.name,
        attributes: s.attributes,
        events: s.events,
        links: s.links,
        status: s.status,
      })),
      metrics: metrics.map((m) => ({
        descriptor: m.descriptor,
        points: m.dataPoints.map((p) => p.attributes),
      })),
    });
    // The secrets were seen: the code, the verifier, the client secret, access and refresh tokens, the id_token.
    expect([...seen].sort()).toEqual(
      expect.arrayContaining(['access_token', 'code', 'code_verifier', 'id_token', 'refresh_token']),
    );
    for (const secret of secrets) expect(exported).not.toContain(secret);
    expect(exported).not.toContain('example.com');
    expect(exported).not.toMatch(/\bBearer\b|code_verifier|refresh_token/);
  });
});
