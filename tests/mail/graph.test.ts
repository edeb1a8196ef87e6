/** The Microsoft Graph transport against the msw emulation of Graph, with per-resource tokens from the refresher. */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  MailAuthenticationError,
  type MailMessage,
  MICROSOFT_GRAPH_SCOPES,
  microsoft,
  ReauthorizationRequiredError,
} from '../../src/index.js';
import { primaryTokenIsGraph } from '../../src/mail/graph.js';
import { all, waitFor } from '../support/async.js';
import { CLIENT, MS_REDIRECT, mswServer } from '../support/flow.js';
import {
  expectMissingMessage,
  FAST_API,
  GRACE,
  graphSetup,
  recordingApi,
  waitForPollRounds,
} from '../support/mail-api.js';

const server = mswServer();

/** Make the account's stored primary token expired and forget this process's copy. */
async function expireAccessToken(
  auth: Awaited<ReturnType<typeof graphSetup>>['auth'],
  accountId: string,
): Promise<void> {
  await auth.persistence.saveTokens(accountId, { accessToken: 'expired', expiresAt: Date.now() - 1000 });
  auth.refresher.invalidate(accountId);
}

describe('Microsoft Graph transport', () => {
  it('the preset option asks for Graph scopes at consent and makes Graph the default transport', async () => {
    const provider = microsoft({ ...CLIENT, redirectUri: MS_REDIRECT, mailTransport: 'graph' });
    expect(provider.scopes).toEqual([...MICROSOFT_GRAPH_SCOPES, 'offline_access', 'openid', 'email']);
    expect(provider.mailTransport).toBe('graph');
    expect(provider.resources.graph?.scopes).toEqual([...MICROSOFT_GRAPH_SCOPES, 'offline_access']);
    expect(() =>
      microsoft({ ...CLIENT, redirectUri: MS_REDIRECT, mailTransport: 'gmail-api' as never }),
    ).toThrow('microsoft: mailTransport must be "imap" or "graph" (got "gmail-api")');
    const { auth, accountId, graph } = await graphSetup(server, { mailTransport: 'graph' });
    graph.deliver({ subject: 'hello graph' });
    const mailbox = auth.mailbox(accountId, { api: FAST_API });
    expect(await mailbox.transport()).toBe('graph');
    expect((await all(mailbox.fetchUnread())).map((m) => m.subject)).toEqual(['hello graph']);
  });

  it('uses the Graph token, not the IMAP one: the two coexist, from one rotating refresh token', async () => {
    const { auth, accountId, graph, microsoft: ms } = await graphSetup(server);
    const outlook = await auth.getAccessToken(accountId);
    // Graph refuses the Outlook (IMAP/SMTP) token, as Microsoft does: wrong audience.
    const refused = await fetch('https://graph.microsoft.com/v1.0/me/mailFolders/inbox', {
      headers: { authorization: `Bearer ${outlook.accessToken}` },
    });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      'InvalidAuthenticationToken',
    );
    graph.deliver({ subject: 'via graph' });
    const mailbox = auth.mailbox(accountId, { transport: 'graph', api: FAST_API });
    expect((await all(mailbox.fetchUnread())).map((m) => m.subject)).toEqual(['via graph']);
    expect(graph.stats.unauthorized).toBe(1); // only the request above
    const graphToken = await auth.getAccessToken(accountId, { resource: 'graph' });
    expect(graphToken.resource).toBe('graph');
    expect(graphToken.accessToken).not.toBe(outlook.accessToken);
    expect(ms.accessTokenInfo(graphToken.accessToken)?.scopes).toEqual([
      ...MICROSOFT_GRAPH_SCOPES,
      'offline_access',
    ]);
    expect(ms.accessTokenInfo(outlook.accessToken)?.scopes.some((s) => s.includes('graph'))).toBe(false);
    expect((await auth.getAccessToken(accountId)).accessToken).toBe(outlook.accessToken); // still valid
    expect(ms.stats.refreshes).toBe(1);
  });

  it('pages through unread messages with @odata.nextLink (constant memory) and marks them read with PATCH', async () => {
    const { auth, accountId, graph } = await graphSetup(server);
    for (let i = 0; i < 5; i++)
      graph.deliver({ subject: `m${i}`, receivedAt: new Date(Date.now() - (5 - i) * 1000) });
    graph.deliver({ subject: 'read', isRead: true });
    const mailbox = auth.mailbox(accountId, { transport: 'graph', api: { ...FAST_API, pageSize: 2 } });
    const iterator = mailbox.fetchUnread({ max: 4 });
    const first = await iterator.next();
    expect(graph.stats.operations['list messages']).toBe(1);
    const rest = await all({ [Symbol.asyncIterator]: () => iterator });
    const messages = [first.value as MailMessage, ...rest];
    expect(messages.map((m) => m.subject)).toEqual(['m4', 'm3', 'm2', 'm1']); // max 4: the third page is never asked for
    expect(graph.stats.operations['list messages']).toBe(2);
    const m4 = messages[0] as MailMessage;
    expect(m4).toMatchObject({
      uid: undefined,
      mailbox: 'inbox',
      flags: [],
      to: [{ name: GRACE, address: GRACE }],
    });
    expect(m4.from[0]?.address).toBe('sender@contoso.com');
    expect(m4.source?.toString()).toContain('Body of m4');
    expect(m4.date?.toISOString()).toBe(graph.message(m4.id)?.receivedDateTime.replace('Z', '.000Z'));
    await mailbox.markAsRead(m4.id);
    expect(graph.message(m4.id)?.isRead).toBe(true);
    const unread = await all(mailbox.fetchUnread({ source: false }));
    expect(unread.map((m) => m.subject)).toEqual(['m3', 'm2', 'm1', 'm0']);
    expect(unread[0]?.source).toBeUndefined();
    await expectMissingMessage(mailbox, 'AAMkAGI2missing=', {
      apiCode: 'ErrorItemNotFound',
      protocol: 'graph',
    });
  });

  it('honours Retry-After on 429 ApplicationThrottled and on 503', async () => {
    const { auth, accountId, graph } = await graphSetup(server);
    graph.deliver({ subject: 'x' });
    graph.throttleNext(1, { retryAfterS: 1 }).throttleNext(1, { status: 503, retryAfterS: 0 });
    const started = Date.now();
    const messages = await all(auth.mailbox(accountId, { transport: 'graph', api: FAST_API }).fetchUnread());
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(messages).toHaveLength(1);
    graph.throttleNext(2, { retryAfterS: 0 });
    const err = await all(
      auth.mailbox(accountId, { transport: 'graph', api: { ...FAST_API, retries: 1 } }).fetchUnread(),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ERR_MAIL_CONNECTION_FAILED',
      status: 429,
      apiCode: 'ApplicationThrottled',
      retryAfterMs: 0,
    });
  });

  it('waits for the Retry-After of a 503, and aborts during a Retry-After wait, a request or a send', async () => {
    const { auth, accountId, graph } = await graphSetup(server);
    graph.deliver({ subject: 'x' });
    graph.throttleNext(1, { status: 503, retryAfterS: 1 });
    const mailbox = auth.mailbox(accountId, { transport: 'graph', api: FAST_API });
    let started = Date.now();
    expect(await all(mailbox.fetchUnread())).toHaveLength(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    const reason = new Error('request cancelled');
    graph.throttleNext(1, { retryAfterS: 30 });
    const waiting = new AbortController();
    setTimeout(() => waiting.abort(reason), 100);
    started = Date.now();
    await expect(all(mailbox.fetchUnread({ signal: waiting.signal }))).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(2000);
    graph.failNext({ delayMs: 5000 });
    const slow = new AbortController();
    setTimeout(() => slow.abort(reason), 100);
    await expect(mailbox.markAsRead('AAMkAGI2x=', { signal: slow.signal })).rejects.toBe(reason);
    await expect(
      mailbox.send({ to: 'bob@example.com', text: 'x' }, { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
    expect(graph.sent).toHaveLength(0);
  });

  it('a send is not repeated after a 504 (Graph may have sent it)', async () => {
    const { auth, accountId, graph } = await graphSetup(server);
    graph.failNext({ status: 504, body: { error: { code: 'UnknownError', message: '' } } });
    const err = await auth
      .mailbox(accountId, { transport: 'graph', api: FAST_API })
      .send({ to: 'bob@example.com', text: 'x' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_MAIL_CONNECTION_FAILED', status: 504, protocol: 'graph' });
    expect((err as Error).message).toBe(
      'Microsoft Graph failed (sendMail, HTTP 504 UnknownError); it may have acted on the request, so it was not repeated',
    );
    expect(graph.stats.faults).toBe(1);
  });

  it('a Graph token that expires mid-listing is refreshed once (for the graph resource) and the listing goes on', async () => {
    const { auth, accountId, graph, microsoft: ms } = await graphSetup(server);
    for (let i = 0; i < 4; i++)
      graph.deliver({ subject: `m${i}`, receivedAt: new Date(Date.now() - i * 1000) });
    const mailbox = auth.mailbox(accountId, { transport: 'graph', api: { ...FAST_API, pageSize: 2 } });
    const outlookBefore = (await auth.getAccessToken(accountId)).accessToken;
    const seen: string[] = [];
    for await (const message of mailbox.fetchUnread({ source: false })) {
      seen.push(message.subject as string);
      if (seen.length === 2) graph.expireAccessTokens();
    }
    expect(seen).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(ms.stats.refreshes).toBe(2); // the first Graph token, then the forced one
    expect((await auth.getAccessToken(accountId)).accessToken).toBe(outlookBefore);
    const stored = (await auth.persistence.load(accountId)).tokens;
    expect(ms.isRefreshTokenValid(stored?.refreshToken as string)).toBe(true); // every rotation was stored
  });

  it('a token refused twice is MailAuthenticationError (InvalidAuthenticationToken), never showing a token', async () => {
    const { auth, accountId, graph } = await graphSetup(server);
    graph.failNext('expired-token', 'expired-token');
    const err = await auth
      .mailbox(accountId, { transport: 'graph', api: FAST_API })
      .connect()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailAuthenticationError);
    expect(err).toMatchObject({ protocol: 'graph', status: 401, apiCode: 'InvalidAuthenticationToken' });
    const { tokens } = await auth.persistence.load(accountId);
    const text = `${JSON.stringify(err)}\n${inspect(err, { depth: 10, showHidden: true })}`;
    for (const secret of [
      tokens?.accessToken,
      tokens?.refreshToken,
      tokens?.resource('graph')?.accessToken,
    ] as string[]) {
      expect(secret).toBeTruthy();
      expect(text).not.toContain(secret);
    }
    expect(JSON.stringify(tokens)).not.toContain(tokens?.resource('graph')?.accessToken);
    expect(inspect(tokens, { depth: 10, showHidden: true })).not.toContain(
      tokens?.resource('graph')?.accessToken,
    );
  });

  it('sends the MailComposer MIME (base64) to /me/sendMail', async () => {
    const { auth, accountId, graph } = await graphSetup(server);
    const sent = await auth
      .mailbox(accountId, { transport: 'graph', api: FAST_API })
      .send({ to: 'bob@example.com', cc: 'carol@example.com', subject: 'Report', html: '<p>Hi</p>' });
    expect(sent).toMatchObject({
      transport: 'graph',
      id: undefined,
      accepted: ['bob@example.com', 'carol@example.com'],
    });
    expect(graph.sent).toHaveLength(1);
    const mime = graph.sent[0]?.mime.toString() ?? '';
    expect(graph.sent[0]?.format).toBe('mime');
    expect(mime).toContain(`From: ${GRACE}`);
    expect(mime).toContain('Subject: Report');
    expect(mime).toContain('Cc: carol@example.com');
    expect(mime).toContain(`Message-ID: ${sent.messageId}`);
    expect(mime).toContain('<p>Hi</p>');
  });

  it('watches with delta: new messages once (not read-state changes), resumes from the cursor, and resyncs after 410 without loss', async () => {
    const { auth, accountId, graph } = await graphSetup(server);
    graph.deliver({ subject: 'old', receivedAt: new Date(Date.now() - 60_000) });
    const { api, urls } = recordingApi({ pageSize: 2 });
    const mailbox = auth.mailbox(accountId, { transport: 'graph', api });
    const received: MailMessage[] = [];
    const reasons: string[] = [];
    mailbox.on('reconnected', (e) => reasons.push(e.reason));
    const watcher = mailbox.watch((m) => {
      received.push(m);
    });
    await waitFor(() => (watcher.cursor !== undefined ? true : undefined));
    for (const s of ['a', 'b', 'c']) graph.deliver({ subject: s });
    await waitFor(() => (received.length >= 3 ? true : undefined));
    graph.setRead(received[0]?.id as string, true); // a change delta may report: not a new message
    graph.remove(received[1]?.id as string);
    await waitForPollRounds(urls); // the watch went over both changes: neither is a new message
    expect(received.map((m) => m.subject)).toEqual(['a', 'b', 'c']);
    expect(received[0]?.source?.toString()).toContain('Body of a');
    await watcher.stop();
    const cursor = watcher.cursor as string;

    graph.deliver({ subject: 'while stopped' });
    const resumed = mailbox.watch(
      (m) => {
        received.push(m);
      },
      { cursor },
    );
    await waitFor(() => (received.some((m) => m.subject === 'while stopped') ? true : undefined));
    const resyncs: string[] = [];
    mailbox.on('resynced', (e) => resyncs.push(`${e.mailbox} ${e.reason}`));
    graph.expireDeltaTokens();
    graph.deliver({ subject: 'during the expiry' });
    await waitFor(() => (reasons.includes('resync') ? true : undefined));
    expect(resyncs).toEqual(['undefined delta-expired']);
    await waitFor(() => (received.some((m) => m.subject === 'during the expiry') ? true : undefined));
    graph.deliver({ subject: 'after' });
    await waitFor(() => (received.some((m) => m.subject === 'after') ? true : undefined));
    await waitForPollRounds(urls); // and over the mailbox again: nothing delivered twice
    expect(received.map((m) => m.subject)).toEqual([
      'a',
      'b',
      'c',
      'while stopped',
      'during the expiry',
      'after',
    ]);
    await resumed.stop();
  });

  it('a bad cursor stops the watch with InvalidArgumentError', async () => {
    const { auth, accountId } = await graphSetup(server);
    const watcher = auth
      .mailbox(accountId, { transport: 'graph', api: FAST_API })
      .watch(() => {}, { cursor: '42' });
    await expect(watcher.done).rejects.toThrow(
      'cursor is not a Microsoft Graph watch position (use watcher.cursor of a Graph watch)',
    );
    // A link elsewhere never receives the token.
    const evil = JSON.stringify({
      graph: 1,
      link: 'https://evil.example.com/delta',
      since: 0,
      last: 0,
      ids: [],
    });
    const stolen = auth
      .mailbox(accountId, { transport: 'graph', api: FAST_API })
      .watch(() => {}, { cursor: evil });
    await expect(stolen.done).rejects.toThrow(
      'Microsoft Graph: a link to another origin (https://evil.example.com) was refused; the token is only sent to https://graph.microsoft.com',
    );
  });

  it('a watcher stops with reauthorizationRequired when the grant is revoked', async () => {
    const { auth, accountId, graph, microsoft: ms } = await graphSetup(server);
    const mailbox = auth.mailbox(accountId, { transport: 'graph', api: FAST_API });
    const events: string[] = [];
    mailbox.on('reauthorizationRequired', (e) => events.push(e.accountId));
    const watcher = mailbox.watch(() => {});
    await waitFor(() => (watcher.cursor !== undefined ? true : undefined));
    ms.revokeUser(GRACE);
    graph.expireAccessTokens();
    await expect(watcher.done).rejects.toBeInstanceOf(ReauthorizationRequiredError);
    expect(events).toEqual([accountId]);
  });

  it('an account whose consent lacks Graph: consentRequired for Graph, while the account and its IMAP token stay usable', async () => {
    const { auth, accountId, microsoft: ms } = await graphSetup(server, { graphConsent: false });
    const events: unknown[] = [];
    auth.on('reauthorizationRequired', (e) => events.push(e));
    const err = await all(auth.mailbox(accountId, { transport: 'graph', api: FAST_API }).fetchUnread()).catch(
      (e: unknown) => e,
    );
    // Microsoft answers invalid_grant with AADSTS65001 / consent_required: the refresh token is still good.
    expect(err).toBeInstanceOf(ReauthorizationRequiredError);
    expect(err).toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED', consentRequired: true });
    expect(ms.stats.refreshes).toBe(1);
    expect(events).toHaveLength(1);
    const account = await auth.getAccount(accountId);
    expect(account.status).toBe('active');
    expect(account.lastError?.code).toBe('ERR_REAUTHORIZATION_REQUIRED');
    // The IMAP/SMTP token still comes, and a forced refresh of it still works (the refresh token lives).
    const outlook = await auth.getAccessToken(accountId, { forceRefresh: true });
    expect(ms.accessTokenInfo(outlook.accessToken)?.scopes[0]).toBe(
      'https://outlook.office.com/IMAP.AccessAsUser.All',
    );
  });

  it('consent_required on the primary token (consent withdrawn) marks the account reauth_required', async () => {
    const { auth, accountId, microsoft: ms } = await graphSetup(server, { graphConsent: false });
    await expireAccessToken(auth, accountId);
    ms.failNext({
      status: 400,
      body: {
        error: 'invalid_grant',
        error_description: 'AADSTS65001: The user or administrator has not consented to use the application.',
        error_codes: [65001],
        suberror: 'consent_required',
      },
    });
    const err = await auth.getAccessToken(accountId).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_REAUTHORIZATION_REQUIRED', consentRequired: true });
    expect((await auth.getAccount(accountId)).status).toBe('reauth_required');
    const refreshes = ms.stats.refreshes;
    await expect(auth.getAccessToken(accountId)).rejects.toBeInstanceOf(ReauthorizationRequiredError);
    expect(ms.stats.refreshes).toBe(refreshes); // fails fast from now on
  });

  it('a watch orchestrator runs Graph watchers: two instances, each account watched once', async () => {
    const { auth, make, accountId, graph } = await graphSetup(server);
    const other = make(); // a second instance on the same store
    const received: string[] = [];
    const instances = ['a', 'b'].map((name) => ({ name, ...recordingApi() })); // each its own requests
    const orchestrators = instances.map(({ name, api }, i) =>
      (i === 0 ? auth : other).watchOrchestrator({
        holderId: name,
        leaseTtlMs: 600,
        mailbox: { transport: 'graph', api },
        onMessage: (id, message) => {
          received.push(`${name} ${id === accountId} ${message.subject}`);
        },
      }),
    );
    for (const o of orchestrators) o.add(accountId);
    await waitFor(() =>
      orchestrators.flatMap((o) => o.health()).some((h) => h.state === 'watching' && h.lastSuccessAt !== null)
        ? true
        : undefined,
    );
    graph.deliver({ subject: 'to the orchestrator' });
    await waitFor(() => (received.length > 0 ? true : undefined));
    // The instance watching polled the mailbox again: a second delivery would be in by now.
    const holder = orchestrators.findIndex((o) => o.health().some((h) => h.state === 'watching'));
    await waitForPollRounds(instances[holder]?.urls ?? []);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatch(/^[ab] true to the orchestrator$/);
    const watching = orchestrators.flatMap((o) => o.health()).filter((h) => h.state === 'watching');
    expect(watching).toHaveLength(1);
    for (const o of orchestrators) await o.stopAll();
  });

  it('an orchestrator chooses the transport per account: add(id, { client }) over its own mailbox options', async () => {
    // An IMAP-first account (the preset's default is IMAP): watched over Graph because add() says so.
    const { auth, accountId, graph } = await graphSetup(server, { mailTransport: 'imap' });
    expect(await auth.mailbox(accountId).transport()).toBe('imap');
    const received: string[] = [];
    const stopped: string[] = [];
    let fetched = 0;
    const countingFetch: typeof fetch = (input, init) => {
      fetched++;
      return fetch(input, init);
    };
    const orchestrator = auth.watchOrchestrator({
      leaseTtlMs: 600,
      mailbox: { api: { ...FAST_API, fetch: countingFetch }, imap: { connectionTimeoutMs: 50 } },
      onMessage: (_id, message) => {
        received.push(message.subject as string);
      },
      onStopped: (id, error) => stopped.push(`${id} ${(error as { code?: string }).code}`),
    });
    expect(() => orchestrator.add('other', { client: { transport: 'pop3' as never } })).toThrow(
      new InvalidArgumentError('transport must be one of "imap", "gmail-api", "graph" (got "pop3")'),
    );
    expect(() => orchestrator.add('other', { client: { api: { pollIntervalMs: 0 } } })).toThrow(
      InvalidArgumentError,
    );
    expect(() => orchestrator.add('other', { mailbox: '' })).toThrow(
      new InvalidArgumentError('mailbox must be a non-empty string'),
    );
    expect(orchestrator.health()).toEqual([]); // nothing was added by the refused calls
    // The account's api options are merged into the orchestrator's (its fetch and poll interval are kept).
    orchestrator.add(accountId, { client: { transport: 'graph', api: { pageSize: 10 } } });
    expect(() => orchestrator.add(accountId, { client: { transport: 'pop3' as never } })).toThrow(
      InvalidArgumentError, // checked even for an account already added
    );
    await waitFor(() =>
      orchestrator.health().some((h) => h.state === 'watching' && h.lastSuccessAt !== null)
        ? true
        : undefined,
    );
    graph.deliver({ subject: 'over graph' });
    await waitFor(() => (received.length > 0 ? true : undefined));
    expect(received).toEqual(['over graph']);
    expect(stopped).toEqual([]);
    expect(fetched).toBeGreaterThan(0);
    await orchestrator.stopAll();
  });

  it('fetchUnread orders by receivedDateTime: the newest max first by default, the oldest max first on request', async () => {
    const { auth, accountId, graph } = await graphSetup(server);
    const base = Date.now() - 60_000;
    for (let i = 0; i < 7; i++) graph.deliver({ subject: `m${i}`, receivedAt: new Date(base + i * 1000) });
    graph.deliver({ subject: 'read', isRead: true, receivedAt: new Date(base + 500) });
    const { api, urls } = recordingApi({ pageSize: 2 });
    const mailbox = auth.mailbox(accountId, { transport: 'graph', api });
    const lists = () => urls.filter((u) => u.pathname.endsWith('/messages'));
    const newest = await all(mailbox.fetchUnread({ max: 5, source: false }));
    expect(newest.map((m) => m.subject)).toEqual(['m6', 'm5', 'm4', 'm3', 'm2']);
    expect(lists()).toHaveLength(3); // pages of 2, 2 and 1
    expect(lists()[0]?.searchParams.get('$orderby')).toBe('receivedDateTime desc');
    // Graph wants the $orderby property first in $filter (else 400 InefficientFilter, which the fake enforces).
    expect(lists()[0]?.searchParams.get('$filter')).toBe(
      'receivedDateTime ge 1900-01-01T00:00:00Z and isRead eq false',
    );
    urls.length = 0;
    const oldest = await all(mailbox.fetchUnread({ max: 5, order: 'oldest' }));
    expect(oldest.map((m) => m.subject)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(oldest[0]?.source?.toString()).toContain('Body of m0');
    expect(lists()).toHaveLength(3);
    expect(lists()[0]?.searchParams.get('$orderby')).toBe('receivedDateTime asc');
    expect(lists()[1]?.searchParams.get('$orderby')).toBe('receivedDateTime asc'); // the next link keeps it
    expect((await all(mailbox.fetchUnread({ max: 50, order: 'oldest' }))).map((m) => m.subject)).toEqual([
      'm0',
      'm1',
      'm2',
      'm3',
      'm4',
      'm5',
      'm6',
    ]);
  });

  it('the emulation refuses what Graph refuses: $orderby not first in $filter (InefficientFilter), an unknown filter', async () => {
    const { auth, accountId, graph } = await graphSetup(server);
    graph.deliver({ subject: 'old', receivedAt: new Date(Date.now() - 5000) });
    graph.deliver({ subject: 'new' });
    const { accessToken } = await auth.getAccessToken(accountId, { resource: 'graph' });
    const list = async (query: Record<string, string>) => {
      const url = new URL('https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messages');
      for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
      const res = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` } });
      const body = (await res.json()) as { value?: { subject: string }[]; error?: { code: string } };
      return { status: res.status, code: body.error?.code, subjects: body.value?.map((m) => m.subject) };
    };
    expect(await list({ $filter: 'isRead eq false', $orderby: 'receivedDateTime asc' })).toEqual({
      status: 400,
      code: 'InefficientFilter',
      subjects: undefined,
    });
    expect(
      await list({
        $filter: 'receivedDateTime ge 1900-01-01T00:00:00Z and isRead eq false',
        $orderby: 'receivedDateTime asc',
      }),
    ).toEqual({ status: 200, code: undefined, subjects: ['old', 'new'] });
    expect(await list({ $orderby: 'receivedDateTime' })).toMatchObject({
      status: 200,
      subjects: ['old', 'new'],
    });
    expect(await list({ $filter: 'isRead eq false' })).toMatchObject({
      status: 200,
      subjects: ['new', 'old'],
    });
    expect(await list({ $filter: "subject eq 'x'" })).toMatchObject({
      status: 400,
      code: 'ErrorInvalidUrlQueryFilter',
    });
    expect(await list({ $orderby: 'subject desc' })).toMatchObject({ status: 400, code: 'BadRequest' });
  });

  /** {@link graphSetup} with access tokens that last 3 s, refreshed within 1 s of their expiry. */
  function shortLived(options: { mailTransport?: 'graph' } = {}) {
    return graphSetup(server, { ...options, accessTokenTtlS: 3, minValidityMs: 1000 });
  }

  /** Run `rounds` rounds, each once the previous round's tokens need a refresh: Graph reads and the primary token. */
  async function tokenRounds(
    auth: Awaited<ReturnType<typeof graphSetup>>['auth'],
    accountId: string,
    rounds: number,
  ) {
    const { api, bearers } = recordingApi();
    const primaries: string[] = [];
    const mailbox = auth.mailbox(accountId, { transport: 'graph', api });
    for (let round = 0; round < rounds; round++) {
      if (round > 0) {
        // Wait until every token of the last round is within minValidityMs (1 s) of its expiry.
        const { tokens } = await auth.persistence.load(accountId);
        const expiries = [tokens?.expiresAt, tokens?.resource('graph')?.expiresAt]
          .filter((d): d is Date => d instanceof Date)
          .map((d) => d.getTime());
        await new Promise((r) => setTimeout(r, Math.max(...expiries) - 1000 - Date.now() + 50));
      }
      expect(await all(mailbox.fetchUnread({ source: false }))).toHaveLength(1);
      // The host also uses the primary token (IMAP, its own calls, refreshExpiring...).
      primaries.push((await auth.getAccessToken(accountId)).accessToken);
    }
    return { bearers, primaries };
  }

  it('whether the primary token is a Graph token is read from the first scope that names a resource', () => {
    expect(primaryTokenIsGraph([...MICROSOFT_GRAPH_SCOPES, 'offline_access', 'openid', 'email'])).toBe(true);
    expect(primaryTokenIsGraph(['openid', 'profile', 'https://graph.microsoft.com/Mail.Read'])).toBe(true);
    // Microsoft reads an unqualified scope as Graph's (token responses often list Graph scopes so).
    expect(primaryTokenIsGraph(['Mail.ReadWrite', 'Mail.Send', 'openid'])).toBe(true);
    expect(
      primaryTokenIsGraph([
        'https://outlook.office.com/IMAP.AccessAsUser.All',
        'https://outlook.office.com/SMTP.Send',
        ...MICROSOFT_GRAPH_SCOPES,
      ]),
    ).toBe(false);
    expect(primaryTokenIsGraph(['api://contoso/read'])).toBe(false);
    expect(primaryTokenIsGraph(['offline_access', 'openid'])).toBe(false);
    expect(primaryTokenIsGraph([])).toBe(false);
  });

  it('a Graph-consented account: the Graph transport uses the primary token, one token request per expiry', async () => {
    const { auth, accountId, graph, microsoft: ms } = await shortLived({ mailTransport: 'graph' });
    expect((await auth.getAccount(accountId)).scopes[0]).toBe('https://graph.microsoft.com/Mail.ReadWrite');
    graph.deliver({ subject: 'hello' });
    const { bearers, primaries } = await tokenRounds(auth, accountId, 3);
    // The token from the code exchange, then one refresh per expiry, shared by Graph and every other use.
    expect(ms.stats.tokenRequests).toBe(2);
    expect(new Set(primaries).size).toBe(3);
    expect([...new Set(bearers)]).toEqual(primaries);
    expect(graph.stats.unauthorized).toBe(0);
    expect((await auth.persistence.load(accountId)).tokens?.resource('graph')).toBeUndefined();
  }, 20_000);

  it('an Outlook-consented account (IMAP, Graph as an extra consent) still gets a separate Graph resource token', async () => {
    const { auth, accountId, graph, microsoft: ms } = await shortLived();
    expect((await auth.getAccount(accountId)).scopes[0]).toBe(
      'https://outlook.office.com/IMAP.AccessAsUser.All',
    );
    graph.deliver({ subject: 'hello' });
    const { bearers, primaries } = await tokenRounds(auth, accountId, 3);
    // Round one: the Graph token (the primary one comes from the code exchange); then both, per expiry.
    expect(ms.stats.tokenRequests).toBe(5);
    const graphTokens = [...new Set(bearers)];
    expect(graphTokens).toHaveLength(3);
    for (const token of graphTokens) {
      expect(primaries).not.toContain(token);
      expect(ms.accessTokenInfo(token)?.scopes[0]).toBe('https://graph.microsoft.com/Mail.ReadWrite');
    }
    const { tokens } = await auth.persistence.load(accountId);
    expect(tokens?.resource('graph')?.accessToken).toBe(graphTokens[2]);
    expect(graph.stats.unauthorized).toBe(0);
  }, 20_000);
});
