/**
 * `WatchOrchestrator`: watchers (IMAP IDLE, Gmail API or Graph polling) for many accounts, split between
 * instances by store leases.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { inspect } from 'node:util';
import { ConfigurationError, InvalidArgumentError, isMailboxAuthError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { MailboxClient, type MailboxClientContext } from './client.js';
import type {
  FailedMessage,
  MailboxClientOptions,
  MailboxHealth,
  Watcher,
  WatchRetryOptions,
} from './client-options.js';
import { deliverySettings } from './delivery.js';
import type { MailMessage } from './message.js';

/**
 * Options of {@link WatchOrchestrator}.
 *
 * @example
 * ```ts
 * auth.watchOrchestrator({ onMessage: (accountId, message) => queue.push(message.id), leaseTtlMs: 30_000, maxConcurrentConnects: 4 });
 * ```
 */
export interface WatchOrchestratorOptions {
  /** Called for every new message of every watched account. */
  readonly onMessage: (accountId: string, message: MailMessage) => void | Promise<void>;
  /**
   * Called when an account's watcher stopped for good: re-authorization required, or a request the server
   * refuses (an unknown mailbox, a transport the provider does not offer, a deleted account).
   */
  readonly onStopped?: (accountId: string, error: Error) => void;
  /**
   * Options of each account's `MailboxClient` (`transport`, `api`, `imap`, ...); `add(id, { client })`
   * overrides them for one account. Without a `transport`, each account uses its provider's default.
   */
  readonly mailbox?: MailboxClientOptions;
  /**
   * How long an instance's claim on an account's watch lasts without renewal, in milliseconds. A crashed
   * instance's accounts are picked up by the others within this time.
   * @default 60000
   */
  readonly leaseTtlMs?: number;
  /**
   * Watchers connecting at once (a restart with thousands of accounts does not storm the server).
   * @default 8
   */
  readonly maxConcurrentConnects?: number;
  /**
   * When `onMessage` throws: how often the same message is tried again, with backoff, before it is skipped
   * and reported (see `WatchOptions.retry`).
   * @default { retries: 5, minDelayMs: 1000, maxDelayMs: 60000 }
   */
  readonly retry?: WatchRetryOptions;
  /** Receives each message skipped after its retries (a dead-letter store); its failure is logged. */
  readonly onFailedMessage?: (
    accountId: string,
    message: MailMessage,
    failure: FailedMessage & { readonly error: unknown },
  ) => void | Promise<void>;
  /** This instance's lease holder id. @default `<hostname>:<pid>:<random>` */
  readonly holderId?: string;
  /** Receives the orchestrator's log lines; never a secret. @default silent */
  readonly logger?: Logger;
}

/**
 * State of one account in the orchestrator.
 *
 * @example
 * ```ts
 * const state: WatchState = orchestrator.health()[0]?.state ?? 'waiting';
 * ```
 */
export type WatchState = 'waiting' | 'starting' | 'watching' | 'stopped';

/**
 * Health of one watched account.
 *
 * @example
 * ```ts
 * const unhealthy = orchestrator.health().filter((h: WatchHealth) => h.state !== 'watching');
 * ```
 */
export interface WatchHealth extends MailboxHealth {
  /** The account. */
  readonly accountId: string;
  /** Where its watch stands on this instance. */
  readonly state: WatchState;
  /** Whether this instance holds the account's watch lease. */
  readonly leased: boolean;
}

/**
 * Options of {@link WatchOrchestrator.add}.
 *
 * @example
 * ```ts
 * orchestrator.add(account.id, { mailbox: 'INBOX', client: { transport: 'graph', api: { pollIntervalMs: 10_000 } } });
 * ```
 */
export interface WatchAddOptions {
  /** The folder (IMAP), label id (Gmail API) or folder id (Graph) to watch. @default 'INBOX' */
  readonly mailbox?: string;
  /**
   * Several folders of the account, each watched on its own with its own saved position (`['INBOX', 'Junk']`,
   * Gmail label ids, Graph folders); messages carry their `mailbox`. Instead of `mailbox`. At most 20.
   */
  readonly mailboxes?: readonly string[];
  /**
   * This account's `MailboxClient` options, over the orchestrator's `mailbox` options: a transport chosen
   * per account, say Graph for one tenant and IMAP for the others. Each option given here wins; `api`,
   * `imap`, `smtp` and `reconnect` are merged one level deep (`client: { api: { pollIntervalMs } }` keeps the
   * orchestrator's `api.fetch`).
   */
  readonly client?: MailboxClientOptions;
}

