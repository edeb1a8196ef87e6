/**
 * The Gmail API transport of `MailboxClient`: `users.messages.list` / `get` / `modify` / `send` and
 * `users.history.list` polling, over the shared HTTP layer (tokens from the refresher).
 * @internal
 * @module
 */
import type { SendMailOptions } from 'nodemailer';
import { InvalidArgumentError, isMailboxAuthError } from '../errors.js';
import { pause } from '../internal/timers.js';
import { MailApiClient, type ResolvedApiOptions, resolveApiOptions } from './api-http.js';
import { composeMessage } from './compose.js';
import type { MailContext } from './context.js';
import {
  decodeWords,
  type MailMessage,
  parseAddresses,
  readHeaders,
  type SentMail,
  toDate,
} from './message.js';
import {
  defineTransport,
  type FetchUnreadRequest,
  type MailTransportDriver,
  type WatchRun,
} from './transport.js';

/** The Gmail API's origin (paths carry `gmail/v1`, uploads `upload/gmail/v1`). */
export const GMAIL_API_BASE_URL = 'https://gmail.googleapis.com';

/** Above this size a message is sent through the media upload endpoint (35 MB) instead of JSON `raw`. */
const JSON_SEND_LIMIT_BYTES = 4 * 1024 * 1024;
/** Ids asked for per page when walking the whole unread listing (`order: 'oldest'`): Gmail's maximum. */
const ID_PAGE_SIZE = 500;
const METADATA_HEADERS = ['From', 'To', 'Subject', 'Date', 'Message-ID'];
const MESSAGE_ID = /^[A-Za-z0-9_-]{1,256}$/;

interface GmailMessageRef {
  readonly id: string;
  readonly threadId?: string;
  readonly labelIds?: readonly string[];
}

interface GmailList {
  readonly messages?: readonly GmailMessageRef[];
  readonly nextPageToken?: string;
  readonly resultSizeEstimate?: number;
}

interface GmailMessage {
  readonly id: string;
  readonly labelIds?: readonly string[];
  readonly internalDate?: string;
  readonly raw?: string;
  readonly payload?: { readonly headers?: readonly { readonly name: string; readonly value: string }[] };
}

interface GmailHistory {
  readonly history?: readonly {
    readonly id: string;
    readonly messagesAdded?: readonly { readonly message: GmailMessageRef }[];
  }[];
  readonly nextPageToken?: string;
  readonly historyId?: string;
}

function flagsOf(labelIds: readonly string[] | undefined): string[] {
  const labels = labelIds ?? [];
  return [
    ...(labels.includes('UNREAD') ? [] : ['\\Seen']),
    ...(labels.includes('STARRED') ? ['\\Flagged'] : []),
    ...(labels.includes('DRAFT') ? ['\\Draft'] : []),
  ];
}

function greater(a: string, b: string): boolean {
  return BigInt(a) > BigInt(b);
}

/** How far before this clock's "now" a new watch's watermark starts (Google's clock may be behind). */
const CLOCK_SLACK_MS = 60_000;

/** A Gmail watch position: the history id, and the watermark a resync starts from. */
interface GmailCursor {
  readonly historyId: string;
  /** The `internalDate` (epoch ms) of the newest message delivered, or the watch's start. */
  readonly watermark: number;
  /** The id of the message at the watermark (`''`: none). */
  readonly lastId: string;
}

/** `<historyId>:<watermark>:<lastId>`; a bare history id (before 0.2) is read with no watermark. */
function encodeGmailCursor(cursor: GmailCursor): string {
  return `${cursor.historyId}:${cursor.watermark}:${cursor.lastId}`;
}

function decodeGmailCursor(value: string): GmailCursor {
  const match = /^(\d{1,20})(?::(\d{1,16}):([A-Za-z0-9_-]{0,64}))?$/.exec(value);
  if (match === null) {
    throw new InvalidArgumentError(
      'cursor is not a Gmail watch position (use watcher.cursor of a Gmail watch)',
    );
  }
  return { historyId: match[1] as string, watermark: Number(match[2] ?? 0), lastId: match[3] ?? '' };
}

/** Reads and sends through the Gmail REST API with the account's primary token. */
export class GmailApiDriver implements MailTransportDriver {
  readonly name = 'gmail-api' as const;
  readonly #api: MailApiClient;
  readonly #options: ResolvedApiOptions;
  #connected = false;

