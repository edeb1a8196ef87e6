/**
 * The Microsoft Graph transport of `MailboxClient`: unread folder messages ordered by `receivedDateTime`,
 * `PATCH isRead`, MIME `sendMail`, and delta-query polling, over the shared HTTP layer with the account's Graph
 * token (its primary token when that is a Graph token, else the provider's `graph` resource).
 * @internal
 * @module
 */
import type { SendMailOptions } from 'nodemailer';
import { InvalidArgumentError, isMailboxAuthError } from '../errors.js';
import { pause } from '../internal/timers.js';
import { MailApiClient, type ResolvedApiOptions, resolveApiOptions } from './api-http.js';
import { composeMessage } from './compose.js';
import type { MailContext } from './context.js';
import type { MailAddress, MailMessage, SentMail } from './message.js';
import {
  defineTransport,
  type FetchUnreadRequest,
  type MailTransportDriver,
  type WatchRun,
} from './transport.js';

/** Graph's v1.0 root. */
export const GRAPH_BASE_URL = 'https://graph.microsoft.com/v1.0';

const SELECT = 'id,subject,from,toRecipients,receivedDateTime,internetMessageId,isRead,flag';
/** Unread messages; the `$orderby` property comes first, as Graph requires when both are used. */
const UNREAD_FILTER = 'receivedDateTime ge 1900-01-01T00:00:00Z and isRead eq false';
/** A message can show up in a delta round this long after one received later: the watermark trails by it. */
const WATERMARK_SLACK_MS = 5 * 60_000;

interface GraphRecipient {
  readonly emailAddress?: { readonly name?: string; readonly address?: string };
}

interface GraphMessage {
  readonly id: string;
  readonly subject?: string | null;
  readonly from?: GraphRecipient | null;
  readonly toRecipients?: readonly GraphRecipient[];
  readonly receivedDateTime?: string;
  readonly internetMessageId?: string | null;
  readonly isRead?: boolean;
  readonly flag?: { readonly flagStatus?: string } | null;
  readonly '@removed'?: unknown;
}

interface GraphPage {
  readonly value?: readonly GraphMessage[];
  readonly '@odata.nextLink'?: string;
  readonly '@odata.deltaLink'?: string;
}

/** Where a Graph watch stands: the next link of the round in progress or the delta link, and the watermarks. */
interface GraphCursor {
  readonly link: string | undefined;
  /** Messages received before this (epoch ms) are not new: the watch's start, then trailing the newest. */
  readonly since: number;
  /** The newest receipt time delivered (epoch ms; Graph's times have whole seconds). */
  readonly last: number;
  /** The ids delivered with that receipt time. */
  readonly lastIds: readonly string[];
}

/** What a watch keeps across its sessions (a failure and backoff does not forget what was delivered). */
interface GraphWatchState {
  /** Ids delivered by this watch, by receipt time, at or after `since`. */
  readonly recent: Map<string, number>;
  /** A resumed watch does not know what the earlier one delivered: nothing received before this... */
  readonly floor: number;
  /** ...nor these ids, received at `floor`. */
  readonly floorIds: ReadonlySet<string>;
}

function encodeCursor(cursor: GraphCursor): string {
  return JSON.stringify({
    graph: 1,
    link: cursor.link ?? null,
    since: cursor.since,
    last: cursor.last,
    ids: cursor.lastIds,
  });
}

function decodeCursor(value: string): GraphCursor {
  try {
    const data = JSON.parse(value) as {
      graph?: unknown;
      link?: unknown;
      since?: unknown;
      last?: unknown;
      ids?: unknown;
    };
    if (
      data.graph === 1 &&
      (data.link === null || (typeof data.link === 'string' && data.link.startsWith('https://'))) &&
      typeof data.since === 'number' &&
      Number.isFinite(data.since) &&
      typeof data.last === 'number' &&
      Number.isFinite(data.last) &&
      Array.isArray(data.ids) &&
      data.ids.every((id) => typeof id === 'string')
    ) {
      return {
        link: data.link ?? undefined,
        since: data.since,
        last: data.last,
        lastIds: data.ids as string[],
      };
    }
  } catch {
    // fall through
  }
  throw new InvalidArgumentError(
    'cursor is not a Microsoft Graph watch position (use watcher.cursor of a Graph watch)',
  );
}