/** One watched folder of an account. */
interface Folder {
  readonly mailbox: string;
  client: MailboxClient | undefined;
  watcher: Watcher | undefined;
  /** Where the last watcher stopped (resume point for the next one, when the store keeps none). */
  cursor: string | undefined;
}

interface Entry {
  readonly accountId: string;
  readonly folders: readonly Folder[];
  readonly clientOptions: MailboxClientOptions;
  state: WatchState;
  leased: boolean;
}

const IDLE_HEALTH: MailboxHealth = {
  connected: false,
  watching: false,
  lastSuccessAt: null,
  lastError: null,
  errorsLast24h: 0,
  messagesLast24h: 0,
  failedMessagesLast24h: 0,
};

/** The health of an account's folders as one: connected and watching when all are, the latest times, the sums. */
function combineHealth(list: readonly MailboxHealth[]): MailboxHealth {
  if (list.length === 0) return IDLE_HEALTH;
  if (list.length === 1) return list[0] as MailboxHealth;
  const latest = <T extends { getTime(): number } | null>(values: T[]): T | null =>
    values.reduce<T | null>(
      (a, b) => (b !== null && (a === null || b.getTime() > a.getTime()) ? b : a),
      null,
    );
  const errors = list.map((h) => h.lastError).filter((e) => e !== null);
  return {
    connected: list.every((h) => h.connected),
    watching: list.every((h) => h.watching),
    lastSuccessAt: latest(list.map((h) => h.lastSuccessAt)),
    lastError: errors.reduce<MailboxHealth['lastError']>((a, b) => (a === null || b.at > a.at ? b : a), null),
    errorsLast24h: list.reduce((n, h) => n + h.errorsLast24h, 0),
    messagesLast24h: list.reduce((n, h) => n + h.messagesLast24h, 0),
    failedMessagesLast24h: list.reduce((n, h) => n + h.failedMessagesLast24h, 0),
  };
}

const LEASE_PREFIX = 'watch:';

/** The orchestrator's client options with an account's over them; the option objects merged one level deep. */
function mergeClientOptions(
  base: MailboxClientOptions | undefined,
  own: MailboxClientOptions | undefined,
): MailboxClientOptions {
  if (own === undefined) return base ?? {};
  const merged: Record<string, unknown> = { ...base, ...own };
  for (const key of ['api', 'imap', 'smtp', 'reconnect'] as const) {
    if (base?.[key] !== undefined && own[key] !== undefined) merged[key] = { ...base[key], ...own[key] };
  }
  return merged as MailboxClientOptions;
}

/**
 * Runs watchers for many accounts, each over its account's transport (IMAP IDLE, or Gmail API / Graph
 * polling). With a shared store, several instances split the accounts between
 * them: an instance watches an account only while it holds the account's watch lease (renewed every third
 * of `leaseTtlMs`); when an instance dies its leases lapse and the others take its accounts over. Connects
 * are bounded; each watcher reconnects with backoff on its own; a watcher that needs re-authorization stops
 * and is reported through `onStopped`.
 *
 * @example
 * ```ts
 * const orchestrator = auth.watchOrchestrator({
 *   onMessage: async (accountId, message) => queue.push({ accountId, subject: message.subject }),
 *   onStopped: (accountId) => notifyUser(accountId),
 * });
 * for (const account of accounts) orchestrator.add(account.id);
 * // on shutdown
 * await orchestrator.stopAll();
 * ```
 */
export class WatchOrchestrator {
  readonly #context: MailboxClientContext;
  readonly #options: WatchOrchestratorOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #ttl: number;
  readonly #maxConnects: number;
  readonly #holder: string;
  readonly #logger: Logger;
  #connecting = 0;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #stopped = false;