  constructor(context: MailContext, accountId: string, options: ResolvedApiOptions) {
    this.#options = options;
    this.#api = new MailApiClient(context, accountId, 'gmail-api', options, undefined, (ok) => {
      this.#connected = ok;
    });
  }

  async connect(signal?: AbortSignal): Promise<void> {
    await this.#profile(signal);
  }

  async disconnect(): Promise<void> {
    this.#connected = false;
  }

  isConnected(): boolean {
    return this.#connected;
  }

  /**
   * Unread messages of a label. `newest`: as the API lists them, one page at a time. `oldest`: `messages.list`
   * has no other order, so every page of unread ids is walked first (ids only, 500 a request),
   * keeping the last `max` (the oldest), which are then fetched oldest first.
   */
  async *fetchUnread(request: FetchUnreadRequest): AsyncGenerator<MailMessage, void, undefined> {
    const label = request.mailbox ?? 'INBOX';
    if (request.order === 'oldest') {
      const ids = await this.#oldestUnreadIds(label, request.max, request.signal);
      for (let i = ids.length - 1; i >= 0; i--) {
        const message = await this.#get(ids[i] as string, label, request.source, request.signal);
        if (message !== undefined) yield message; // else deleted since it was listed
      }
      return;
    }
    let count = 0;
    let pageToken: string | undefined;
    do {
      const page = await this.#list(
        label,
        Math.min(this.#options.pageSize, request.max - count),
        pageToken,
        request.signal,
      );
      for (const ref of page.messages ?? []) {
        const message = await this.#get(ref.id, label, request.source, request.signal);
        if (message === undefined) continue; // deleted since it was listed
        yield message;
        if (++count >= request.max) return;
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined && pageToken !== '');
  }

  /**
   * The ids of the `max` oldest unread messages of a label, newest first (the listing's order): every page is
   * read, only the last `max` ids are kept (memory: `max` ids, whatever the number of unread messages).
   */
  async #oldestUnreadIds(label: string, max: number, signal: AbortSignal | undefined): Promise<string[]> {
    let kept: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.#list(label, ID_PAGE_SIZE, pageToken, signal, true);
      for (const ref of page.messages ?? []) kept.push(ref.id);
      if (kept.length > 2 * max) kept = kept.slice(-max);
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined && pageToken !== '');
    return kept.slice(-max);
  }

  /** One page of `users.messages.list` for the unread messages of a label (`idsOnly`: a partial response). */
  async #list(
    label: string,
    maxResults: number,
    pageToken: string | undefined,
    signal: AbortSignal | undefined,
    idsOnly = false,
  ): Promise<GmailList> {
    const { data } = await this.#api.request<GmailList>({
      operation: 'users.messages.list',
      url: 'gmail/v1/users/me/messages',
      query: {
        q: 'is:unread',
        labelIds: label,
        maxResults,
        pageToken,
        ...(idsOnly ? { fields: 'messages/id,nextPageToken' } : {}),
      },
      signal,
    });
    return data;
  }

  async markAsRead(id: string, options: { readonly signal?: AbortSignal }): Promise<void> {
    if (!MESSAGE_ID.test(id)) throw new InvalidArgumentError('id must be a Gmail message id (message.id)');
    await this.#api.request({
      operation: 'users.messages.modify',
      method: 'POST',
      url: `gmail/v1/users/me/messages/${id}/modify`,
      json: { removeLabelIds: ['UNREAD'] },
      accept: 'none',
      signal: options.signal,
    });
  }

  /** Builds the RFC 822 message with nodemailer's MailComposer and sends it as `raw` (or by media upload). */
  async send(message: SendMailOptions, from: string, signal?: AbortSignal): Promise<SentMail> {
    const composed = await composeMessage(message, from);
    const common = { operation: 'users.messages.send', method: 'POST', idempotent: false, signal } as const;
    const response =
      composed.raw.length <= JSON_SEND_LIMIT_BYTES
        ? await this.#api.request<{ id?: string }>({
            ...common,
            url: 'gmail/v1/users/me/messages/send',
            json: { raw: composed.raw.toString('base64url') },
          })
        : await this.#api.request<{ id?: string }>({
            ...common,
            url: 'upload/gmail/v1/users/me/messages/send',
            query: { uploadType: 'media' },
            body: { data: composed.raw, contentType: 'message/rfc822' },
          });
    return {
      transport: 'gmail-api',
      messageId: composed.messageId,
      id: typeof response.data?.id === 'string' ? response.data.id : undefined,
      accepted: composed.recipients,
      rejected: [],
      response: undefined,
    };
  }

  /**
   * Polls `users.history.list` from the last history id every `pollIntervalMs`; each history record's new
   * messages are delivered, then the cursor moves past the record. The cursor also keeps the watermark: the
   * `internalDate` of the newest message delivered (or the watch's start) and its id. A history id too old
   * for Gmail (404: history is kept about a week) is resynced from that watermark: the label's messages
   * received since are listed, delivered oldest first (the ones at the watermark already delivered
   * skipped), and the watch goes on from the mailbox's current history id (`resynced`, reason
   * `history-expired`).
   */
  async watchSession(run: WatchRun): Promise<'renew' | undefined> {
    const label = run.mailbox ?? 'INBOX';
    const { signal } = run;
    let cursor: GmailCursor;
    if (run.cursor === undefined) {
      const historyId = await this.#profile(signal);
      cursor = { historyId, ...(await this.#newest(label, signal)) };
      run.cursor = encodeGmailCursor(cursor);
    } else {
      cursor = decodeGmailCursor(run.cursor);
    }
    run.ready();
    /** Ids delivered by a resync of this session: history shows them again afterwards. */
    const resynced = new Set<string>();
    for (;;) {
      if (signal.aborted) return undefined;
      try {
        cursor = await this.#poll(run, label, cursor, resynced);
      } catch (err) {
        if (signal.aborted) return undefined;
        if (!isMailboxAuthError(err, 'ERR_MAIL_REQUEST_REJECTED') || err.status !== 404) throw err;
        cursor = await this.#resync(run, label, cursor, resynced);
        run.resynced('history-expired');
        continue;
      }
      await pause(this.#options.pollIntervalMs, signal);
    }
  }

  /**
   * The watermark of a new watch: the label's newest message (Google's clock, and that message is not
   * delivered by a resync), or, in an empty label, now less a minute for the difference between the clocks.
   */
  async #newest(label: string, signal: AbortSignal): Promise<Omit<GmailCursor, 'historyId'>> {
    const { data } = await this.#api.request<GmailList>({
      operation: 'users.messages.list',
      url: 'gmail/v1/users/me/messages',
      query: { labelIds: label, maxResults: 1, fields: 'messages/id' },
      signal,
    });
    const id = data.messages?.[0]?.id;
    const read = id === undefined ? undefined : await this.#read(id, label, false, signal);
    if (read === undefined || read.internalDate === 0)
      return { watermark: Date.now() - CLOCK_SLACK_MS, lastId: '' };
    return { watermark: read.internalDate, lastId: read.message.id };
  }

  /** Deliver one message and move the cursor's watermark to it. */
  async #deliver(
    run: WatchRun,
    cursor: GmailCursor,
    read: { readonly message: MailMessage; readonly internalDate: number },
  ): Promise<GmailCursor> {
    await run.deliver(read.message);
    if (read.internalDate < cursor.watermark) return cursor;
    return { ...cursor, watermark: read.internalDate, lastId: read.message.id };
  }

  async #poll(run: WatchRun, label: string, from: GmailCursor, resynced: Set<string>): Promise<GmailCursor> {
    let cursor = from;
    let pageToken: string | undefined;
    let latest: string | undefined;
    do {
      const page = await this.#api.request<GmailHistory>({
        operation: 'users.history.list',
        url: 'gmail/v1/users/me/history',
        query: {
          startHistoryId: from.historyId,
          historyTypes: 'messageAdded',
          labelId: label,
          maxResults: this.#options.pageSize,
          pageToken,
        },
        signal: run.signal,
      });
      for (const record of page.data.history ?? []) {
        for (const added of record.messagesAdded ?? []) {
          const labels = added.message.labelIds;
          if (labels !== undefined && !labels.includes(label)) continue;
          if (resynced.delete(added.message.id)) continue;
          const read = await this.#read(added.message.id, label, true, run.signal);
          if (read !== undefined) cursor = await this.#deliver(run, cursor, read);
        }
        if (/^\d{1,20}$/.test(record.id) && greater(record.id, cursor.historyId)) {
          cursor = { ...cursor, historyId: record.id };
        }
        run.cursor = encodeGmailCursor(cursor);
      }
      pageToken = page.data.nextPageToken;
      latest = page.data.historyId ?? latest;
    } while (pageToken !== undefined && pageToken !== '');
    if (latest !== undefined && /^\d{1,20}$/.test(latest) && greater(latest, cursor.historyId)) {
      cursor = { ...cursor, historyId: latest };
    }
    run.cursor = encodeGmailCursor(cursor);
    return cursor;
  }

  /**
   * The history before the cursor is gone: deliver the label's messages received since the watermark
   * (`messages.list` with `after:`, every page, then oldest first), and go on from the current history id
   * (taken first: what arrives meanwhile is in the history after it, and skipped there if delivered here).
   */
  async #resync(
    run: WatchRun,
    label: string,
    from: GmailCursor,
    resynced: Set<string>,
  ): Promise<GmailCursor> {
    const historyId = await this.#profile(run.signal);
    // A position saved before watermarks were kept: nothing to resync from but now.
    if (from.watermark === 0) {
      run.cursor = encodeGmailCursor({ ...from, historyId, watermark: Date.now() - CLOCK_SLACK_MS });
      return decodeGmailCursor(run.cursor);
    }
    const ids: string[] = [];
    let pageToken: string | undefined;
    do {
      const { data } = await this.#api.request<GmailList>({
        operation: 'users.messages.list',
        url: 'gmail/v1/users/me/messages',
        query: {
          q: `after:${Math.floor(from.watermark / 1000)}`,
          labelIds: label,
          maxResults: 500,
          pageToken,
          fields: 'messages/id,nextPageToken',
        },
        signal: run.signal,
      });
      for (const ref of data.messages ?? []) ids.push(ref.id);
      pageToken = data.nextPageToken;
    } while (pageToken !== undefined && pageToken !== '');
    const found: { readonly message: MailMessage; readonly internalDate: number; readonly rank: number }[] =
      [];
    for (const [rank, id] of ids.entries()) {
      if (id === from.lastId) continue;
      const read = await this.#read(id, label, true, run.signal);
      if (read !== undefined && read.internalDate >= from.watermark) found.push({ ...read, rank });
    }
    // Oldest first; Gmail lists newest first, which orders messages of the same millisecond.
    found.sort((a, b) => a.internalDate - b.internalDate || b.rank - a.rank);
    let cursor = from;
    for (const read of found) {
      cursor = await this.#deliver(run, cursor, read);
      resynced.add(read.message.id);
      run.cursor = encodeGmailCursor(cursor);
    }
    cursor = { ...cursor, historyId };
    run.cursor = encodeGmailCursor(cursor);
    return cursor;
  }

  async #profile(signal: AbortSignal | undefined): Promise<string> {
    const { data } = await this.#api.request<{ historyId?: string }>({
      operation: 'users.getProfile',
      url: 'gmail/v1/users/me/profile',
      signal,
    });
    return String(data.historyId ?? '1');
  }

  /** One message (raw when `source`, else metadata headers); `undefined` when it no longer exists. */
  async #get(
    id: string,
    label: string,
    source: boolean,
    signal: AbortSignal | undefined,
  ): Promise<MailMessage | undefined> {
    return (await this.#read(id, label, source, signal))?.message;
  }

  /** {@link GmailApiDriver.#get}, with the message's `internalDate` (epoch ms; `0` when Gmail gives none). */
  async #read(
    id: string,
    label: string,
    source: boolean,
    signal: AbortSignal | undefined,
  ): Promise<{ readonly message: MailMessage; readonly internalDate: number } | undefined> {
    let data: GmailMessage;
    try {
      ({ data } = await this.#api.request<GmailMessage>({
        operation: 'users.messages.get',
        url: `gmail/v1/users/me/messages/${encodeURIComponent(id)}`,
        query: source ? { format: 'raw' } : { format: 'metadata', metadataHeaders: METADATA_HEADERS },
        signal,
      }));
    } catch (err) {
      if (isMailboxAuthError(err, 'ERR_MAIL_REQUEST_REJECTED') && err.status === 404) return undefined;
      throw err;
    }
    let raw: Buffer | undefined;
    let headers: Map<string, string>;
    if (source && typeof data.raw === 'string') {
      raw = Buffer.from(data.raw, 'base64url');
      headers = readHeaders(raw);
    } else {
      headers = new Map((data.payload?.headers ?? []).map((h) => [h.name.toLowerCase(), h.value] as const));
    }
    const subject = headers.get('subject');
    const internalDate = Number(data.internalDate ?? 0);
    const message: MailMessage = {
      id: data.id,
      uid: undefined,
      mailbox: label,
      messageId: headers.get('message-id'),
      subject: subject === undefined ? undefined : await decodeWords(subject),
      from: await parseAddresses(headers.get('from')),
      to: await parseAddresses(headers.get('to')),
      date: toDate(headers.get('date')) ?? toDate(data.internalDate),
      flags: flagsOf(data.labelIds),
      source: raw,
    };
    return { message, internalDate: Number.isSafeInteger(internalDate) ? internalDate : 0 };
  }
}

/** The `gmail-api` transport: the Gmail REST API on `users/me`. @internal */
export const gmailApiTransport = defineTransport({
  name: 'gmail-api',
  checkOptions: (options) => void resolveApiOptions(options.api, GMAIL_API_BASE_URL),
  create: (context) =>
    new GmailApiDriver(
      context,
      context.accountId,
      resolveApiOptions(context.options.api, GMAIL_API_BASE_URL),
    ),
});