function address(recipient: GraphRecipient | null | undefined): MailAddress | undefined {
  const e = recipient?.emailAddress;
  if (e === undefined) return undefined;
  return { ...(e.name ? { name: e.name } : {}), ...(e.address ? { address: e.address } : {}) };
}

/** Scopes that name no resource (OpenID Connect's, and the refresh token's). */
const RESOURCELESS_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);

/**
 * Whether an account's primary access token is a Microsoft Graph token, from its granted scopes: a Microsoft
 * access token is for the resource of the first scope that names one (`openid`, `profile`, `email` and
 * `offline_access` name none), and that resource is Graph when the scope is `https://graph.microsoft.com/…` or
 * unqualified (`Mail.ReadWrite`: Microsoft reads an unqualified scope as Graph's). True for an account
 * connected with `microsoft({ mailTransport: 'graph' })`; false for Outlook's IMAP/SMTP scopes, and when no
 * scope is stored.
 * @internal
 */
export function primaryTokenIsGraph(scopes: readonly string[]): boolean {
  const first = scopes.find((scope) => !RESOURCELESS_SCOPES.has(scope.toLowerCase()));
  if (first === undefined) return false;
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(first)) return true;
  try {
    return new URL(first).origin === new URL(GRAPH_BASE_URL).origin;
  } catch {
    return false;
  }
}

/** The folder segment: Graph's well-known `inbox` for IMAP's `INBOX`, else a folder id or well-known name. */
function folderOf(mailbox: string | undefined): string {
  if (mailbox === undefined || mailbox.toLowerCase() === 'inbox') return 'inbox';
  return encodeURIComponent(mailbox);
}

function checkId(id: string): void {
  if (!/^[A-Za-z0-9+/=_.-]{1,1024}$/.test(id)) {
    throw new InvalidArgumentError('id must be a Microsoft Graph message id (message.id)');
  }
}

/** Reads and sends through Microsoft Graph with the account's Graph token (see {@link primaryTokenIsGraph}). */
export class GraphDriver implements MailTransportDriver {
  readonly name = 'graph' as const;
  readonly #api: MailApiClient;
  readonly #options: ResolvedApiOptions;
  readonly #watches = new WeakMap<WatchRun, GraphWatchState>();
  #connected = false;

