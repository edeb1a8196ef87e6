/** The Gmail API transport against the msw emulation of the Gmail API (real response and error shapes). */
import { inspect } from 'node:util';
import { HttpResponse, http } from 'msw';
import { describe, expect, it, vi } from 'vitest';
import {
  ConfigurationError,
  google,
  InvalidArgumentError,
  MailAuthenticationError,
  MailboxClient,
  MailConnectionError,
  type MailMessage,
  MailRequestError,
  ReauthorizationRequiredError,
} from '../../src/index.js';
import { all, waitFor } from '../support/async.js';
import { CLIENT, GOOGLE_REDIRECT, mswServer } from '../support/flow.js';
import {
  ADA,
  expectMissingMessage,
  FAST_API,
  gmailSetup,
  recordingApi,
  waitForPollRounds,
} from '../support/mail-api.js';

const server = mswServer();

/**
 * Every wait of the library goes through `node:timers/promises` (src/internal/timers.ts): each one's length is
 * recorded here (and waited as usual), so a test reads how long the watcher chose to stay away instead of
 * waiting that long itself.
 */
const waits = vi.hoisted((): number[] => []);
vi.mock('node:timers/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:timers/promises')>();
  const setTimeout = ((...args: Parameters<typeof real.setTimeout>) => {
    waits.push(Number(args[0]));
    return real.setTimeout(...args);
  }) as typeof real.setTimeout;
  return { ...real, setTimeout, default: { ...real, setTimeout } };
});
/** The longest delay a Node timer honours: a longer one would fire after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

describe('Gmail API transport', () => {
  it('is chosen by the preset, which asks for gmail.modify and gmail.send instead of https://mail.google.com/', async () => {
    const provider = google({ ...CLIENT, redirectUri: GOOGLE_REDIRECT, mailTransport: 'gmail-api' });
    expect(provider.scopes).toEqual([
      'openid',
      'email',
      'https://www.googleapis.com/auth/gmail.modify',
      'https://www.googleapis.com/auth/gmail.send',
    ]);
    expect(provider.mailTransport).toBe('gmail-api');
    expect(google({ ...CLIENT, redirectUri: GOOGLE_REDIRECT }).scopes).toContain('https://mail.google.com/');
    expect(() =>
      google({ ...CLIENT, redirectUri: GOOGLE_REDIRECT, mailTransport: 'graph' as never }),
    ).toThrow(new ConfigurationError('google: mailTransport must be "imap" or "gmail-api" (got "graph")'));
    const { auth, accountId } = await gmailSetup(server);
    const mailbox = auth.mailbox(accountId);
    expect(mailbox).toBeInstanceOf(MailboxClient);
    expect(await mailbox.transport()).toBe('gmail-api');
    expect(await auth.mailbox(accountId, { transport: 'imap' }).transport()).toBe('imap');
  });

  it('validates the transport up front, and refuses one the provider does not offer', async () => {
    const { auth, accountId, store } = await gmailSetup(server);
    expect(() => auth.mailbox(accountId, { transport: 'grpah' as never })).toThrow(
      new InvalidArgumentError('transport must be one of "imap", "gmail-api", "graph" (got "grpah")'),
    );
    expect(() => auth.mailbox(accountId, { api: { retries: -1 } })).toThrow(
      new InvalidArgumentError('api.retries must be a non-negative integer (milliseconds or count)'),
    );
    const before = await store.getAccount(accountId);
    const err = await auth
      .mailbox(accountId, { transport: 'graph' })
      .fetchUnread()
      .next()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe(
      'The "graph" transport is not available for provider "google" (it offers: imap, gmail-api)',
    );
    expect((await store.getAccount(accountId))?.version).toBe(before?.version);
  });

  it('streams unread messages page by page (constant memory), newest first, with source, and marks them read', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    // Each a few milliseconds after the one before, a second ago.
    const since = Date.now() - 1000;
    for (const [i, subject] of ['one', 'two', 'three', 'four', 'five'].entries()) {
      gmail.deliver({ subject, from: '"Sender" <sender@example.com>', date: new Date(since + 2 * i) });
    }
    gmail.deliver({ subject: 'read already', labelIds: ['INBOX'] });
    const mailbox = auth.mailbox(accountId, { api: { ...FAST_API, pageSize: 2 } });
    const iterator = mailbox.fetchUnread({ max: 10 });
    const first = await iterator.next();
    // Only the first page was listed: the next one is asked for when the consumer gets there.
    expect(gmail.stats.operations['users.messages.list']).toBe(1);
    const rest = await all({ [Symbol.asyncIterator]: () => iterator });
    const messages = [first.value as MailMessage, ...rest];
    expect(messages.map((m) => m.subject)).toEqual(['five', 'four', 'three', 'two', 'one']);
    expect(gmail.stats.operations['users.messages.list']).toBe(3);
    const five = messages[0] as MailMessage;
    expect(five).toMatchObject({ uid: undefined, mailbox: 'INBOX', flags: [] });
    expect(five.id).toMatch(/^[0-9a-f]{16}$/);
    expect(five.from).toEqual([{ name: 'Sender', address: 'sender@example.com' }]);
    expect(five.to).toEqual([{ address: ADA }]);
    expect(five.messageId).toMatch(/^<.+@mail\.example\.com>$/);
    expect(five.source?.toString()).toContain('Body of five');
    await mailbox.markAsRead(five.id);
    expect(gmail.message(five.id)?.labelIds).toEqual(['INBOX']);
    const left = await all(mailbox.fetchUnread({ max: 2, source: false }));
    expect(left.map((m) => [m.subject, m.source])).toEqual([
      ['four', undefined],
      ['three', undefined],
    ]);
    expect(mailbox.health()).toMatchObject({ connected: true, errorsLast24h: 0, messagesLast24h: 7 });
    await expect(mailbox.markAsRead(42)).rejects.toThrow(
      "markAsRead takes the message's id string (message.id) with the gmail-api transport, not a number",
    );
    await expect(mailbox.markAsRead('nope/../x')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expectMissingMessage(mailbox, 'ffffffffffffffff', { apiCode: 'notFound', protocol: 'gmail-api' });
  });

  it('decodes encoded headers (RFC 2047 B and Q words, folded lines) from raw and metadata answers', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    const subject = `=?UTF-8?B?${Buffer.from('Grüße aus').toString('base64')}?=\r\n =?ISO-8859-1?Q?K=F6ln_heute?=`;
    gmail.deliver({
      raw: [
        `From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.com>, group: a@example.com, b@example.com;`,
        `To: ${ADA}`,
        `Subject: ${subject}`,
        'Date: Tue, 02 Jan 2024 10:00:00 +0000',
        'Message-ID: <m1@example.com>',
        '',
        'Body',
        '',
      ].join('\r\n'),
    });
    const mailbox = auth.mailbox(accountId);
    for (const source of [true, false]) {
      const [message] = await all(mailbox.fetchUnread({ source }));
      expect(message?.subject).toBe('Grüße ausKöln heute');
      expect(message?.from).toEqual([
        { name: 'Jürgen', address: 'j@example.com' },
        { address: 'a@example.com' },
        { address: 'b@example.com' },
      ]);
      expect(message?.date?.toISOString()).toBe('2024-01-02T10:00:00.000Z');
      expect(message?.messageId).toBe('<m1@example.com>');
    }
  });

  it('skips a message deleted between the listing and its fetch', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    const gone = gmail.deliver({ subject: 'gone' });
    gmail.deliver({ subject: 'kept', date: new Date(Date.now() - 5000) });
    // Listed, then deleted before its fetch: Gmail answers the fetch with its 404.
    server.use(
      http.get(
        `https://gmail.googleapis.com/gmail/v1/users/me/messages/${gone}`,
        () => {
          gmail.remove(gone);
          return HttpResponse.json(
            {
              error: {
                code: 404,
                message: 'Requested entity was not found.',
                errors: [
                  { message: 'Requested entity was not found.', domain: 'global', reason: 'notFound' },
                ],
                status: 'NOT_FOUND',
              },
            },
            { status: 404 },
          );
        },
        { once: true },
      ),
    );
    const messages = await all(auth.mailbox(accountId, { api: FAST_API }).fetchUnread());
    expect(messages.map((m) => m.subject)).toEqual(['kept']);
  });

  it('a truncated answer is asked again when the request is a read, and not when it is a send', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    gmail.deliver({ subject: 'whole' });
    const truncated = () =>
      new HttpResponse(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"messages":[{"id":"'));
            controller.error(new Error('connection reset'));
          },
        }),
        { headers: { 'content-type': 'application/json' } },
      );
    server.use(
      http.get('https://gmail.googleapis.com/gmail/v1/users/me/messages', truncated, { once: true }),
    );
    const mailbox = auth.mailbox(accountId, { api: FAST_API });
    expect((await all(mailbox.fetchUnread())).map((m) => m.subject)).toEqual(['whole']);
    server.use(
      http.post('https://gmail.googleapis.com/gmail/v1/users/me/messages/send', truncated, { once: true }),
    );
    const err = await mailbox.send({ to: 'bob@example.com', text: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailConnectionError);
    expect((err as Error).message).toBe(
      'The Gmail API returned a malformed or truncated response (users.messages.send)',
    );
    expect(gmail.stats.operations['users.messages.send'] ?? 0).toBe(0); // answered by the override alone
    server.use(http.get('https://gmail.googleapis.com/gmail/v1/users/me/messages', truncated));
    const exhausted = await all(
      auth.mailbox(accountId, { api: { ...FAST_API, retries: 2 } }).fetchUnread(),
    ).catch((e: unknown) => e);
    expect(exhausted).toMatchObject({ code: 'ERR_MAIL_CONNECTION_FAILED', retryable: true });
  });

  it('an abort while an error answer is read rejects with the abort reason', async () => {
    const { auth, accountId } = await gmailSetup(server);
    const reason = new Error('request cancelled');
    const controller = new AbortController();
    server.use(
      http.get(
        'https://gmail.googleapis.com/gmail/v1/users/me/messages',
        () =>
          new HttpResponse(
            new ReadableStream({
              start(stream) {
                stream.enqueue(new TextEncoder().encode('{"error":'));
                // As fetch does: an abort after the headers errors the body; the rest never comes.
                controller.signal.addEventListener('abort', () =>
                  stream.error(new DOMException('This operation was aborted', 'AbortError')),
                );
                setTimeout(() => controller.abort(reason), 50);
              },
            }),
            { status: 400, headers: { 'content-type': 'application/json' } },
          ),
        { once: true },
      ),
    );
    await expect(
      all(auth.mailbox(accountId, { api: FAST_API }).fetchUnread({ signal: controller.signal })),
    ).rejects.toBe(reason);
  });

  it('honours Retry-After on 429 and 503, then succeeds', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    gmail.deliver({ subject: 'after throttling' });
    gmail.throttleNext(1, { retryAfterS: 1 }).throttleNext(1, { status: 503 });
    const started = Date.now();
    const messages = await all(auth.mailbox(accountId, { api: FAST_API }).fetchUnread());
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(messages.map((m) => m.subject)).toEqual(['after throttling']);
    expect(gmail.stats.faults).toBe(2);
  });

  it("waits for the Retry-After of a 503, and retries Gmail's 403 rate-limit reasons without a refresh", async () => {
    const { auth, accountId, gmail, google: googleFake } = await gmailSetup(server);
    gmail.deliver({ subject: 'after the outage' });
    gmail.failNext({ status: 503, headers: { 'retry-after': '1' } });
    const started = Date.now();
    const mailbox = auth.mailbox(accountId, { api: FAST_API });
    expect((await all(mailbox.fetchUnread())).map((m) => m.subject)).toEqual(['after the outage']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    for (const reason of ['rateLimitExceeded', 'userRateLimitExceeded']) {
      gmail.failNext({
        status: 403,
        body: {
          error: {
            code: 403,
            message: 'Rate Limit Exceeded',
            errors: [{ message: 'Rate Limit Exceeded', domain: 'usageLimits', reason }],
            status: 'PERMISSION_DENIED',
          },
        },
      });
      expect(await all(mailbox.fetchUnread())).toHaveLength(1);
    }
    expect(gmail.stats.faults).toBe(3);
    expect(googleFake.stats.refreshes).toBe(0);
  });

  it('gives up after bounded retries with a retryable MailConnectionError, and at once when Retry-After is too long', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    gmail.throttleNext(3, { status: 503 });
    const mailbox = auth.mailbox(accountId, { api: { ...FAST_API, retries: 2 } });
    const err = await all(mailbox.fetchUnread()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailConnectionError);
    expect(err).toMatchObject({
      retryable: true,
      status: 503,
      apiCode: 'backendError',
      protocol: 'gmail-api',
    });
    expect(gmail.stats.faults).toBe(3);
    expect(mailbox.health().lastError?.code).toBe('ERR_MAIL_CONNECTION_FAILED');

    gmail.throttleNext(1, { retryAfterS: 3600 });
    const started = Date.now();
    const long = await all(
      auth.mailbox(accountId, { api: { ...FAST_API, maxRetryWaitMs: 5000 } }).fetchUnread(),
    ).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(long).toMatchObject({ code: 'ERR_MAIL_CONNECTION_FAILED', status: 429, retryAfterMs: 3_600_000 });
  });

  it('an access token that expires mid-listing gets one forced refresh and the listing goes on', async () => {
    const { auth, accountId, gmail, google: googleFake } = await gmailSetup(server);
    for (let i = 0; i < 4; i++) gmail.deliver({ subject: `m${i}`, date: new Date(Date.now() - i * 1000) });
    const mailbox = auth.mailbox(accountId, { api: { ...FAST_API, pageSize: 2 } });
    const seen: string[] = [];
    for await (const message of mailbox.fetchUnread()) {
      seen.push(message.subject as string);
      if (seen.length === 2) gmail.expireAccessTokens(); // the token dies between two pages
    }
    expect(seen).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(gmail.stats.unauthorized).toBe(1);
    expect(googleFake.stats.refreshes).toBe(1);
  });

  it('an access token that expires inside a page (between two messages.get) is refreshed once and the page goes on', async () => {
    const { auth, accountId, gmail, google: googleFake } = await gmailSetup(server);
    for (let i = 0; i < 3; i++) gmail.deliver({ subject: `m${i}`, date: new Date(Date.now() - i * 1000) });
    const seen: string[] = [];
    for await (const message of auth
      .mailbox(accountId, { api: { ...FAST_API, pageSize: 10 } })
      .fetchUnread()) {
      seen.push(message.subject as string);
      if (seen.length === 1) gmail.expireAccessTokens(); // one list call for all three; the next get is refused
    }
    expect(seen).toEqual(['m0', 'm1', 'm2']);
    expect(gmail.stats.operations['users.messages.list']).toBe(1);
    expect(gmail.stats.unauthorized).toBe(1);
    expect(googleFake.stats.refreshes).toBe(1);
  });

  it('a token refused again after the refresh is MailAuthenticationError, and the account is marked', async () => {
    const { auth, accountId, gmail, google: googleFake } = await gmailSetup(server);
    gmail.failNext('expired-token', 'expired-token');
    const err = await auth
      .mailbox(accountId, { api: FAST_API })
      .connect()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailAuthenticationError);
    expect(err).toMatchObject({
      protocol: 'gmail-api',
      status: 401,
      apiCode: 'authError',
      category: 'reauthorization',
    });
    expect(googleFake.stats.refreshes).toBe(1);
    expect((await auth.getAccount(accountId)).status).toBe('error');
  });

  it('a 403 for a missing scope is MailAuthenticationError without a refresh', async () => {
    const { auth, accountId, gmail, google: googleFake } = await gmailSetup(server);
    gmail.failNext({
      status: 403,
      body: {
        error: {
          code: 403,
          message: 'Request had insufficient authentication scopes.',
          errors: [
            { message: 'Insufficient Permission', domain: 'global', reason: 'insufficientPermissions' },
          ],
          status: 'PERMISSION_DENIED',
        },
      },
    });
    const err = await auth
      .mailbox(accountId)
      .connect()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ERR_MAIL_AUTHENTICATION_FAILED',
      status: 403,
      apiCode: 'insufficientPermissions',
    });
    expect(googleFake.stats.refreshes).toBe(0);
  });

  it('aborts during a Retry-After wait and during a request', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    gmail.throttleNext(1, { retryAfterS: 30 });
    const controller = new AbortController();
    const reason = new Error('request cancelled');
    setTimeout(() => controller.abort(reason), 100);
    const started = Date.now();
    const mailbox = auth.mailbox(accountId, { api: FAST_API });
    await expect(all(mailbox.fetchUnread({ signal: controller.signal }))).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(2000);
    gmail.failNext({ delayMs: 5000 });
    const slow = new AbortController();
    setTimeout(() => slow.abort(reason), 100);
    await expect(mailbox.connect({ signal: slow.signal })).rejects.toBe(reason);
    await expect(mailbox.markAsRead('abc', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('sends a raw RFC 822 message built by MailComposer (Bcc kept for Gmail to deliver), from the account', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    const mailbox = auth.mailbox(accountId, { api: FAST_API });
    const sent = await mailbox.send({
      to: 'Bob <bob@example.com>',
      bcc: 'audit@example.com',
      subject: 'Grüße',
      text: 'Hello from the Gmail API',
      attachments: [{ filename: 'a.txt', content: 'attached' }],
    });
    expect(sent).toMatchObject({
      transport: 'gmail-api',
      accepted: ['bob@example.com', 'audit@example.com'],
      rejected: [],
    });
    expect(sent.id).toBe(gmail.sent[0]?.id);
    const raw = gmail.sent[0]?.raw.toString() ?? '';
    expect(raw).toContain(`From: ${ADA}`);
    expect(raw).toContain('To: Bob <bob@example.com>');
    expect(raw).toContain('Bcc: audit@example.com');
    expect(raw).toContain('Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=');
    expect(raw).toContain(`Message-ID: ${sent.messageId}`);
    expect(raw).toContain('Content-Disposition: attachment; filename=a.txt');
    expect(gmail.stats.operations['users.messages.send']).toBe(1);
    await expect(mailbox.send({ subject: 'nobody' })).rejects.toThrow(
      'message has no recipient (to, cc or bcc)',
    );
  });

  it('sends a large message through the media upload endpoint', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    const big = Buffer.alloc(4.5 * 1024 * 1024, 'a');
    const urls: string[] = [];
    const listener = ({ request }: { request: Request }) => {
      urls.push(request.url);
    };
    server.events.on('request:start', listener);
    await auth
      .mailbox(accountId)
      .send({ to: 'bob@example.com', text: 'big', attachments: [{ content: big }] });
    server.events.removeListener('request:start', listener);
    expect(urls).toContain(
      'https://gmail.googleapis.com/upload/gmail/v1/users/me/messages/send?uploadType=media',
    );
    expect(gmail.sent).toHaveLength(1);
    expect(gmail.sent[0]?.raw.length).toBeGreaterThan(4.5 * 1024 * 1024);
  });

  it('a send is not retried after a network failure (the API may have sent it)', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    gmail.failNext('network');
    const err = await auth
      .mailbox(accountId, { api: FAST_API })
      .send({ to: 'bob@example.com', text: 'x' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailConnectionError);
    expect(gmail.stats.operations['users.messages.send']).toBe(1);
    expect(gmail.sent).toHaveLength(0);
    gmail.failNext('network');
    expect(await all(auth.mailbox(accountId, { api: FAST_API }).fetchUnread())).toEqual([]); // reads retry
  });

  it('a send is not repeated after a 500, 502 or 504 (Gmail may have sent it), but is after a 429 or 503', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    const mailbox = auth.mailbox(accountId, { api: FAST_API });
    for (const status of [500, 502, 504]) {
      gmail.failNext({
        status,
        body: { error: { code: status, message: 'Backend Error', status: 'UNAVAILABLE' } },
      });
      const err = await mailbox.send({ to: 'bob@example.com', text: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailConnectionError);
      expect(err).toMatchObject({ status, retryable: true, protocol: 'gmail-api' });
      expect((err as Error).message).toBe(
        `The Gmail API failed (users.messages.send, HTTP ${status} UNAVAILABLE); it may have acted on the request, so it was not repeated`,
      );
    }
    expect(gmail.stats.operations['users.messages.send']).toBe(3);
    gmail.throttleNext(1, { retryAfterS: 0 }).throttleNext(1, { status: 503 });
    await mailbox.send({ to: 'bob@example.com', text: 'sent once' });
    expect(gmail.stats.operations['users.messages.send']).toBe(6);
    expect(gmail.sent).toHaveLength(1);
  });

  it('a 401 that arrives after another request already refreshed the token costs no second refresh', async () => {
    const { auth, accountId, gmail, google: googleFake } = await gmailSetup(server);
    const a = gmail.deliver({ subject: 'a' });
    const b = gmail.deliver({ subject: 'b' });
    const mailbox = auth.mailbox(accountId, { api: FAST_API });
    await mailbox.connect();
    gmail.expireAccessTokens();
    // b's first request (with the old token) is held on its way to the API until a's is done: its 401 comes late.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let arrived = false;
    server.use(
      http.post(`https://gmail.googleapis.com/gmail/v1/users/me/messages/${b}/modify`, async () => {
        if (arrived) return; // the retry goes straight on
        arrived = true;
        await held; // answering nothing passes the request on to the emulated API
      }),
    );
    const slow = mailbox.markAsRead(b);
    await waitFor(() => (arrived ? true : undefined));
    await mailbox.markAsRead(a); // 401, refresh, done
    expect(googleFake.stats.refreshes).toBe(1);
    release();
    await slow; // 401 for the old token: the new one is used, no second refresh
    expect(googleFake.stats.refreshes).toBe(1);
    expect(gmail.stats.unauthorized).toBe(2);
    expect(await all(mailbox.fetchUnread())).toEqual([]);
  });

  it('a watcher stays away as long as a Retry-After says, even beyond its own backoff or a timer', async () => {
    // Longer than maxRetryWaitMs, so each poll fails at once: 60 s, then 35 days (beyond what a Node timer
    // takes: an unclamped wait fires after 1 ms).
    for (const retryAfterS of [60, 3_000_000]) {
      const { auth, accountId, gmail } = await gmailSetup(server);
      const mailbox = auth.mailbox(accountId, {
        api: { ...FAST_API, maxRetryWaitMs: 100 },
        reconnect: { minDelayMs: 10, maxDelayMs: 20 },
      });
      const errors: (number | undefined)[] = [];
      let waitAfterError = -1;
      mailbox.on('error', (e) => {
        errors.push((e.error as { retryAfterMs?: number }).retryAfterMs);
        // The watch loop begins its wait as soon as the error is reported (in the same turn): the next one.
        waitAfterError = waits.length;
      });
      const watcher = mailbox.watch(() => {});
      await waitFor(() => (watcher.cursor !== undefined ? true : undefined));
      gmail.throttleNext(10, { retryAfterS });
      await waitFor(() => (errors.length > 0 ? true : undefined));
      // The wait before the next poll is the Retry-After (what a timer takes of it), not the 10-20 ms backoff.
      expect(waits[waitAfterError]).toBe(Math.min(retryAfterS * 1000, MAX_TIMER_MS));
      expect(gmail.stats.faults).toBe(1); // no poll during the Retry-After (dozens without the fix)
      expect(errors).toEqual([retryAfterS * 1000]);
      await watcher.stop();
      expect(gmail.stats.faults).toBe(1);
    }
  });

  it('watches with history.list: only new messages, in order, once; resumes from the cursor; resyncs after a 404', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    gmail.deliver({ subject: 'before the watch' });
    const { api, urls } = recordingApi({ pageSize: 2 });
    const mailbox = auth.mailbox(accountId, { api });
    const received: string[] = [];
    const reasons: string[] = [];
    mailbox.on('reconnected', (e) => reasons.push(e.reason));
    const watcher = mailbox.watch((m) => {
      received.push(m.subject as string);
    });
    await waitFor(() => (watcher.cursor !== undefined ? true : undefined));
    for (const s of ['a', 'b', 'c']) gmail.deliver({ subject: s });
    gmail.deliver({ subject: 'sent by me', labelIds: ['SENT'] });
    await waitFor(() => (received.length >= 3 ? true : undefined));
    await waitForPollRounds(urls); // the watch went over the history again: nothing delivered twice
    expect(received).toEqual(['a', 'b', 'c']);
    expect(mailbox.health()).toMatchObject({ watching: true, connected: true, messagesLast24h: 3 });
    await watcher.stop();
    expect(watcher.lastUid).toBe(0);
    const cursor = watcher.cursor as string;
    expect(cursor).toMatch(/^\d+:\d+:[A-Za-z0-9_-]+$/); // history id, watermark, the message at it

    gmail.deliver({ subject: 'while stopped' });
    const resumed = mailbox.watch(
      (m) => {
        received.push(m.subject as string);
      },
      { cursor },
    );
    await waitFor(() => (received.includes('while stopped') ? true : undefined));
    const resyncs: string[] = [];
    mailbox.on('resynced', (e) => resyncs.push(`${e.accountId === accountId} ${e.reason}`));
    gmail.expireHistory();
    // Gmail forgot the history: resynced from the watermark (the last delivered message), nothing lost.
    gmail.deliver({ subject: 'in the gap' });
    gmail.deliver({ subject: 'in the gap too' });
    await waitFor(() => (reasons.includes('resync') ? true : undefined));
    gmail.deliver({ subject: 'after resync' });
    await waitFor(() => (received.includes('after resync') ? true : undefined));
    expect(received).toEqual([
      'a',
      'b',
      'c',
      'while stopped',
      'in the gap',
      'in the gap too',
      'after resync',
    ]);
    expect(resyncs).toEqual(['true history-expired']);
    await resumed.stop();
  });

  it('a watcher backs off on transient errors, and stops with reauthorizationRequired when the grant is revoked', async () => {
    const { auth, accountId, gmail, google: googleFake } = await gmailSetup(server);
    const mailbox = auth.mailbox(accountId, { api: FAST_API, reconnect: { minDelayMs: 10, maxDelayMs: 20 } });
    const events: string[] = [];
    mailbox.on('error', (e) => events.push(`error ${(e.error as { code?: string }).code}`));
    mailbox.on('reconnected', (e) => events.push(`reconnected ${e.reason}`));
    mailbox.on('reauthorizationRequired', (e) => events.push(`reauth ${e.accountId === accountId}`));
    const received: string[] = [];
    const watcher = mailbox.watch((m) => {
      received.push(m.subject as string);
    });
    await waitFor(() => (watcher.cursor !== undefined ? true : undefined));
    gmail.throttleNext(4, { status: 503 }); // more than the request's own retries
    await waitFor(() => (events.includes('reconnected drop') ? true : undefined));
    gmail.deliver({ subject: 'after the outage' });
    await waitFor(() => (received.length > 0 ? true : undefined));
    googleFake.revokeUser(ADA);
    gmail.expireAccessTokens();
    await expect(watcher.done).rejects.toBeInstanceOf(ReauthorizationRequiredError);
    expect(events).toContain('error ERR_MAIL_CONNECTION_FAILED');
    expect(events.at(-1)).toBe('reauth true');
    expect(mailbox.health().watching).toBe(false);
    expect((await auth.getAccount(accountId)).status).toBe('reauth_required');
  });

  it('a watcher on a label Gmail does not know stops with the refused request', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    gmail.failNext({
      status: 400,
      body: {
        error: {
          code: 400,
          message: 'Invalid label: X',
          errors: [{ reason: 'invalidArgument' }],
          status: 'INVALID_ARGUMENT',
        },
      },
    });
    const watcher = auth.mailbox(accountId, { api: FAST_API }).watch(() => {}, { mailbox: 'Label_404' });
    await expect(watcher.done).rejects.toBeInstanceOf(MailRequestError);
  });

  it('never shows a token in an error, an event or the client', async () => {
    const { auth, accountId, gmail, store, cipher } = await gmailSetup(server);
    const stored = await store.getAccount(accountId);
    const { tokens } = await auth.persistence.load(accountId);
    const secrets = [tokens?.accessToken as string, tokens?.refreshToken as string];
    expect(stored?.secret).not.toContain(secrets[0]);
    void cipher;
    const mailbox = auth.mailbox(accountId, { api: { ...FAST_API, retries: 0 } });
    const caught: unknown[] = [];
    gmail.failNext('expired-token', 'expired-token');
    caught.push(await mailbox.connect().catch((e: unknown) => e));
    gmail.throttleNext(1);
    caught.push(await mailbox.connect().catch((e: unknown) => e));
    gmail.failNext('network');
    caught.push(await mailbox.connect().catch((e: unknown) => e));
    caught.push(await mailbox.markAsRead('0000000000000000').catch((e: unknown) => e));
    const { tokens: after } = await auth.persistence.load(accountId);
    secrets.push(after?.accessToken as string);
    const text = [
      ...caught.map((e) => JSON.stringify(e)),
      ...caught.map((e) => inspect(e, { depth: 10, showHidden: true })),
      ...caught.map((e) => String((e as Error).stack)),
      inspect(mailbox),
      JSON.stringify(mailbox.health()),
    ].join('\n');
    expect(caught.map((e) => (e as { code?: string }).code)).toEqual([
      'ERR_MAIL_AUTHENTICATION_FAILED',
      'ERR_MAIL_CONNECTION_FAILED',
      'ERR_MAIL_CONNECTION_FAILED',
      'ERR_MAIL_REQUEST_REJECTED',
    ]);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('fetchUnread order: the newest max first by default; oldest first walks the unread ids (ids only) and fetches only the oldest max', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    const base = Date.now() - 3_600_000;
    // More unread messages than one page of ids (500), so the oldest ones are on the third page.
    for (let i = 0; i < 1203; i++) gmail.deliver({ subject: `m${i}`, date: new Date(base + i * 1000) });
    gmail.deliver({ subject: 'read', labelIds: ['INBOX'], date: new Date(base - 1000) });
    const { api, urls } = recordingApi({ pageSize: 2 });
    const mailbox = auth.mailbox(accountId, { api });
    const lists = () => urls.filter((u) => u.pathname.endsWith('/messages'));
    const gets = () => urls.filter((u) => /\/messages\/[0-9a-f]{16}$/.test(u.pathname));
    const newest = await all(mailbox.fetchUnread({ max: 5, source: false }));
    expect(newest.map((m) => m.subject)).toEqual(['m1202', 'm1201', 'm1200', 'm1199', 'm1198']);
    expect(lists().map((u) => u.searchParams.get('maxResults'))).toEqual(['2', '2', '1']);
    expect(gets()).toHaveLength(5);
    urls.length = 0;
    const iterator = mailbox.fetchUnread({ max: 5, order: 'oldest' });
    const first = await iterator.next();
    // Every page of ids was listed before the first message: ids only, 500 a page (not pageSize).
    expect(lists()).toHaveLength(3);
    expect(lists().every((u) => u.searchParams.get('maxResults') === '500')).toBe(true);
    expect(lists().every((u) => u.searchParams.get('fields') === 'messages/id,nextPageToken')).toBe(true);
    expect(gets()).toHaveLength(1);
    const oldest = [first.value as MailMessage, ...(await all({ [Symbol.asyncIterator]: () => iterator }))];
    expect(oldest.map((m) => m.subject)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(oldest[0]?.source?.toString()).toContain('Body of m0');
    expect(gets()).toHaveLength(5); // only the max wanted are fetched
    // A message deleted between the listing and its fetch is skipped; max above the unread count gives them all.
    urls.length = 0;
    const few = await gmailSetup(server);
    const ids = ['a', 'b', 'c'].map((subject, i) =>
      few.gmail.deliver({ subject, date: new Date(base + i * 1000) }),
    );
    const small = few.auth.mailbox(few.accountId, { api: FAST_API });
    const walk = small.fetchUnread({ max: 10, order: 'oldest' });
    expect((await walk.next()).value?.subject).toBe('a');
    few.gmail.remove(ids[1] as string);
    expect((await all({ [Symbol.asyncIterator]: () => walk })).map((m) => m.subject)).toEqual(['c']);
  });

  it('validates order with an exact message', async () => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    const mailbox = auth.mailbox(accountId);
    await expect(mailbox.fetchUnread({ order: 'latest' as never }).next()).rejects.toThrow(
      new InvalidArgumentError('order must be "newest" or "oldest" (got "latest")'),
    );
    await expect(mailbox.fetchUnread({ order: 1 as never }).next()).rejects.toThrow(
      'order must be "newest" or "oldest" (got 1)',
    );
    expect(gmail.stats.requests).toBe(0);
  });
});
