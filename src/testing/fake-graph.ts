/**
 * An emulated Microsoft Graph mail API for msw with an in-memory mailbox: mail folders, folder messages with
 * `$filter` (`isRead`, `receivedDateTime`) and `$orderby=receivedDateTime` (Graph's `InefficientFilter` rule
 * enforced) paged by `@odata.nextLink`, `$value` (MIME), `PATCH isRead`, `/me/sendMail` (MIME or JSON), and
 * delta queries (`@odata.nextLink` / `@odata.deltaLink`, `changeType`, `receivedDateTime` filter,
 * 410 for an expired delta token), with Graph's response and error shapes.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { http, type RequestHandler } from 'msw';
import {
  type DeltaState,
  decodeDeltaState,
  deltaChanges,
  encodeDeltaState,
  graphError,
  graphTime,
  parseFilter,
  parseOrderBy,
} from './fake-graph-odata.js';
import { buildRaw, FakeMailApiBase, type FakeMailApiOptions } from './fake-mail-api.js';

const ROOT = 'https://graph.microsoft.com/v1.0';
const GRAPH_SCOPE = 'https://graph.microsoft.com/';
const INBOX_ID = 'AAMkAGI2TAAA=inbox';

/**
 * A message in the emulated Graph mailbox.
 *
 * @example
 * ```ts
 * expect(graph.message(id)?.isRead).toBe(true);
 * ```
 */
export interface FakeGraphMessage {
  /** Graph's message id. */
  readonly id: string;
  /** The folder it is in. */
  readonly folder: 'inbox' | 'sentitems';
  /** The subject. */
  readonly subject: string;
  /** The sender. */
  readonly from: {
    /** The display name. */
    readonly name?: string;
    /** The address. */
    readonly address: string;
  };
  /** The recipients. */
  readonly to: readonly {
    /** The display name. */
    readonly name?: string;
    /** The address. */
    readonly address: string;
  }[];
  /** When it arrived, in Graph's format (whole seconds, `Z`). */
  readonly receivedDateTime: string;
  /** The `Message-ID` header. */
  readonly internetMessageId: string;
  /** Whether it was read. */
  isRead: boolean;
  /** The MIME message (what `$value` returns). */
  readonly mime: Buffer;
  /** The change sequence at creation (for delta). */
  readonly createdSeq: number;
  /** The change sequence at the last change (for delta). */
  changedSeq: number;
}

/**
 * What {@link FakeGraph.deliver} puts in the inbox.
 *
 * @example
 * ```ts
 * graph.deliver({ subject: 'Quarterly report', from: 'finance@contoso.com' });
 * ```
 */
export interface FakeGraphDelivery {
  /** The subject. @default 'Hello' */
  readonly subject?: string;
  /** The sender's address. @default 'sender@contoso.com' */
  readonly from?: string;
  /** The plain-text body. @default `Body of <subject>` */
  readonly text?: string;
  /** @default false */
  readonly isRead?: boolean;
  /** @default now */
  readonly receivedAt?: Date;
}

/**
 * A message sent through `/me/sendMail`, as the fake received it.
 *
 * @example
 * ```ts
 * expect(graph.sent[0]?.mime.toString()).toContain('Subject: Hi');
 * ```
 */
export interface FakeGraphSent {
  /** `mime` for a base64 MIME body, `json` for a JSON `message`. */
  readonly format: 'mime' | 'json';
  /** The MIME message (decoded), for `mime`. */
  readonly mime: Buffer;
  /** The JSON body, for `json`. */
  readonly json: unknown;
}

/**
 * An emulated Microsoft Graph mail API (at `https://graph.microsoft.com/v1.0`) with an in-memory mailbox you
 * fill with `deliver()` and inspect with `messages()`, `message(id)` and `sent`. Get one with
 * {@link fakeGraph}.
 *
 * @example
 * ```ts
 * const graph = fakeGraph({ tokens: microsoftFake });
 * server.use(...graph.handlers());
 * graph.deliver({ subject: 'Hello' });
 * graph.throttleNext(1, { retryAfterS: 1 }); // 429 ApplicationThrottled with Retry-After: 1
 * ```
 */
export class FakeGraph extends FakeMailApiBase {
  /** Messages sent through `/me/sendMail`, in order. */
  readonly sent: FakeGraphSent[] = [];
  readonly #messages = new Map<string, FakeGraphMessage>();
  /** Ids deleted at a sequence (delta reports them as `@removed`). */
  readonly #removed = new Map<string, number>();
  #seq = 0;
  #deltaFloor = 0;

