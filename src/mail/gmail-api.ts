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
   * messages are delivered, then the cursor moves past the record. A history id too old for Gmail (404)
   * restarts from the mailbox's current one (`reconnected` with reason `resync`).
   */
  async watchSession(run: WatchRun): Promise<'renew' | undefined> {
    const label = run.mailbox ?? 'INBOX';
    const { signal } = run;
    if (run.cursor !== undefined && !/^\d{1,20}$/.test(run.cursor)) {
      throw new InvalidArgumentError(
        'cursor is not a Gmail history id (use watcher.cursor of a Gmail watch)',
      );
    }
    if (run.cursor === undefined) run.cursor = await this.#profile(signal);
    run.ready();
    for (;;) {
      if (signal.aborted) return undefined;
      try {
        await this.#poll(run, label);
      } catch (err) {
        if (signal.aborted) return undefined;
        if (!isMailboxAuthError(err, 'ERR_MAIL_REQUEST_REJECTED') || err.status !== 404) throw err;
        run.cursor = await this.#profile(signal);
        run.resynced();
        continue;
      }
      await pause(this.#options.pollIntervalMs, signal);
    }
  }

  async #poll(run: WatchRun, label: string): Promise<void> {
    const start = run.cursor as string;
    let pageToken: string | undefined;
    let latest: string | undefined;
    do {
      const page = await this.#api.request<GmailHistory>({
        operation: 'users.history.list',
        url: 'gmail/v1/users/me/history',
        query: {
          startHistoryId: start,
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
          const message = await this.#get(added.message.id, label, true, run.signal);
          if (message !== undefined) await run.deliver(message);
        }
        if (/^\d{1,20}$/.test(record.id) && greater(record.id, run.cursor as string)) run.cursor = record.id;
      }
      pageToken = page.data.nextPageToken;
      latest = page.data.historyId ?? latest;
    } while (pageToken !== undefined && pageToken !== '');
    if (latest !== undefined && /^\d{1,20}$/.test(latest) && greater(latest, run.cursor as string)) {
      run.cursor = latest;
    }
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
    return {
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