  constructor(context: MailboxClientContext, options: WatchOrchestratorOptions) {
    if (typeof options?.onMessage !== 'function')
      throw new ConfigurationError('WatchOrchestrator: onMessage is required');
    this.#ttl = options.leaseTtlMs ?? 60_000;
    this.#maxConnects = options.maxConcurrentConnects ?? 8;
    if (!Number.isSafeInteger(this.#ttl) || this.#ttl < 300) {
      throw new ConfigurationError(
        'WatchOrchestrator: leaseTtlMs must be an integer of at least 300 (milliseconds)',
      );
    }
    if (!Number.isSafeInteger(this.#maxConnects) || this.#maxConnects < 1) {
      throw new ConfigurationError('WatchOrchestrator: maxConcurrentConnects must be a positive integer');
    }
    try {
      deliverySettings(options.retry === undefined ? {} : { retry: options.retry }); // checked now
    } catch (err) {
      throw new ConfigurationError(`WatchOrchestrator: ${(err as Error).message}`);
    }
    if (options.onFailedMessage !== undefined && typeof options.onFailedMessage !== 'function')
      throw new ConfigurationError('WatchOrchestrator: onFailedMessage must be a function');
    this.#context = context;
    this.#options = options;
    this.#holder = options.holderId ?? `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    this.#logger = options.logger ?? silentLogger;
  }

  /** This instance's lease holder id. */
  get holderId(): string {
    return this.#holder;
  }

  /**
   * Watch an account (when this instance gets its lease). Its client options are checked now: a bad
   * `client` option throws `InvalidArgumentError` and adds nothing. Adding an account already added does
   * nothing.
   */
  add(accountId: string, options: WatchAddOptions = {}): void {
    if (typeof accountId !== 'string' || accountId.length === 0)
      throw new InvalidArgumentError('accountId must be a non-empty string');
    if (this.#stopped) throw new InvalidArgumentError('the orchestrator was stopped');
    if (
      options.mailbox !== undefined &&
      (typeof options.mailbox !== 'string' || options.mailbox.length === 0)
    )
      throw new InvalidArgumentError('mailbox must be a non-empty string');
    const mailboxes = options.mailboxes;
    if (mailboxes !== undefined) {
      if (options.mailbox !== undefined)
        throw new InvalidArgumentError('give mailbox or mailboxes, not both');
      if (
        !Array.isArray(mailboxes) ||
        mailboxes.length === 0 ||
        mailboxes.length > 20 ||
        mailboxes.some((m) => typeof m !== 'string' || m.length === 0) ||
        new Set(mailboxes).size !== mailboxes.length
      )
        throw new InvalidArgumentError('mailboxes must be 1 to 20 distinct non-empty strings');
    }
    if (options.client !== undefined && (typeof options.client !== 'object' || options.client === null))
      throw new InvalidArgumentError('client must be an object of MailboxClient options');
    const clientOptions = mergeClientOptions(this.#options.mailbox, options.client);
    new MailboxClient(this.#context, accountId, clientOptions); // validates the options; nothing runs yet
    if (this.#entries.has(accountId)) return;
    this.#entries.set(accountId, {
      accountId,
      folders: (mailboxes ?? [options.mailbox ?? 'INBOX']).map((mailbox) => ({
        mailbox,
        client: undefined,
        watcher: undefined,
        cursor: undefined,
      })),
      clientOptions,
      state: 'waiting',
      leased: false,
    });
    this.#schedule(0);
  }

  /** Stop watching an account and give up its lease. */
  async remove(accountId: string): Promise<void> {
    const entry = this.#entries.get(accountId);
    if (entry === undefined) return;
    this.#entries.delete(accountId);
    await this.#stop(entry, true);
  }

  /** Restart an account's watcher (after its settings changed), resuming where the last one stopped. */
  async refresh(accountId: string): Promise<void> {
    const entry = this.#entries.get(accountId);
    if (entry === undefined) return;
    await this.#stop(entry, false);
    entry.state = 'waiting';
    this.#schedule(0);
  }

  /**
   * Stop every watcher. By default the leases are released so other instances take over at once; with
   * `releaseLeases: false` they lapse after `leaseTtlMs` (what a crash looks like to the others).
   */
  async stopAll(options: { readonly releaseLeases?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#ticking;
    await Promise.all(
      [...this.#entries.values()].map((entry) => this.#stop(entry, options.releaseLeases !== false)),
    );
    this.#entries.clear();
  }

  /** Health of every account this instance was asked to watch. */
  health(): WatchHealth[] {
    return [...this.#entries.values()].map((entry) => ({
      ...combineHealth(
        entry.folders.flatMap((folder) => (folder.client === undefined ? [] : [folder.client.health()])),
      ),
      accountId: entry.accountId,
      state: entry.state,
      leased: entry.leased,
    }));
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
        this.#schedule(Math.max(100, Math.floor(this.#ttl / 3)));
      });
    }, delayMs);
    this.#timer.unref?.();
  }

