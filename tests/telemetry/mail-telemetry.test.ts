/** OpenTelemetry metrics and spans of the mail layer: API calls, throttling, watchers, IMAP connections. */
import { describe, expect, it } from 'vitest';
import { all, waitFor } from '../support/async.js';
import { mswServer } from '../support/flow.js';
import { FAST_API, gmailSetup } from '../support/mail-api.js';
import { memoryTelemetry } from '../support/telemetry.js';

const server = mswServer();

describe('mail telemetry', () => {
  it('counts API calls by status class, and a 429 or 503 as throttling with its Retry-After, each in a span', async () => {
    const otel = memoryTelemetry();
    const { auth, accountId, gmail } = await gmailSetup(server, { telemetry: otel.telemetry });
    gmail.deliver({ subject: 'after throttling' });
    gmail.throttleNext(1, { retryAfterS: 0 }).throttleNext(1, { status: 503 });
    const messages = await all(auth.mailbox(accountId, { api: FAST_API }).fetchUnread());
    expect(messages.map((m) => m.subject)).toEqual(['after throttling']);
    const throttled = await otel.points('oauth_mailbox.mail.api.throttled');
    expect(throttled).toEqual([
      { attributes: { 'oauth_mailbox.transport': 'gmail-api', 'http.response.status_code': 429 }, value: 1 },
      { attributes: { 'oauth_mailbox.transport': 'gmail-api', 'http.response.status_code': 503 }, value: 1 },
    ]);
    // Only the 429 said Retry-After (0 s).
    expect(await otel.points('oauth_mailbox.mail.api.retry_after')).toEqual([
      {
        attributes: { 'oauth_mailbox.transport': 'gmail-api', 'http.response.status_code': 429 },
        count: 1,
        sum: 0,
      },
    ]);
    const calls = Object.fromEntries(
      (await otel.points('oauth_mailbox.mail.api.calls')).map((p) => [
        p.attributes['http.response.status_class'],
        p,
      ]),
    );
    expect(calls['4xx']).toEqual({
      attributes: {
        'oauth_mailbox.transport': 'gmail-api',
        'http.request.method': 'GET',
        'http.response.status_class': '4xx',
      },
      value: 1,
    });
    expect(calls['5xx']?.value).toBe(1);
    expect(calls['2xx']?.value).toBeGreaterThanOrEqual(2); // the list, then the message
    expect((await otel.metric('oauth_mailbox.mail.api.duration'))?.descriptor.unit).toBe('s');
    const spans = otel.finished('oauth_mailbox.mail.api.call');
    expect(spans.map((s) => s.attributes['http.response.status_code']).slice(0, 3)).toEqual([429, 503, 200]);
    expect(spans[0]?.attributes).toEqual({
      'oauth_mailbox.account.id': accountId,
      'oauth_mailbox.transport': 'gmail-api',
      'http.request.method': 'GET',
      'oauth_mailbox.operation': 'users.messages.list',
      'http.response.status_code': 429,
      'error.type': '429',
    });
    expect(spans.map((s) => s.status.code).slice(0, 3)).toEqual([2, 2, 0]); // 4xx and 5xx are errors
  });

  it('counts watcher deliveries with their lag, and failed watch sessions with their code', async () => {
    const otel = memoryTelemetry();
    const { auth, accountId, gmail } = await gmailSetup(server, { telemetry: otel.telemetry });
    const mailbox = auth.mailbox(accountId, { api: FAST_API, reconnect: { minDelayMs: 10, maxDelayMs: 20 } });
    const received: string[] = [];
    const errors: string[] = [];
    mailbox.on('error', (e) => errors.push((e.error as { code: string }).code));
    const watcher = mailbox.watch((m) => {
      received.push(m.subject as string);
    });
    await waitFor(() => (watcher.cursor !== undefined ? true : undefined));
    expect(await otel.points('oauth_mailbox.watch.deliveries')).toEqual([]);
    gmail.deliver({ subject: 'one', date: new Date(Date.now() - 5000) });
    await waitFor(() => (received.length === 1 ? true : undefined));
    const transport = { 'oauth_mailbox.transport': 'gmail-api' };
    // Counted with the client's health, once the handler returned.
    await waitFor(() => (mailbox.health().messagesLast24h === 1 ? true : undefined));
    expect(await otel.points('oauth_mailbox.watch.deliveries')).toEqual([
      { attributes: transport, value: 1 },
    ]);
    const [lag] = await otel.points('oauth_mailbox.watch.lag');
    expect(lag?.count).toBe(1);
    expect(lag?.sum).toBeGreaterThanOrEqual(4); // the message is dated 5 s ago (the Date header has whole seconds)
    gmail.throttleNext(4, { status: 503 }); // more than the request's own retries: the session fails
    await waitFor(() => (errors.length > 0 ? true : undefined));
    expect(await otel.points('oauth_mailbox.watch.failures')).toEqual([
      { attributes: { ...transport, 'error.type': 'ERR_MAIL_CONNECTION_FAILED' }, value: 1 },
    ]);
    await watcher.stop();
  });

  it('an IMAP connection runs in a span that ends with the error code when it fails', async () => {
    const otel = memoryTelemetry();
    const { auth } = await gmailSetup(server, { telemetry: otel.telemetry });
    const err = (await auth.connectImap('no-such-account').catch((e: unknown) => e)) as { code: string };
    expect(err.code).toBe('ERR_ACCOUNT_NOT_FOUND');
    const [span] = otel.finished('oauth_mailbox.imap.connect');
    expect(span?.attributes).toEqual({
      'oauth_mailbox.account.id': 'no-such-account',
      'oauth_mailbox.transport': 'imap',
      'error.type': 'ERR_ACCOUNT_NOT_FOUND',
    });
    expect(span?.status.code).toBe(2);
  });
});