  /** The msw handlers: `setupServer(...graph.handlers())`. */
  handlers(): RequestHandler[] {
    return [http.all(`${ROOT}/*`, ({ request }) => this.#handle(request))];
  }

  /** Put a message in the inbox; returns its id. */
  deliver(delivery: FakeGraphDelivery = {}): string {
    const id = `AAMkAGI2${randomBytes(12).toString('base64url')}=`;
    const received = delivery.receivedAt ?? new Date();
    const subject = delivery.subject ?? 'Hello';
    const from = delivery.from ?? 'sender@contoso.com';
    const internetMessageId = `<${randomBytes(6).toString('hex')}@contoso.com>`;
    const seq = ++this.#seq;
    this.#messages.set(id, {
      id,
      folder: 'inbox',
      subject,
      from: { address: from },
      to: [{ address: this.email }],
      receivedDateTime: graphTime(received),
      internetMessageId,
      isRead: delivery.isRead ?? false,
      mime: buildRaw({
        from,
        to: this.email,
        subject,
        text: delivery.text ?? `Body of ${subject}`,
        date: received,
        messageId: internetMessageId,
      }),
      createdSeq: seq,
      changedSeq: seq,
    });
    return id;
  }

  /** Every message of the inbox, newest first (as Graph lists them). */
  messages(): FakeGraphMessage[] {
    return [...this.#messages.values()]
      .filter((m) => m.folder === 'inbox')
      .sort((a, b) => b.receivedDateTime.localeCompare(a.receivedDateTime) || b.createdSeq - a.createdSeq);
  }

  /** One message, or `undefined`. */
  message(id: string): FakeGraphMessage | undefined {
    return this.#messages.get(id);
  }

  /** Mark a message read or unread as another client would (a change delta reports). */
  setRead(id: string, isRead: boolean): void {
    const message = this.#messages.get(id);
    if (message === undefined) return;
    message.isRead = isRead;
    message.changedSeq = ++this.#seq;
  }

  /** Delete a message (delta reports it as `@removed`). */
  remove(id: string): void {
    if (this.#messages.delete(id)) this.#removed.set(id, ++this.#seq);
  }

  /** Make every delta and skip token issued so far fail with 410 Gone, as an expired sync state does. */
  expireDeltaTokens(): this {
    this.#deltaFloor = this.#seq + 1;
    return this;
  }

  protected throttled(status: 429 | 503): Record<string, unknown> {
    return status === 429
      ? graphError('ApplicationThrottled', 'Application is over its MailboxConcurrency limit.')
      : graphError('ServiceUnavailable', 'Service Unavailable');
  }

  protected unauthorized(reason: 'expired' | 'audience' | 'missing'): Response {
    const message =
      reason === 'audience'
        ? 'Access token validation failure. Invalid audience.'
        : reason === 'missing'
          ? 'Access token is empty.'
          : 'Lifetime validation failed, the token is expired.';
    return this.json(graphError('InvalidAuthenticationToken', message), 401, {
      'www-authenticate':
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
    });
  }

  protected forbidden(): Response {
    return this.json(
      graphError('ErrorAccessDenied', 'Access is denied. Check credentials and try again.'),
      403,
    );
  }

  protected allowed(scopes: readonly string[], operation: string): boolean {
    const graph = scopes.filter((s) => s.startsWith(GRAPH_SCOPE)).map((s) => s.slice(GRAPH_SCOPE.length));
    if (operation === 'sendMail') return graph.includes('Mail.Send');
    if (operation === 'update message') return graph.includes('Mail.ReadWrite');
    return graph.includes('Mail.ReadWrite') || graph.includes('Mail.Read');
  }

  /** A token without any Graph scope is for another resource: Graph answers 401, not 403. */
  protected override audienceMismatch(scopes: readonly string[]): boolean {
    return !scopes.some((s) => s.startsWith(GRAPH_SCOPE));
  }

  #view(message: FakeGraphMessage, select: string | null): Record<string, unknown> {
    const full: Record<string, unknown> = {
      '@odata.etag': `W/"CQAAABYAAAA${message.changedSeq}"`,
      id: message.id,
      createdDateTime: message.receivedDateTime,
      receivedDateTime: message.receivedDateTime,
      subject: message.subject,
      internetMessageId: message.internetMessageId,
      isRead: message.isRead,
      from: {
        emailAddress: { name: message.from.name ?? message.from.address, address: message.from.address },
      },
      toRecipients: message.to.map((t) => ({
        emailAddress: { name: t.name ?? t.address, address: t.address },
      })),
      flag: { flagStatus: 'notFlagged' },
      parentFolderId: INBOX_ID,
    };
    if (select === null) return full;
    const wanted = new Set(['id', ...select.split(',').map((s) => s.trim())]);
    return Object.fromEntries(Object.entries(full).filter(([k]) => wanted.has(k) || k === '@odata.etag'));
  }

  #folder(segment: string): string | undefined {
    const name = decodeURIComponent(segment);
    if (name.toLowerCase() === 'inbox' || name === INBOX_ID) return 'inbox';
    return undefined;
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.replace(/^\/v1\.0/, '');
    const q = url.searchParams;
    const method = request.method;
    const notFound = () =>
      this.json(graphError('ErrorItemNotFound', 'The specified object was not found in the store.'), 404);
    const folder = /^\/me\/mailFolders\/([^/]+)$/.exec(path);
    const list = /^\/me\/mailFolders\/([^/]+)\/messages$/.exec(path);
    // Graph's own links name the folder with the OData key syntax: /me/mailFolders('inbox')/messages/delta.
    const delta = /^\/me\/mail[Ff]olders(?:\/([^/]+)|\('([^']+)'\))\/messages\/delta$/.exec(path);
    const mime = /^\/me\/messages\/([^/]+)\/\$value$/.exec(path);
    const one = /^\/me\/messages\/([^/]+)$/.exec(path);
    if (method === 'GET' && folder !== null) {
      const denied = await this.gate(request, 'get mail folder');
      if (denied !== undefined) return denied;
      if (this.#folder(folder[1] as string) === undefined) return notFound();
      const inbox = this.messages();
      return this.json({
        id: INBOX_ID,
        displayName: 'Inbox',
        parentFolderId: 'AAMkAGI2TAAA=root',
        childFolderCount: 0,
        unreadItemCount: inbox.filter((m) => !m.isRead).length,
        totalItemCount: inbox.length,
      });
    }
    if (method === 'GET' && list !== null) {
      const denied = await this.gate(request, 'list messages');
      if (denied !== undefined) return denied;
      if (this.#folder(list[1] as string) === undefined) return notFound();
      const filter = q.get('$filter');
      const clauses = filter === null ? [] : parseFilter(filter);
      if (clauses === undefined) {
        return this.json(
          graphError('ErrorInvalidUrlQueryFilter', 'The query filter contains one or more invalid nodes.'),
          400,
        );
      }
      const orderby = q.get('$orderby');
      const order = orderby === null ? [] : parseOrderBy(orderby);
      if (order === undefined) {
        return this.json(
          graphError(
            'BadRequest',
            `Could not find a property named '${orderby}' on type 'microsoft.graph.message'.`,
          ),
          400,
        );
      }
      // Graph: with both, the $orderby properties must also be the first ones of $filter, in the same order.
      if (clauses.length > 0 && order.some((o, i) => clauses[i]?.property !== o.property)) {
        return this.json(
          graphError('InefficientFilter', 'The restriction or sort order is too complex for this operation.'),
          400,
        );
      }
      const top = Math.min(Number(q.get('$top') ?? 10) || 10, 1000);
      const skip = Number(q.get('$skip') ?? 0) || 0;
      // messages() is newest first: the default order, and `receivedDateTime desc`.
      const matching = this.messages().filter((m) => clauses.every((c) => c.test(m)));
      const items = order[0]?.descending === false ? matching.reverse() : matching;
      const slice = items.slice(skip, skip + top);
      const next = new URL(url);
      next.searchParams.set('$skip', String(skip + top));
      return this.json({
        '@odata.context': `${ROOT}/$metadata#users('${this.email}')/mailFolders('inbox')/messages`,
        value: slice.map((m) => this.#view(m, q.get('$select'))),
        ...(skip + top < items.length ? { '@odata.nextLink': next.href } : {}),
      });
    }
    if (method === 'GET' && delta !== null) {
      const denied = await this.gate(request, 'messages delta');
      if (denied !== undefined) return denied;
      return this.#delta(url, (delta[1] ?? delta[2]) as string, request);
    }
    if (method === 'GET' && mime !== null) {
      const denied = await this.gate(request, 'get message MIME');
      if (denied !== undefined) return denied;
      const message = this.#messages.get(decodeURIComponent(mime[1] as string));
      if (message === undefined) return notFound();
      return new Response(new Uint8Array(message.mime), {
        status: 200,
        headers: { 'content-type': 'text/plain', date: new Date().toUTCString() },
      });
    }
    if (method === 'PATCH' && one !== null) {
      const denied = await this.gate(request, 'update message');
      if (denied !== undefined) return denied;
      const message = this.#messages.get(decodeURIComponent(one[1] as string));
      if (message === undefined) return notFound();
      const body = (await request.json().catch(() => ({}))) as { isRead?: unknown };
      if (typeof body.isRead === 'boolean' && body.isRead !== message.isRead)
        this.setRead(message.id, body.isRead);
      return this.json(this.#view(message, null));
    }
    if (path === '/me/sendMail' && method === 'POST') {
      const denied = await this.gate(request, 'sendMail');
      if (denied !== undefined) return denied;
      const type = request.headers.get('content-type') ?? '';
      const text = await request.text();
      if (type.startsWith('text/plain')) {
        const mime = Buffer.from(text, 'base64');
        const header = mime.toString('utf8').split(/\r?\n\r?\n/, 1)[0] ?? '';
        if (text.trim() === '' || !/^(to|cc|bcc):\s*\S/im.test(header)) {
          return this.json(
            graphError('ErrorMimeContentInvalidBase64String', 'Invalid base64 string for MIME content.'),
            400,
          );
        }
        this.sent.push({ format: 'mime', mime, json: undefined });
      } else if (type.startsWith('application/json')) {
        const json = JSON.parse(text || '{}') as { message?: unknown };
        if (typeof json.message !== 'object' || json.message === null) {
          return this.json(graphError('ErrorInvalidRecipients', 'At least one recipient is not valid.'), 400);
        }
        this.sent.push({ format: 'json', mime: Buffer.alloc(0), json });
      } else {
        return this.json(graphError('RequestBodyRead', 'Unsupported content type.'), 415);
      }
      return new Response(null, { status: 202, headers: { date: new Date().toUTCString() } });
    }
    return this.json(
      graphError('BadRequest', `Resource not found for the segment '${path.split('/').pop()}'.`),
      400,
    );
  }

  #delta(url: URL, segment: string, request: Request): Response {
    const q = url.searchParams;
    const token = q.get('$deltatoken') ?? q.get('$skiptoken');
    let state: DeltaState;
    if (token !== null) {
      const decoded = decodeDeltaState(token);
      if (decoded === undefined || decoded.upTo < this.#deltaFloor) {
        return this.json(graphError('SyncStateNotFound', 'The sync state generation is not found.'), 410);
      }
      state =
        q.get('$deltatoken') !== null
          ? { ...decoded, after: decoded.upTo, upTo: this.#seq, offset: 0 }
          : decoded;
    } else {
      const folder = this.#folder(segment);
      if (folder === undefined) {
        return this.json(
          graphError('ErrorItemNotFound', 'The specified object was not found in the store.'),
          404,
        );
      }
      const filter = q.get('$filter');
      let since: number | null = null;
      if (filter !== null) {
        const m = /^receivedDateTime (ge|gt) (\S+)$/.exec(filter.replace(/\s+/g, ' ').trim());
        if (m === null || Number.isNaN(Date.parse(m[2] as string))) {
          return this.json(
            graphError('ErrorInvalidUrlQueryFilter', 'The query filter contains one or more invalid nodes.'),
            400,
          );
        }
        since = Date.parse(m[2] as string) + (m[1] === 'gt' ? 1 : 0);
      }
      state = {
        after: 0,
        upTo: this.#seq,
        offset: 0,
        since,
        changeType: q.get('changeType'),
        folder,
        select: q.get('$select'),
      };
    }
    const pageSize =
      Number(/odata\.maxpagesize=(\d+)/.exec(request.headers.get('prefer') ?? '')?.[1] ?? 10) || 10;
    const changes = deltaChanges(state, this.#messages.values(), this.#removed, (m) =>
      this.#view(m, state.select),
    );
    const slice = changes.slice(state.offset, state.offset + pageSize);
    const base = `${ROOT}/me/mailFolders('${state.folder}')/messages/delta`;
    const more = state.offset + pageSize < changes.length;
    const link = more
      ? {
          '@odata.nextLink': `${base}?$skiptoken=${encodeDeltaState({ ...state, offset: state.offset + pageSize })}`,
        }
      : { '@odata.deltaLink': `${base}?$deltatoken=${encodeDeltaState({ ...state, offset: 0 })}` };
    return this.json({
      '@odata.context': `${ROOT}/$metadata#Collection(message)`,
      value: slice,
      ...link,
    });
  }
}

/**
 * An emulated Microsoft Graph mail API for msw, with an in-memory mailbox the test fills and inspects. With
 * `tokens` (a `fakeMicrosoft()`), only Graph access tokens that fake issued are accepted: an Outlook (IMAP)
 * token gets Graph's 401 `InvalidAuthenticationToken`, as at Microsoft.
 *
 * @example
 * ```ts
 * import { setupServer } from 'msw/node';
 * import { fakeMicrosoft, fakeGraph } from 'oauth-mailbox/testing';
 * const microsoft = fakeMicrosoft({ clientId: 'test-client' });
 * const graph = fakeGraph({ tokens: microsoft, email: 'grace@contoso.com' });
 * const server = setupServer(...microsoft.handlers(), ...graph.handlers());
 * server.listen({ onUnhandledRequest: 'error' });
 * graph.deliver({ subject: 'Welcome' });
 * const mailbox = auth.mailbox(accountId, { transport: 'graph' });
 * for await (const m of mailbox.fetchUnread()) await mailbox.markAsRead(m.id);
 * expect(graph.messages()[0]?.isRead).toBe(true);
 * ```
 */
export function fakeGraph(options: FakeMailApiOptions = {}): FakeGraph {
  return new FakeGraph(options);
}