  /**
   * `resource`: the provider's resource for Graph tokens (`graph`), or `undefined` to use the primary token
   * (a provider without a `graph` resource, or an account whose primary token is a Graph token).
   */
  constructor(
    context: MailContext,
    accountId: string,
    options: ResolvedApiOptions,
    resource: string | undefined,
  ) {
    this.#options = options;
    this.#api = new MailApiClient(context, accountId, 'graph', options, resource, (ok) => {
      this.#connected = ok;
    });
  }

  async connect(signal?: AbortSignal): Promise<void> {
    await this.#serverTime('inbox', signal);
  }

  async disconnect(): Promise<void> {
    this.#connected = false;
  }

  isConnected(): boolean {
    return this.#connected;
  }

  /**
   * Unread messages of a folder ordered by `receivedDateTime` (descending for `newest`, ascending for
   * `oldest`), one page at a time. Graph refuses (`InefficientFilter`) an `$orderby` property that is not
   * also the first one of `$filter`: hence the always-true `receivedDateTime ge 1900-01-01T00:00:00Z` first.
   */
  async *fetchUnread(request: FetchUnreadRequest): AsyncGenerator<MailMessage, void, undefined> {
    const folder = folderOf(request.mailbox);
    let count = 0;
    let url: string | undefined = `me/mailFolders/${folder}/messages`;
    let query: Record<string, string | number> | undefined = {
      $filter: UNREAD_FILTER,
      $orderby: `receivedDateTime ${request.order === 'oldest' ? 'asc' : 'desc'}`,
      $select: SELECT,
      $top: Math.min(this.#options.pageSize, request.max),
    };
    while (url !== undefined) {
      const page: { data: GraphPage } = await this.#api.request<GraphPage>({
        operation: 'list messages',
        url,
        ...(query === undefined ? {} : { query }),
        signal: request.signal,
      });
      for (const item of page.data.value ?? []) {
        const source = request.source ? await this.#source(item.id, request.signal) : undefined;
        if (source === null) continue; // deleted since it was listed
        yield this.#toMessage(item, request.mailbox ?? 'inbox', source);
        if (++count >= request.max) return;
      }
      url = page.data['@odata.nextLink'];
      query = undefined; // the next link carries the query
    }
  }

  async markAsRead(id: string, options: { readonly signal?: AbortSignal }): Promise<void> {
    checkId(id);
    await this.#api.request({
      operation: 'update message',
      method: 'PATCH',
      url: `me/messages/${encodeURIComponent(id)}`,
      json: { isRead: true },
      accept: 'none',
      signal: options.signal,
    });
  }

  /** Sends the MIME message built by nodemailer's MailComposer, base64-encoded, to `/me/sendMail`. */
  async send(message: SendMailOptions, from: string, signal?: AbortSignal): Promise<SentMail> {
    const composed = await composeMessage(message, from);
    await this.#api.request({
      operation: 'sendMail',
      method: 'POST',
      url: 'me/sendMail',
      body: { data: composed.raw.toString('base64'), contentType: 'text/plain' },
      accept: 'none',
      idempotent: false,
      signal,
    });
    return {
      transport: 'graph',
      messageId: composed.messageId,
      id: undefined,
      accepted: composed.recipients,
      rejected: [],
      response: undefined,
    };
  }

  /**
   * Polls the folder's delta query (`changeType=created`, `receivedDateTime ge` the watch's start) every
   * `pollIntervalMs`. A message is delivered once: received at or after the watermark (the start, then the
   * newest delivered minus 5 minutes, for late reports) and not delivered by this watch already. An expired
   * delta link (410) restarts the round from the watermark (`reconnected` with reason `resync`): nothing is
   * lost. A watch resumed from a cursor delivers nothing received before the newest its predecessor
   * delivered.
   */
  async watchSession(run: WatchRun): Promise<'renew' | undefined> {
    const folder = folderOf(run.mailbox);
    const { signal } = run;
    let cursor: GraphCursor;
    if (run.cursor === undefined) {
      const start = await this.#serverTime(folder, signal);
      cursor = { link: undefined, since: start, last: start - 1, lastIds: [] };
    } else {
      cursor = decodeCursor(run.cursor);
    }
    run.cursor = encodeCursor(cursor);
    let state = this.#watches.get(run);
    if (state === undefined) {
      state = { recent: new Map(), floor: cursor.last, floorIds: new Set(cursor.lastIds) };
      this.#watches.set(run, state);
    }
    run.ready();
    for (;;) {
      if (signal.aborted) return undefined;
      try {
        cursor = await this.#round(run, folder, cursor, state);
      } catch (err) {
        if (signal.aborted) return undefined;
        if (!isMailboxAuthError(err, 'ERR_MAIL_REQUEST_REJECTED') || err.status !== 410) throw err;
        cursor = { ...cursor, link: undefined };
        run.cursor = encodeCursor(cursor);
        run.resynced('delta-expired');
        continue;
      }
      await pause(this.#options.pollIntervalMs, signal);
    }
  }

  /** One delta round, page by page; the cursor moves after each page. */
  async #round(
    run: WatchRun,
    folder: string,
    start: GraphCursor,
    state: GraphWatchState,
  ): Promise<GraphCursor> {
    const { recent, floor, floorIds } = state;
    let cursor = start;
    let newest = cursor.last;
    let newestIds = [...cursor.lastIds];
    for (;;) {
      const first = cursor.link === undefined;
      const since = new Date(cursor.since).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const page: { data: GraphPage } = await this.#api.request<GraphPage>({
        operation: 'messages delta',
        url: cursor.link ?? `me/mailFolders/${folder}/messages/delta`,
        ...(first
          ? { query: { changeType: 'created', $select: SELECT, $filter: `receivedDateTime ge ${since}` } }
          : {}),
        headers: { prefer: `odata.maxpagesize=${this.#options.pageSize}` },
        signal: run.signal,
      });
      for (const item of page.data.value ?? []) {
        if (item['@removed'] !== undefined || typeof item.id !== 'string') continue;
        const received = Date.parse(item.receivedDateTime ?? '');
        if (
          !Number.isFinite(received) ||
          received < cursor.since ||
          received < floor ||
          (received === floor && floorIds.has(item.id)) ||
          recent.has(item.id)
        ) {
          continue;
        }
        const source = await this.#source(item.id, run.signal);
        if (source === null) continue;
        await run.deliver(this.#toMessage(item, run.mailbox ?? 'inbox', source));
        recent.set(item.id, received);
        if (received > newest) {
          newest = received;
          newestIds = [item.id];
        } else if (received === newest) {
          newestIds.push(item.id);
        }
      }
      const next = page.data['@odata.nextLink'];
      const delta = page.data['@odata.deltaLink'];
      if (next !== undefined) {
        cursor = { ...cursor, link: next, last: newest, lastIds: newestIds };
        run.cursor = encodeCursor(cursor);
        continue;
      }
      const watermark = Math.max(cursor.since, newest - WATERMARK_SLACK_MS);
      for (const [id, at] of recent) if (at < watermark) recent.delete(id);
      cursor = { link: delta ?? cursor.link, since: watermark, last: newest, lastIds: newestIds };
      run.cursor = encodeCursor(cursor);
      return cursor;
    }
  }

  /** The raw MIME of a message; `null` when it no longer exists. */
  async #source(id: string, signal: AbortSignal | undefined): Promise<Buffer | null> {
    try {
      const { data } = await this.#api.request<Buffer>({
        operation: 'get message MIME',
        url: `me/messages/${encodeURIComponent(id)}/$value`,
        accept: 'bytes',
        signal,
      });
      return data;
    } catch (err) {
      if (isMailboxAuthError(err, 'ERR_MAIL_REQUEST_REJECTED') && err.status === 404) return null;
      throw err;
    }
  }

  /** The server's clock (the `Date` of a folder request; also checks the folder exists). */
  async #serverTime(folder: string, signal: AbortSignal | undefined): Promise<number> {
    const { headers } = await this.#api.request({
      operation: 'get mail folder',
      url: `me/mailFolders/${folder}`,
      query: { $select: 'id' },
      signal,
    });
    const date = Date.parse(headers.get('date') ?? '');
    return Number.isFinite(date) ? date : Date.now();
  }

  #toMessage(item: GraphMessage, mailbox: string, source: Buffer | undefined): MailMessage {
    const from = address(item.from);
    const received = Date.parse(item.receivedDateTime ?? '');
    return {
      id: item.id,
      uid: undefined,
      mailbox,
      messageId: item.internetMessageId ?? undefined,
      subject: item.subject ?? undefined,
      from: from === undefined ? [] : [from],
      to: (item.toRecipients ?? []).map(address).filter((a): a is MailAddress => a !== undefined),
      date: Number.isFinite(received) ? new Date(received) : undefined,
      flags: [
        ...(item.isRead === true ? ['\\Seen'] : []),
        ...(item.flag?.flagStatus === 'flagged' ? ['\\Flagged'] : []),
      ],
      source,
    };
  }
}

/** The `graph` transport: Microsoft Graph on `/me`. @internal */
export const graphTransport = defineTransport({
  name: 'graph',
  checkOptions: (options) => void resolveApiOptions(options.api, GRAPH_BASE_URL),
  create: (context) => {
    // An account consented for Graph (`microsoft({ mailTransport: 'graph' })`) has a Graph primary token:
    // use it rather than refreshing the same kind of token a second time as the `graph` resource.
    const resource =
      context.provider.resources?.graph === undefined || primaryTokenIsGraph(context.account.scopes)
        ? undefined
        : 'graph';
    return new GraphDriver(
      context,
      context.accountId,
      resolveApiOptions(context.options.api, GRAPH_BASE_URL),
      resource,
    );
  },
});
