/**
 * A mail transport defined outside the package, as a host defines one (JMAP, an in-house API): one file,
 * through the public `defineTransport` entry only. It reads and sends against an in-memory mail server that,
 * like a real one, accepts only access tokens the OAuth provider issued for the mailbox's address.
 */
import type { SendMailOptions } from 'nodemailer';
import {
  defineTransport,
  type FetchUnreadRequest,
  MailAuthenticationError,
  type MailMessage,
  type MailTransportDriver,
  type SentMail,
  type TransportContext,
  type TransportDefinition,
  type WatchRun,
} from '../../src/index.js';
import type { AccessTokenIssuer } from '../../src/testing/index.js';

interface StoredMessage {
  readonly message: MailMessage;
  seen: boolean;
}

/** The server: mailboxes by address, each a list of messages in arrival order, and what was sent. */
export class MemoryMailServer {
  readonly #tokens: AccessTokenIssuer;
  readonly #mailboxes = new Map<string, StoredMessage[]>();
  readonly #arrivals = new Set<() => void>();
  readonly sent: { readonly from: string; readonly to: string; readonly subject: string | undefined }[] = [];
  /** Requests refused for a bad token. */
  refused = 0;

  constructor(tokens: AccessTokenIssuer) {
    this.#tokens = tokens;
  }

  /** A message arrives in `address`'s inbox. */
  deliver(address: string, subject: string): string {
    const box = this.#box(address);
    const id = `m${box.length + 1}`;
    box.push({
      message: {
        id,
        uid: undefined,
        mailbox: 'inbox',
        messageId: `<${id}@memory.example>`,
        subject,
        from: [{ address: 'sender@example.com' }],
        to: [{ address }],
        date: new Date(),
        flags: [],
        source: undefined,
      },
      seen: false,
    });
    for (const wake of this.#arrivals) wake();
    return id;
  }

  /** The mailbox of the token's owner, or a refusal (as a server answers 401). */
  authorize(accessToken: string): StoredMessage[] {
    const info = this.#tokens.accessTokenInfo(accessToken);
    if (info === undefined) {
      this.refused++;
      throw new MailAuthenticationError('The memory server refused the access token', { protocol: 'memory' });
    }
    return this.#box(info.email);
  }

  /** Resolves at the next arrival, or when `signal` aborts. */
  nextArrival(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        this.#arrivals.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#arrivals.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #box(address: string): StoredMessage[] {
    let box = this.#mailboxes.get(address);
    if (box === undefined) {
      box = [];
      this.#mailboxes.set(address, box);
    }
    return box;
  }
}

class MemoryDriver implements MailTransportDriver {
  readonly name = 'memory';
  readonly #server: MemoryMailServer;
  readonly #context: TransportContext;
  #connected = false;

  constructor(server: MemoryMailServer, context: TransportContext) {
    this.#server = server;
    this.#context = context;
  }

  /** The account's mailbox, with a token from the refresher (one forced refresh when the server refuses it). */
  async #box(signal?: AbortSignal): Promise<StoredMessage[]> {
    const { refresher, accountId } = this.#context;
    const token = await refresher.getAccessToken(accountId, signal === undefined ? {} : { signal });
    try {
      const box = this.#server.authorize(token.accessToken);
      this.#connected = true;
      return box;
    } catch (err) {
      const fresh = await refresher.getAccessToken(accountId, {
        forceRefresh: true,
        ...(signal ? { signal } : {}),
      });
      if (fresh.accessToken === token.accessToken) throw err;
      return this.#server.authorize(fresh.accessToken);
    }
  }

  async connect(signal?: AbortSignal): Promise<void> {
    await this.#box(signal);
  }

  async disconnect(): Promise<void> {
    this.#connected = false;
  }

  isConnected(): boolean {
    return this.#connected;
  }

  async *fetchUnread(request: FetchUnreadRequest): AsyncGenerator<MailMessage, void, undefined> {
    const unread = (await this.#box(request.signal)).filter((m) => !m.seen);
    const picked =
      request.order === 'newest' ? unread.slice(-request.max).reverse() : unread.slice(0, request.max);
    for (const { message } of picked) yield message;
  }

  async markAsRead(id: string, options: { readonly signal?: AbortSignal }): Promise<void> {
    const stored = (await this.#box(options.signal)).find((m) => m.message.id === id);
    if (stored !== undefined) stored.seen = true;
  }

  async send(message: SendMailOptions, from: string, signal?: AbortSignal): Promise<SentMail> {
    await this.#box(signal);
    const to = String(message.to);
    this.#server.sent.push({ from: from || String(message.from), to, subject: message.subject });
    const messageId = `<sent-${this.#server.sent.length}@memory.example>`;
    return {
      transport: this.name,
      messageId,
      id: undefined,
      accepted: [to],
      rejected: [],
      response: undefined,
    };
  }

  async watchSession(run: WatchRun): Promise<'renew' | undefined> {
    let box = await this.#box(run.signal);
    run.cursor ??= String(box.length); // the baseline: from now on
    run.ready();
    while (!run.signal.aborted) {
      while (Number(run.cursor) < box.length) {
        const next = box[Number(run.cursor)] as StoredMessage;
        await run.deliver(next.message);
        run.cursor = String(Number(run.cursor) + 1);
      }
      await this.#server.nextArrival(run.signal);
      if (!run.signal.aborted) box = await this.#box(run.signal);
    }
    return undefined;
  }
}

/** The host's transport: `createMailboxAuth({ transports: [memoryTransport(server)] })`. */
export function memoryTransport(server: MemoryMailServer): TransportDefinition {
  return defineTransport({ name: 'memory', create: (context) => new MemoryDriver(server, context) });
}
