/**
 * An emulated Gmail API for msw with an in-memory mailbox: `users.getProfile`, `users.messages.list` / `get`
 * / `modify` / `send` (JSON `raw` and media upload) and `users.history.list`, with Gmail's response and
 * error shapes (paging, 401, 403, 404 for an expired `startHistoryId`, 429 on demand).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { http, type RequestHandler } from 'msw';
import { buildRaw, FakeMailApiBase, type FakeMailApiOptions } from './fake-mail-api.js';

const ORIGIN = 'https://gmail.googleapis.com';
const READ_SCOPES = [
  'https://mail.google.com/',
  'https://www.googleapis.com/auth/gmail.modify',
  'https://www.googleapis.com/auth/gmail.readonly',
];
const SEND_SCOPES = [
  'https://mail.google.com/',
  'https://www.googleapis.com/auth/gmail.modify',
  'https://www.googleapis.com/auth/gmail.send',
  'https://www.googleapis.com/auth/gmail.compose',
];

/**
 * A message in the emulated Gmail mailbox.
 *
 * @example
 * ```ts
 * const message: FakeGmailMessage | undefined = gmail.message(id);
 * expect(message?.labelIds).not.toContain('UNREAD');
 * ```
 */
export interface FakeGmailMessage {
  /** Gmail's message id (16 hex digits). */
  readonly id: string;
  /** The thread id (each message is its own thread here). */
  readonly threadId: string;
  /** Its labels: `INBOX`, `UNREAD`, `SENT`, `STARRED`, ... */
  labelIds: string[];
  /** The RFC 822 message. */
  readonly raw: Buffer;
  /** When it arrived, in epoch milliseconds. */
  readonly internalDate: number;
  /** The history id of its arrival. */
  readonly historyId: number;
}

/**
 * What {@link FakeGmailApi.deliver} puts in the mailbox.
 *
 * @example
 * ```ts
 * gmail.deliver({ subject: 'Invoice', from: 'billing@example.com', text: 'Hello' });
 * ```
 */
export interface FakeGmailDelivery {
  /** The subject. @default 'Hello' */
  readonly subject?: string;
  /** The `From` header. @default 'sender@example.com' */
  readonly from?: string;
  /** The `To` header. @default the mailbox's address */
  readonly to?: string;
  /** The plain-text body. @default `Body of <subject>` */
  readonly text?: string;
  /** A whole RFC 822 message instead of the fields above. */
  readonly raw?: Buffer | string;
  /** @default ['INBOX', 'UNREAD'] */
  readonly labelIds?: readonly string[];
  /** @default now */
  readonly date?: Date;
}

interface HistoryRecord {
  readonly id: number;
  readonly messagesAdded?: { message: { id: string; threadId: string; labelIds: string[] } }[];
  readonly labelsRemoved?: {
    message: { id: string; threadId: string; labelIds: string[] };
    labelIds: string[];
  }[];
  readonly labelsAdded?: {
    message: { id: string; threadId: string; labelIds: string[] };
    labelIds: string[];
  }[];
}

function gmailError(
  status: number,
  reason: string,
  message: string,
  statusText: string,
): Record<string, unknown> {
  return {
    error: {
      code: status,
      message,
      errors: [{ message, domain: 'global', reason }],
      status: statusText,
    },
  };
}

function page<T>(
  items: readonly T[],
  token: string | null,
  size: number,
): { slice: T[]; next: string | undefined } {
  const offset = token === null ? 0 : Number.parseInt(token, 36) || 0;
  const slice = items.slice(offset, offset + size);
  return { slice, next: offset + size < items.length ? (offset + size).toString(36) : undefined };
}

/**
 * An emulated Gmail API (at `https://gmail.googleapis.com`) with an in-memory mailbox you fill with
 * `deliver()` and inspect with `messages()`, `message(id)` and `sent`. Get one with {@link fakeGmailApi}.
 *
 * @example
 * ```ts
 * const gmail = fakeGmailApi({ tokens: google });
 * server.use(...gmail.handlers());
 * gmail.deliver({ subject: 'Hello' });
 * gmail.throttleNext(1, { retryAfterS: 1 }); // the next request gets 429 with Retry-After: 1
 * ```
 */
export class FakeGmailApi extends FakeMailApiBase {
  /** Messages sent through `users.messages.send`, in order (also in the mailbox with the `SENT` label). */
  readonly sent: FakeGmailMessage[] = [];
  readonly #messages = new Map<string, FakeGmailMessage>();
  readonly #history: HistoryRecord[] = [];
  #historyId = 1000;
  #historyFloor = 0;