  /** Renew held leases, drop lost ones, claim free accounts and start their watchers (bounded). */
  async #tick(): Promise<void> {
    for (const entry of this.#entries.values()) {
      if (this.#stopped) return;
      if (entry.state === 'stopped') continue;
      let lease: Awaited<ReturnType<MailboxClientContext['persistence']['acquireLease']>> = null;
      try {
        lease = await this.#context.persistence.acquireLease(
          LEASE_PREFIX + entry.accountId,
          this.#holder,
          this.#ttl,
        );
      } catch (err) {
        this.#logger.warn(
          { accountId: entry.accountId, code: (err as { code?: string }).code },
          'watch lease check failed',
        );
        continue;
      }
      if (lease === null) {
        if (entry.leased) {
          this.#logger.warn({ accountId: entry.accountId }, 'watch lease lost; stopping this watcher');
          await this.#stop(entry, false);
          entry.state = 'waiting';
          entry.leased = false;
        }
        continue;
      }
      entry.leased = true;
      if (entry.state === 'waiting' && this.#connecting < this.#maxConnects) void this.#start(entry);
    }
  }

  async #start(entry: Entry): Promise<void> {
    entry.state = 'starting';
    this.#connecting++;
    try {
      const watchers = entry.folders.map((folder) => this.#watchFolder(entry, folder));
      entry.state = 'watching';
      // Count the connect as done once the watchers are connected or have ended, or after 5 s (a server that
      // keeps failing must not hold a connect slot: the watchers go on retrying with backoff).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(watchers.map((w) => w.ready)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 5_000);
        }),
      ]);
      clearTimeout(timer);
    } finally {
      this.#connecting--;
    }
  }

  /** Start one folder's watcher; a permanent failure of it stops the account (every folder). */
  #watchFolder(entry: Entry, folder: Folder): Watcher {
    const client = new MailboxClient(this.#context, entry.accountId, entry.clientOptions);
    folder.client = client;
    const watcher = client.watch(
      async (message) => {
        await this.#options.onMessage(entry.accountId, message);
      },
      {
        mailbox: folder.mailbox,
        ...(this.#options.retry === undefined ? {} : { retry: this.#options.retry }),
        ...(this.#options.onFailedMessage === undefined
          ? {}
          : {
              onFailedMessage: (message: MailMessage, failure: FailedMessage & { readonly error: unknown }) =>
                this.#options.onFailedMessage?.(entry.accountId, message, failure),
            }),
        // The store's position is the newest (another instance may have watched since this one stopped);
        // this instance's own is the fallback of a store that keeps none.
        ...(folder.cursor === undefined || this.#context.persistence.keepsWatchCursors
          ? {}
          : { cursor: folder.cursor }),
      },
    );
    folder.watcher = watcher;
    watcher.done.catch((err: Error) => {
      if (folder.watcher !== watcher || entry.state === 'stopped') return;
      entry.state = 'stopped';
      this.#logger.warn(
        {
          accountId: entry.accountId,
          mailbox: folder.mailbox,
          code: isMailboxAuthError(err) ? err.code : err.name,
        },
        'watcher stopped',
      );
      this.#options.onStopped?.(entry.accountId, err);
      // The other folders stop too; the clients stay for health() (their last error).
      for (const other of entry.folders) if (other !== folder) void other.watcher?.stop();
      void this.#context.persistence
        .releaseLease(LEASE_PREFIX + entry.accountId, this.#holder)
        .catch(() => {});
      entry.leased = false;
    });
    return watcher;
  }

  async #stop(entry: Entry, release: boolean): Promise<void> {
    await Promise.all(
      entry.folders.map(async (folder) => {
        const { watcher, client } = folder;
        folder.watcher = undefined;
        folder.client = undefined;
        await watcher?.stop();
        if (watcher?.cursor !== undefined) folder.cursor = watcher.cursor;
        await client?.disconnect();
      }),
    );
    if (release && entry.leased) {
      await this.#context.persistence
        .releaseLease(LEASE_PREFIX + entry.accountId, this.#holder)
        .catch(() => {});
    }
    entry.leased = release ? false : entry.leased;
  }

  /** @internal */
  [inspect.custom](): string {
    return `WatchOrchestrator { holder: '${this.#holder}', accounts: ${this.#entries.size} }`;
  }
}