  /** The msw handlers: `setupServer(...gmail.handlers())`. */
  handlers(): RequestHandler[] {
    return [http.all(`${ORIGIN}/*`, ({ request }) => this.#handle(request))];
  }

  /** Put a message in the mailbox (a new history record, as a delivery makes); returns its id. */
  deliver(delivery: FakeGmailDelivery = {}): string {
    const date = delivery.date ?? new Date();
    const id = randomBytes(8).toString('hex');
    const raw =
      delivery.raw === undefined
        ? buildRaw({
            from: delivery.from ?? 'sender@example.com',
            to: delivery.to ?? this.email,
            subject: delivery.subject ?? 'Hello',
            text: delivery.text ?? `Body of ${delivery.subject ?? 'Hello'}`,
            date,
            messageId: `<${id}@mail.example.com>`,
          })
        : Buffer.from(delivery.raw);
    this.#add(id, raw, [...(delivery.labelIds ?? ['INBOX', 'UNREAD'])], date.getTime());
    return id;
  }

  /** Every message, newest first (as Gmail lists them). */
  messages(): FakeGmailMessage[] {
    return [...this.#messages.values()].sort(
      (a, b) => b.internalDate - a.internalDate || b.historyId - a.historyId,
    );
  }

  /** One message, or `undefined`. */
  message(id: string): FakeGmailMessage | undefined {
    return this.#messages.get(id);
  }

  /** Delete a message (as the user would, between a listing and a fetch). */
  remove(id: string): void {
    this.#messages.delete(id);
  }

  /** The mailbox's current history id. */
  get historyId(): string {
    return String(this.#historyId);
  }

  /** Forget the history so far: a `startHistoryId` from before now gets Gmail's 404. */
  expireHistory(): this {
    this.#historyFloor = this.#historyId + 1;
    return this;
  }

  protected throttled(status: 429 | 503): Record<string, unknown> {
    return status === 429
      ? gmailError(429, 'rateLimitExceeded', 'Too many concurrent requests for user.', 'RESOURCE_EXHAUSTED')
      : gmailError(503, 'backendError', 'The service is currently unavailable.', 'UNAVAILABLE');
  }

  protected unauthorized(): Response {
    return this.json(
      {
        error: {
          code: 401,
          message:
            'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
          errors: [
            {
              message: 'Invalid Credentials',
              domain: 'global',
              reason: 'authError',
              location: 'Authorization',
              locationType: 'header',
            },
          ],
          status: 'UNAUTHENTICATED',
        },
      },
      401,
      { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
    );
  }

  protected forbidden(): Response {
    return this.json(
      gmailError(
        403,
        'insufficientPermissions',
        'Request had insufficient authentication scopes.',
        'PERMISSION_DENIED',
      ),
      403,
    );
  }

  protected allowed(scopes: readonly string[], operation: string): boolean {
    const needed = operation === 'users.messages.send' ? SEND_SCOPES : READ_SCOPES;
    return scopes.some((s) => needed.includes(s));
  }

  #add(id: string, raw: Buffer, labelIds: string[], internalDate: number): FakeGmailMessage {
    const historyId = ++this.#historyId;
    const message = { id, threadId: id, labelIds, raw, internalDate, historyId };
    this.#messages.set(id, message);
    this.#history.push({
      id: historyId,
      messagesAdded: [{ message: { id, threadId: id, labelIds: [...labelIds] } }],
    });
    return message;
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname;
    const q = url.searchParams;
    const user = /^\/(?:upload\/)?gmail\/v1\/users\/([^/]+)\//.exec(path)?.[1];
    const rest = path.replace(/^\/(?:upload\/)?gmail\/v1\/users\/[^/]+/, '');
    const method = request.method;
    const route = ((): { operation: string; id?: string } | undefined => {
      if (method === 'GET' && rest === '/profile') return { operation: 'users.getProfile' };
      if (method === 'GET' && rest === '/messages') return { operation: 'users.messages.list' };
      if (method === 'POST' && rest === '/messages/send') return { operation: 'users.messages.send' };
      if (method === 'GET' && rest === '/history') return { operation: 'users.history.list' };
      const one = /^\/messages\/([^/]+)(\/modify)?$/.exec(rest);
      if (one !== null && method === 'GET' && one[2] === undefined)
        return { operation: 'users.messages.get', id: one[1] as string };
      if (one !== null && method === 'POST' && one[2] !== undefined)
        return { operation: 'users.messages.modify', id: one[1] as string };
      return undefined;
    })();
    if (route === undefined) {
      return this.json(gmailError(404, 'notFound', 'Requested entity was not found.', 'NOT_FOUND'), 404);
    }
    const denied = await this.gate(request, route.operation);
    if (denied !== undefined) return denied;
    if (user !== 'me' && decodeURIComponent(user ?? '') !== this.email) {
      return this.json(
        gmailError(403, 'forbidden', `Delegation denied for ${this.email}`, 'PERMISSION_DENIED'),
        403,
      );
    }
    const notFound = () =>
      this.json(gmailError(404, 'notFound', 'Requested entity was not found.', 'NOT_FOUND'), 404);
    switch (route.operation) {
      case 'users.getProfile':
        return this.json({
          emailAddress: this.email,
          messagesTotal: this.#messages.size,
          threadsTotal: this.#messages.size,
          historyId: String(this.#historyId),
        });
      case 'users.messages.list': {
        const labels = q.getAll('labelIds');
        const search = q.get('q') ?? '';
        const unread = search.includes('is:unread');
        // `after:<epoch seconds>`: received at or after that second.
        const after = /(?:^|\s)after:(\d+)(?:\s|$)/.exec(search);
        const since = after === null ? 0 : Number(after[1]) * 1000;
        const size = Math.min(Number(q.get('maxResults') ?? 100) || 100, 500);
        const matching = this.messages().filter(
          (m) =>
            labels.every((l) => m.labelIds.includes(l)) &&
            (!unread || m.labelIds.includes('UNREAD')) &&
            m.internalDate >= since,
        );
        const { slice, next } = page(matching, q.get('pageToken'), size);
        return this.json({
          ...(slice.length === 0 ? {} : { messages: slice.map((m) => ({ id: m.id, threadId: m.threadId })) }),
          ...(next === undefined ? {} : { nextPageToken: next }),
          resultSizeEstimate: matching.length,
        });
      }
      case 'users.messages.get': {
        const message = this.#messages.get(route.id as string);
        if (message === undefined) return notFound();
        const base = {
          id: message.id,
          threadId: message.threadId,
          labelIds: message.labelIds,
          snippet: '',
          sizeEstimate: message.raw.length,
          historyId: String(message.historyId),
          internalDate: String(message.internalDate),
        };
        if (q.get('format') === 'raw') return this.json({ ...base, raw: message.raw.toString('base64url') });
        const wanted = q.getAll('metadataHeaders').map((h) => h.toLowerCase());
        const text = message.raw.toString('utf8');
        const head = text.slice(
          0,
          text.search(/\r?\n\r?\n/) === -1 ? text.length : text.search(/\r?\n\r?\n/),
        );
        const headers = head
          .replace(/\r?\n[ \t]+/g, ' ')
          .split(/\r?\n/)
          .map((line) => ({
            name: line.slice(0, line.indexOf(':')),
            value: line.slice(line.indexOf(':') + 1).trim(),
          }))
          .filter((h) => h.name !== '' && (wanted.length === 0 || wanted.includes(h.name.toLowerCase())));
        return this.json({ ...base, payload: { partId: '', mimeType: 'text/plain', filename: '', headers } });
      }
      case 'users.messages.modify': {
        const message = this.#messages.get(route.id as string);
        if (message === undefined) return notFound();
        const body = (await request.json().catch(() => ({}))) as {
          addLabelIds?: string[];
          removeLabelIds?: string[];
        };
        const removed = (body.removeLabelIds ?? []).filter((l) => message.labelIds.includes(l));
        const added = (body.addLabelIds ?? []).filter((l) => !message.labelIds.includes(l));
        message.labelIds = [...message.labelIds.filter((l) => !removed.includes(l)), ...added];
        const ref = { id: message.id, threadId: message.threadId, labelIds: [...message.labelIds] };
        if (removed.length > 0 || added.length > 0) {
          this.#history.push({
            id: ++this.#historyId,
            ...(removed.length > 0 ? { labelsRemoved: [{ message: ref, labelIds: removed }] } : {}),
            ...(added.length > 0 ? { labelsAdded: [{ message: ref, labelIds: added }] } : {}),
          });
        }
        return this.json({ id: message.id, threadId: message.threadId, labelIds: message.labelIds });
      }
      case 'users.messages.send': {
        let raw: Buffer;
        if (path.startsWith('/upload/')) {
          if (q.get('uploadType') !== 'media') {
            return this.json(gmailError(400, 'badRequest', 'Invalid upload type', 'INVALID_ARGUMENT'), 400);
          }
          raw = Buffer.from(await request.arrayBuffer());
        } else {
          const body = (await request.json().catch(() => ({}))) as { raw?: unknown };
          if (typeof body.raw !== 'string' || body.raw === '') {
            return this.json(
              gmailError(
                400,
                'invalidArgument',
                "'raw' RFC822 payload message string or uploading message via /upload/* URL required",
                'INVALID_ARGUMENT',
              ),
              400,
            );
          }
          raw = Buffer.from(body.raw, 'base64url');
        }
        const header = raw.toString('utf8').split(/\r?\n\r?\n/, 1)[0] ?? '';
        if (!/^(to|cc|bcc):\s*\S/im.test(header)) {
          return this.json(
            gmailError(400, 'invalidArgument', 'Recipient address required', 'INVALID_ARGUMENT'),
            400,
          );
        }
        const id = randomBytes(8).toString('hex');
        const message = this.#add(id, raw, ['SENT'], Date.now());
        this.sent.push(message);
        return this.json({ id, threadId: id, labelIds: ['SENT'] });
      }
      case 'users.history.list': {
        const startRaw = q.get('startHistoryId');
        if (startRaw === null || !/^\d+$/.test(startRaw)) {
          return this.json(
            gmailError(400, 'invalidArgument', 'Invalid startHistoryId', 'INVALID_ARGUMENT'),
            400,
          );
        }
        const start = Number(startRaw);
        if (start < this.#historyFloor) return notFound();
        const label = q.get('labelId');
        const types = q.getAll('historyTypes');
        const records = this.#history
          .filter((r) => r.id > start)
          .map((r) => ({
            ...r,
            messagesAdded: r.messagesAdded?.filter(
              (a) => label === null || a.message.labelIds.includes(label),
            ),
          }))
          .filter(
            (r) =>
              (types.length === 0 ||
                (types.includes('messageAdded') && (r.messagesAdded?.length ?? 0) > 0)) &&
              (label === null ||
                (r.messagesAdded?.length ?? 0) > 0 ||
                [...(r.labelsRemoved ?? []), ...(r.labelsAdded ?? [])].some((c) =>
                  c.message.labelIds.includes(label),
                )),
          )
          .map((r) => ({
            id: String(r.id),
            messages: [...(r.messagesAdded ?? []), ...(r.labelsRemoved ?? []), ...(r.labelsAdded ?? [])].map(
              (c) => ({
                id: c.message.id,
                threadId: c.message.threadId,
              }),
            ),
            ...(r.messagesAdded === undefined || r.messagesAdded.length === 0
              ? {}
              : { messagesAdded: r.messagesAdded }),
            ...(types.length > 0 || r.labelsRemoved === undefined ? {} : { labelsRemoved: r.labelsRemoved }),
            ...(types.length > 0 || r.labelsAdded === undefined ? {} : { labelsAdded: r.labelsAdded }),
          }));
        const size = Math.min(Number(q.get('maxResults') ?? 100) || 100, 500);
        const { slice, next } = page(records, q.get('pageToken'), size);
        return this.json({
          ...(slice.length === 0 ? {} : { history: slice }),
          ...(next === undefined ? {} : { nextPageToken: next }),
          historyId: String(this.#historyId),
        });
      }
      default:
        return notFound();
    }
  }
}

/**
 * An emulated Gmail API for msw, with an in-memory mailbox the test fills and inspects. With `tokens` (a
 * `fakeGoogle()`), only access tokens that fake issued are accepted, and only with a Gmail scope.
 *
 * @example
 * ```ts
 * import { setupServer } from 'msw/node';
 * import { fakeGoogle, fakeGmailApi } from 'oauth-mailbox/testing';
 * const google = fakeGoogle({ clientId: 'test-client' });
 * const gmail = fakeGmailApi({ tokens: google, email: 'ada@example.com' });
 * const server = setupServer(...google.handlers(), ...gmail.handlers());
 * server.listen({ onUnhandledRequest: 'error' });
 * gmail.deliver({ subject: 'Welcome' });
 * for await (const m of auth.mailbox(accountId, { transport: 'gmail-api' }).fetchUnread()) console.log(m.subject);
 * expect(gmail.messages()[0]?.labelIds).toContain('UNREAD');
 * ```
 */
export function fakeGmailApi(options: FakeMailApiOptions = {}): FakeGmailApi {
  return new FakeGmailApi(options);
}
