import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import type { Cipher } from '../crypto/cipher.js';
import {
  AccountNotFoundError,
  ConfigurationError,
  InvalidArgumentError,
  MailboxAuthError,
  StorageError,
  VersionConflictError,
} from '../errors.js';
import { describeType } from '../internal/text.js';
import { AccountTally } from '../store/account-counts.js';
import {
  ACCOUNT_STATUSES,
  type AccountChange,
  type AccountCountQuery,
  type AccountCounts,
  type AccountFilter,
  type AccountRecord,
  type AccountStatus,
  type AccountStore,
  type AccountWatch,
  type JsonValue,
  type Lease,
  type ListOptions,
  type MailboxActivity,
  type MailboxActivityTotals,
} from '../store/account-store.js';
import {
  assertId,
  assertIdentity,
  assertMailboxActivity,
  assertMailboxActivityQuery,
  assertMetadata,
  assertScopes,
  assertWatchCursor,
  assertWatchCursorKey,
} from '../store/validate.js';
import { type MailboxAccount, toMailboxAccount } from './account.js';
import { SealedTokens } from './sealed-tokens.js';
import { TokenSet, type TokenSetInput } from './token-set.js';

/**
 * Options of {@link TokenPersistence}.
 *
 * @example
 * ```ts
 * new TokenPersistence({ store: memoryStore(), cipher: aesGcmCipher({ keys: { k1: key }, current: 'k1' }) });
 * ```
 */
export interface TokenPersistenceOptions {
  /** Where records live. */
  readonly store: AccountStore;
  /** Encrypts the token blob of every record. */
  readonly cipher: Cipher;
  /** The clock, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** Makes ids for new accounts. @default crypto.randomUUID */
  readonly generateId?: () => string;
}

/**
 * An account with its decrypted tokens (`null` once cleared).
 *
 * @example
 * ```ts
 * const { account, tokens }: StoredAccount = await persistence.load(accountId);
 * ```
 */
export interface StoredAccount {
  /** The account, without secrets. */
  readonly account: MailboxAccount;
  /** The decrypted tokens, or `null` once cleared. */
  readonly tokens: TokenSet | null;
}

/**
 * What {@link TokenPersistence.connect} needs to store a newly authorized mailbox.
 *
 * @example
 * ```ts
 * await persistence.connect({ provider: 'google', owner: 'u1', email: 'ada@example.com', tokens: { accessToken, refreshToken } });
 * ```
 */
export interface ConnectAccountInput {
  /** The provider key, such as `google`. */
  readonly provider: string;
  /** The host's owner of the mailbox. */
  readonly owner: string;
  /** The mailbox address (the identity; with provider and owner it finds an existing account). */
  readonly email: string;
  /** Granted scopes. @default [] */
  readonly scopes?: readonly string[];
  /** The tokens from the code exchange. */
  readonly tokens: TokenSetInput;
  /** Host data. On reconnect, omitted keeps the stored metadata. */
  readonly metadata?: { readonly [key: string]: JsonValue };
  /** Id for a new account. @default a random UUID */
  readonly id?: string;
}

/**
 * Options of {@link TokenPersistence.saveTokens}.
 *
 * @example
 * ```ts
 * await persistence.saveTokens(accountId, tokens, { expectedVersion: account.version });
 * ```
 */
export interface SaveTokensOptions {
  /** Write only if the record is still at this version (else `VersionConflictError`). */
  readonly expectedVersion?: number;
  /** Replace the granted scopes. */
  readonly scopes?: readonly string[];
  /**
   * The account as {@link TokenPersistence.load} returned it, when the caller has just read it: the write then
   * starts from that record instead of reading it again (one store round trip less). It is version-checked
   * either way: if the record changed since, it is read afresh (or, with `expectedVersion`, the write fails).
   */
  readonly basedOn?: MailboxAccount;
  /**
   * The holder whose refresh lease of the account is released with the write: in the same atomic write on
   * a store with `putAccountAndRelease`, else by `releaseLease` after it (a failure of that release does not
   * fail the save: the result says `released: false`, and the lease lapses at its TTL).
   */
  readonly releaseLease?: string;
}

/**
 * What {@link TokenPersistence.saveTokens} returns: the account as written and its tokens, and, when
 * `releaseLease` was given, whether the lease was released.
 *
 * @example
 * ```ts
 * const { account, released }: SavedTokens = await persistence.saveTokens(id, tokens, { basedOn, releaseLease: holder });
 * if (released === false) console.warn('the lease lapses at its TTL');
 * ```
 */
export interface SavedTokens extends StoredAccount {
  /**
   * Only with `releaseLease`: `true` when the holder's lease was released with the write (always, on a store
   * with `putAccountAndRelease`); `false` when the separate release after the write failed or found no
   * lease of that holder (the lease then lapses at its TTL). The tokens are saved either way.
   */
  readonly released?: boolean;
}

/**
 * What {@link TokenPersistence.readAndLease} returns: the account (nothing decrypted yet), the refresh lease
 * if it was taken, and the tokens on demand.
 *
 * @example
 * ```ts
 * const read: LeasedAccount = await persistence.readAndLease(id, holder, 60_000, { dueBefore: Date.now() + 300_000 });
 * if (read.lease !== null) {
 *   const { tokens } = await read.open();
 *   // … refresh, then:
 *   await persistence.saveTokens(id, fresh, { basedOn: read.account, releaseLease: holder });
 * }
 * ```
 */
export interface LeasedAccount {
  /** The account as read, without secrets. */
  readonly account: MailboxAccount;
  /** The lease, when this call took (or extended) it; `null` when not due or another holder has it. */
  readonly lease: Lease | null;
  /** `true` when the token was due but another holder has an unexpired lease. */
  readonly busy: boolean;
  /**
   * The account with its decrypted tokens (decrypted once, then the same promise). The account it returns
   * can be passed as `saveTokens({ basedOn })`, as one `load()` returned.
   */
  open(): Promise<StoredAccount>;
}

/**
 * One change reported by {@link TokenPersistence.watchAccounts}: the store's {@link AccountChange}, with the
 * record written (when the store's notification carried it) as an account and its tokens on demand.
 *
 * @example
 * ```ts
 * const watch = await persistence.watchAccounts((change: AccountChangeEvent) => {
 *   if (change.kind === 'written' && change.open) void change.open().then(({ tokens }) => use(tokens));
 * });
 * ```
 */
export interface AccountChangeEvent {
  /** What happened (see {@link AccountChange}). */
  readonly kind: AccountChange['kind'];
  /** The account id (`''` for `reset`). */
  readonly id: string;
  /** The version written (`written` only). */
  readonly version?: number;
  /** The account written, when the notification carried its record (`written` only). */
  readonly account?: MailboxAccount;
  /**
   * With `account`: decrypts the carried record (once); the account it returns can be passed as
   * `saveTokens({ basedOn })`.
   */
  readonly open?: () => Promise<StoredAccount>;
}

/**
 * A failure to record on an account; the message must not hold a secret (typed errors never do).
 *
 * @example
 * ```ts
 * await persistence.recordFailure(accountId, { code: 'ERR_TOKEN_REFRESH_FAILED', message: 'HTTP 503' });
 * ```
 */
export interface FailureInfo {
  /** A stable code, such as a `MailboxAuthErrorCode` (at most 100 characters are kept). */
  readonly code: string;
  /** What happened (at most 500 characters are kept). */
  readonly message: string;
}

const MAX_CONFLICT_RETRIES = 5;
const MAX_ERROR_MESSAGE = 500;

/**
 * The single place tokens are read and written. It encrypts the token blob of each record with the
 * cipher, bound to the account id; keeps the stored refresh token when new tokens come without one;
 * writes with optimistic concurrency; and turns every store failure into a `StorageError`.
 *
 * @example
 * ```ts
 * import { TokenPersistence, memoryStore, aesGcmCipher } from 'oauth-mailbox';
 * const persistence = new TokenPersistence({
 *   store: memoryStore(),
 *   cipher: aesGcmCipher({ keys: { k1: process.env.TOKEN_KEY! }, current: 'k1' }),
 * });
 * const { account } = await persistence.connect({
 *   provider: 'google', owner: 'user-1', email: 'ada@example.com',
 *   tokens: { accessToken, refreshToken, expiresAt: Date.now() + 3600_000 },
 * });
 * const { tokens } = await persistence.load(account.id);
 * ```
 */
export class TokenPersistence {
  readonly #store: AccountStore;
  /** The record each account returned by `load()` was made from (for `saveTokens({ basedOn })`). */
  readonly #readRecords = new WeakMap<MailboxAccount, AccountRecord>();
  readonly #sealed: SealedTokens;
  readonly #now: () => number;
  readonly #generateId: () => string;

  constructor(options: TokenPersistenceOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigurationError('TokenPersistence: options must be an object with `store` and `cipher`');
    }
    const { store, cipher } = options;
    if (typeof store?.getAccount !== 'function' || typeof store.putAccount !== 'function') {
      throw new ConfigurationError('TokenPersistence: `store` must implement AccountStore');
    }
    if (typeof cipher?.encrypt !== 'function' || typeof cipher.decrypt !== 'function') {
      throw new ConfigurationError('TokenPersistence: `cipher` must implement Cipher (encrypt and decrypt)');
    }
    this.#store = store;
    this.#sealed = new SealedTokens(cipher);
    this.#now = options.now ?? Date.now;
    this.#generateId = options.generateId ?? randomUUID;
  }

  /** The account without decrypting anything; `AccountNotFoundError` if none. */
  async getAccount(id: string): Promise<MailboxAccount> {
    return toMailboxAccount(await this.#get(id));
  }

  /**
   * The account and its decrypted tokens. Throws `AccountNotFoundError`, `CryptoError` (wrong or missing
   * key, tampered record, record copied from another account) or `StorageError`.
   */
  async load(id: string): Promise<StoredAccount> {
    const record = await this.#get(id);
    const account = toMailboxAccount(record);
    this.#readRecords.set(account, record);
    return { account, tokens: await this.#sealed.open(record) };
  }

  /**
   * The account of a mailbox identity (email compared case-insensitively) with its tokens, or `null`.
   */
  async findAccount(identity: {
    readonly provider: string;
    readonly owner: string;
    readonly email: string;
  }): Promise<StoredAccount | null> {
    assertIdentity(identity);
    const record = await this.#call('findAccountByIdentity', undefined, () =>
      this.#store.findAccountByIdentity(identity),
    );
    return record === null
      ? null
      : { account: toMailboxAccount(record), tokens: await this.#sealed.open(record) };
  }

  /**
   * Store a newly authorized mailbox. If the same (provider, owner, email) is already connected, that
   * account is updated in place (same id, status back to `active`, failures reset) instead of duplicated.
   * When the new tokens carry no refresh token, the stored one is kept.
   */
  async connect(input: ConnectAccountInput): Promise<
    StoredAccount & {
      /** `false` when an existing account of the same mailbox was updated. */
      readonly created: boolean;
    }
  > {
    if (typeof input !== 'object' || input === null) {
      throw new InvalidArgumentError(`connect input must be an object (got ${describeType(input)})`);
    }
    // Tokens just obtained by a new consent: issued now, unless the caller says when.
    const given = input.tokens;
    const tokens = new TokenSet(
      typeof given === 'object' && given !== null && given.issuedAt == null
        ? { ...given, issuedAt: this.#now() }
        : given,
    );
    const scopes = checkScopes(input.scopes ?? []);
    // Validated here, above the store, so that every store gives the same answer to the same bad input.
    assertIdentity(input);
    if (input.id !== undefined) assertId(input.id, 'id');
    if (input.metadata !== undefined) assertMetadata(input.metadata);
    const identity = { provider: input.provider, owner: input.owner, email: input.email };
    for (let attempt = 0; ; attempt++) {
      const existing = await this.#call('findAccountByIdentity', undefined, () =>
        this.#store.findAccountByIdentity(identity),
      );
      const now = this.#now();
      try {
        if (existing === null) {
          const id = input.id ?? this.#generateId();
          const record = await this.#put(
            {
              id,
              ...identity,
              scopes,
              status: 'active',
              tokenExpiresAt: tokens.expiresAt?.getTime() ?? null,
              createdAt: now,
              lastRefreshedAt: now,
              lastError: null,
              consecutiveFailures: 0,
              metadata: input.metadata ?? {},
              secret: await this.#sealed.seal(id, tokens),
            },
            null,
          );
          return { account: toMailboxAccount(record), tokens, created: true };
        }
        const merged =
          tokens.refreshToken === null ? await this.#mergeWithStored(existing, input.tokens) : tokens;
        const record = await this.#put(
          {
            ...existing,
            email: input.email,
            scopes,
            status: 'active',
            tokenExpiresAt: merged.expiresAt?.getTime() ?? null,
            lastRefreshedAt: now,
            lastError: null,
            consecutiveFailures: 0,
            metadata: input.metadata ?? existing.metadata,
            secret: await this.#sealed.seal(existing.id, merged),
          },
          existing.version,
        );
        return { account: toMailboxAccount(record), tokens: merged, created: false };
      } catch (err) {
        if (!(err instanceof VersionConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw err;
      }
    }
  }

  /**
   * Save tokens from a refresh. Keeps the stored refresh token when `tokens.refreshToken` is absent, sets
   * status `active`, and clears the failure count. Without `expectedVersion` it re-reads and retries on a
   * concurrent write; with it, a concurrent write is a `VersionConflictError`.
   */
  async saveTokens(id: string, tokens: TokenSetInput, options: SaveTokensOptions = {}): Promise<SavedTokens> {
    const candidate = new TokenSet(tokens);
    const scopes = options.scopes === undefined ? undefined : checkScopes(options.scopes);
    const { expectedVersion, releaseLease: holder } = options;
    if (expectedVersion !== undefined && (!Number.isSafeInteger(expectedVersion) || expectedVersion < 1)) {
      throw new InvalidArgumentError('expectedVersion must be a positive integer');
    }
    if (holder !== undefined) checkHolder(holder);
    const basedOn = options.basedOn === undefined ? undefined : this.#readRecords.get(options.basedOn);
    const read =
      basedOn?.id === id && (expectedVersion === undefined || basedOn.version === expectedVersion)
        ? basedOn
        : undefined;
    const store = this.#store;
    const together = holder !== undefined && typeof store.putAccountAndRelease === 'function';
    const saved = await this.#update(id, expectedVersion, read, async (record) => {
      const next = candidate.refreshToken === null ? await this.#mergeWithStored(record, tokens) : candidate;
      const input = {
        ...record,
        scopes: scopes ?? record.scopes,
        status: 'active' as const,
        tokenExpiresAt: next.expiresAt?.getTime() ?? null,
        lastRefreshedAt: this.#now(),
        lastError: null,
        consecutiveFailures: 0,
        secret: await this.#sealed.seal(record.id, next),
      };
      const updated = together
        ? await this.#call('putAccountAndRelease', id, () =>
            (store.putAccountAndRelease as NonNullable<AccountStore['putAccountAndRelease']>)(input, {
              expectedVersion: record.version,
              holder: holder as string,
            }),
          )
        : await this.#put(input, record.version);
      return { account: toMailboxAccount(updated), tokens: next };
    });
    if (holder === undefined) return saved;
    if (together) return { ...saved, released: true };
    let released = false;
    try {
      released = await this.#call('releaseLease', id, () => store.releaseLease(id, holder));
    } catch {
      // The tokens are saved; the lease lapses at its TTL. The result says so.
    }
    return { ...saved, released };
  }

  /**
   * Read the account and, in the same store call when the store has `readAndLease` (else `getAccount`, then
   * `acquireLease` when due and `getAccount` again under the lease), take its refresh lease for `holder` when the token is due: its expiry is known
   * and `<= dueBefore`, or always with `dueBefore: null`. `busy` says another holder has the lease. Nothing is
   * decrypted until `open()`. Throws `AccountNotFoundError` when no account has this id.
   */
  async readAndLease(
    id: string,
    holder: string,
    ttlMs: number,
    options: { readonly dueBefore: number | null },
  ): Promise<LeasedAccount> {
    checkId(id);
    checkHolder(holder);
    checkLeaseOptions(ttlMs, options);
    const { dueBefore } = options;
    const store = this.#store;
    let record: AccountRecord | null;
    let lease: Lease | null = null;
    let busy = false;
    if (typeof store.readAndLease === 'function') {
      const read = await this.#call('readAndLease', id, () =>
        (store.readAndLease as NonNullable<AccountStore['readAndLease']>)(id, holder, ttlMs, { dueBefore }),
      );
      ({ record, lease, busy } = read);
    } else {
      record = await this.#call('getAccount', id, () => store.getAccount(id));
      const due =
        record !== null &&
        (dueBefore === null || (record.tokenExpiresAt !== null && record.tokenExpiresAt <= dueBefore));
      if (due) {
        lease = await this.#call('acquireLease', id, () => store.acquireLease(id, holder, ttlMs));
        busy = lease === null;
        // Read again under the lease: a holder may have written (and released) between the read and the
        // lease, and refreshing with the refresh token it replaced would be invalid_grant at a rotating provider.
        if (lease !== null) record = await this.#call('getAccount', id, () => store.getAccount(id));
      }
    }
    if (record === null) throw new AccountNotFoundError('No account has this id', { accountId: id });
    const { account, open } = this.#opener(record);
    return { account, lease, busy, open };
  }

  /**
   * Call `listener` with every committed change of any account, from every process sharing the store (see
   * {@link AccountChangeEvent}), until the returned watch is closed; `null` when the store has no
   * `watchAccounts` (then poll). A listener that throws is isolated: the error is dropped (there is no logger
   * at this layer) and the watch goes on; catch in the listener to handle it.
   */
  async watchAccounts(listener: (change: AccountChangeEvent) => void): Promise<AccountWatch | null> {
    if (typeof listener !== 'function') {
      throw new InvalidArgumentError(`listener must be a function (got ${describeType(listener)})`);
    }
    const store = this.#store;
    if (typeof store.watchAccounts !== 'function') return null;
    return this.#call('watchAccounts', undefined, () =>
      (store.watchAccounts as NonNullable<AccountStore['watchAccounts']>)((change) => {
        try {
          const { kind, id, version, record } = change;
          if (record === undefined || record.id !== id) {
            listener(version === undefined ? { kind, id } : { kind, id, version });
            return;
          }
          const { account, open } = this.#opener(record);
          listener({ kind, id, version: version ?? record.version, account, open });
        } catch {
          // The host's listener failed: isolated, so that the store's watch goes on (documented above).
        }
      }),
    );
  }

  /** Whether the store keeps watch positions (`getWatchCursor` and `putWatchCursor`). */
  get keepsWatchCursors(): boolean {
    return (
      typeof this.#store.getWatchCursor === 'function' && typeof this.#store.putWatchCursor === 'function'
    );
  }

  /**
   * The watch position saved for the account under `key` (a transport and folder, `imap:INBOX`), or `null`
   * when none was saved or the store keeps none (see {@link TokenPersistence.keepsWatchCursors}).
   *
   * @example
   * ```ts
   * const cursor = await persistence.getWatchCursor(accountId, 'imap:INBOX');
   * ```
   */
  async getWatchCursor(accountId: string, key: string): Promise<string | null> {
    const store = this.#store;
    assertWatchCursorKey(accountId, key);
    if (typeof store.getWatchCursor !== 'function') return null;
    return this.#call('getWatchCursor', accountId, () =>
      (store.getWatchCursor as NonNullable<AccountStore['getWatchCursor']>)(accountId, key),
    );
  }

  /**
   * Save the account's watch position under `key`; `false` when the account no longer exists or the store
   * keeps no positions. Watchers call it after each delivery; a failure is a `StorageError`.
   *
   * @example
   * ```ts
   * await persistence.putWatchCursor(accountId, 'imap:INBOX', watcher.cursor);
   * ```
   */
  async putWatchCursor(accountId: string, key: string, cursor: string): Promise<boolean> {
    const store = this.#store;
    assertWatchCursor(accountId, key, cursor);
    if (typeof store.putWatchCursor !== 'function') return false;
    return this.#call('putWatchCursor', accountId, () =>
      (store.putWatchCursor as NonNullable<AccountStore['putWatchCursor']>)(accountId, key, cursor),
    );
  }

  /** Whether the store keeps mailbox activity (`addMailboxActivity` and `getMailboxActivity`). */
  get keepsMailboxActivity(): boolean {
    return (
      typeof this.#store.addMailboxActivity === 'function' &&
      typeof this.#store.getMailboxActivity === 'function'
    );
  }

  /**
   * Add a mailbox's activity of one hour to the store; `false` when the account no longer exists or the
   * store keeps no activity. Watchers' figures are written through it; a failure is a `StorageError`.
   *
   * @example
   * ```ts
   * await persistence.addMailboxActivity(accountId, { hour, processed: 1, failed: 0, errors: 0, handlerMs: 12, lastSuccessAt: Date.now(), lastError: null });
   * ```
   */
  async addMailboxActivity(accountId: string, activity: MailboxActivity): Promise<boolean> {
    const store = this.#store;
    assertMailboxActivity(accountId, activity);
    if (typeof store.addMailboxActivity !== 'function') return false;
    return this.#call('addMailboxActivity', accountId, () =>
      (store.addMailboxActivity as NonNullable<AccountStore['addMailboxActivity']>)(accountId, activity),
    );
  }

  /**
   * The stored activity of the listed accounts (at most 1000) from `sinceHour` on: one entry per account
   * with any; `[]` when the store keeps none. A failure is a `StorageError`.
   *
   * @example
   * ```ts
   * const totals = await persistence.getMailboxActivity([accountId], hour - 23 * 3_600_000);
   * ```
   */
  async getMailboxActivity(
    accountIds: readonly string[],
    sinceHour: number,
  ): Promise<MailboxActivityTotals[]> {
    const store = this.#store;
    assertMailboxActivityQuery(accountIds, sinceHour);
    if (typeof store.getMailboxActivity !== 'function') return [];
    return this.#call('getMailboxActivity', undefined, () =>
      (store.getMailboxActivity as NonNullable<AccountStore['getMailboxActivity']>)(accountIds, sinceHour),
    );
  }

  /** The account of a record in hand, and its tokens decrypted once on demand (registered for `basedOn`). */
  #opener(record: AccountRecord): { account: MailboxAccount; open: () => Promise<StoredAccount> } {
    const account = toMailboxAccount(record);
    let opened: Promise<StoredAccount> | undefined;
    return {
      account,
      open: () => {
        opened ??= this.#sealed.open(record).then((tokens) => {
          this.#readRecords.set(account, record);
          return { account, tokens };
        });
        return opened;
      },
    };
  }

  /**
   * Forget the tokens of an account (after a disconnect or a revocation) and set its status.
   * @param options.status The status to set. @default 'revoked'
   */
  async clearTokens(id: string, options: { readonly status?: AccountStatus } = {}): Promise<MailboxAccount> {
    const status = checkStatus(options.status ?? 'revoked');
    return this.#update(id, undefined, undefined, async (record) =>
      toMailboxAccount(
        await this.#put({ ...record, status, tokenExpiresAt: null, secret: '' }, record.version),
      ),
    );
  }

  /**
   * Record a failure: sets `lastError`, increments `consecutiveFailures`, and optionally the status
   * (`reauth_required` after `invalid_grant`, say).
   */
  async recordFailure(
    id: string,
    failure: FailureInfo,
    options: { readonly status?: AccountStatus } = {},
  ): Promise<MailboxAccount> {
    if (typeof failure?.code !== 'string' || typeof failure.message !== 'string') {
      throw new InvalidArgumentError('failure must be { code: string, message: string }');
    }
    const status = options.status === undefined ? undefined : checkStatus(options.status);
    const lastError = {
      code: storable(failure.code.slice(0, 100)),
      message: storable(failure.message.slice(0, MAX_ERROR_MESSAGE)),
      at: this.#now(),
    };
    return this.#update(id, undefined, undefined, async (record) =>
      toMailboxAccount(
        await this.#put(
          {
            ...record,
            status: status ?? record.status,
            lastError,
            consecutiveFailures: record.consecutiveFailures + 1,
          },
          record.version,
        ),
      ),
    );
  }

  /**
   * Whether the account can be used: status `active`, tokens stored, and either a refresh token or an
   * unexpired access token. `false` when no account has this id; store and crypto failures still throw.
   */
  async isAuthenticated(id: string): Promise<boolean> {
    let loaded: StoredAccount;
    try {
      loaded = await this.load(id);
    } catch (err) {
      if (err instanceof AccountNotFoundError) return false;
      throw err;
    }
    const { account, tokens } = loaded;
    if (account.status !== 'active' || tokens === null) return false;
    return tokens.refreshToken !== null || !tokens.isExpired(0, this.#now());
  }

  /**
   * Take (or extend) the account's refresh lease for `ttlMs`; `null` if another holder has it. Used by the
   * refresher so that one process refreshes a token.
   */
  async acquireLease(id: string, holder: string, ttlMs: number): Promise<Lease | null> {
    checkId(id);
    return this.#call('acquireLease', id, () => this.#store.acquireLease(id, holder, ttlMs));
  }

  /** Release the account's refresh lease if `holder` has it. */
  async releaseLease(id: string, holder: string): Promise<boolean> {
    checkId(id);
    return this.#call('releaseLease', id, () => this.#store.releaseLease(id, holder));
  }

  /** One page of accounts (no secrets), for fleet operations. */
  async listAccounts(
    filter?: AccountFilter,
    options?: ListOptions,
  ): Promise<{
    /** The accounts of this page, ordered by id. */
    accounts: MailboxAccount[];
    /** Pass it back as `cursor` for the next page; `null` after the last one. */
    nextCursor: string | null;
  }> {
    const page = await this.#call('listAccounts', undefined, () => this.#store.listAccounts(filter, options));
    return { accounts: page.records.map(toMailboxAccount), nextCursor: page.nextCursor };
  }

  /**
   * The {@link AccountCounts} of every account: the store's own `countAccounts` when it has one (`counted:
   * 'store'`), else a page-by-page walk of the records, nothing decrypted (`counted: 'walk'`).
   */
  async countAccounts(
    query: AccountCountQuery,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<{
    /** The figures. */
    counts: AccountCounts;
    /** How they were computed. */
    counted: 'store' | 'walk';
  }> {
    const store = this.#store;
    if (typeof store.countAccounts === 'function') {
      const counts = await this.#call('countAccounts', undefined, () =>
        (store.countAccounts as NonNullable<AccountStore['countAccounts']>)(query),
      );
      return { counts, counted: 'store' };
    }
    const tally = new AccountTally(query);
    let cursor: string | null = null;
    do {
      options.signal?.throwIfAborted();
      const page = await this.#call('listAccounts', undefined, () =>
        store.listAccounts({}, { cursor, limit: 1000 }),
      );
      for (const r of page.records) tally.add(r);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return { counts: tally.counts(), counted: 'walk' };
  }

  /** Delete the account and its tokens; `true` if it existed. */
  async deleteAccount(id: string): Promise<boolean> {
    checkId(id);
    return this.#call('deleteAccount', id, () => this.#store.deleteAccount(id));
  }

  /**
   * Re-encrypt the account's tokens with the cipher's current key if `cipher.needsReencryption` says so.
   * Returns `true` if the record was rewritten.
   */
  async reencrypt(id: string): Promise<boolean> {
    return this.#update(id, undefined, undefined, async (record) => {
      if (record.secret === '' || !this.#sealed.needsResealing(record.secret)) return false;
      const tokens = (await this.#sealed.open(record)) as TokenSet;
      await this.#put({ ...record, secret: await this.#sealed.seal(record.id, tokens) }, record.version);
      return true;
    });
  }

  async #update<T>(
    id: string,
    expectedVersion: number | undefined,
    read: AccountRecord | undefined,
    write: (record: AccountRecord) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      // A record the caller has just read is the first attempt's; a conflict means it was stale: read again.
      const record = attempt === 0 && read !== undefined ? read : await this.#get(id);
      if (expectedVersion !== undefined && record.version !== expectedVersion) {
        throw new VersionConflictError('The account changed since it was read', {
          accountId: id,
          expectedVersion,
          actualVersion: record.version,
        });
      }
      try {
        return await write(record);
      } catch (err) {
        if (
          !(err instanceof VersionConflictError) ||
          expectedVersion !== undefined ||
          attempt >= MAX_CONFLICT_RETRIES
        ) {
          throw err;
        }
      }
    }
  }

  async #get(id: string): Promise<AccountRecord> {
    checkId(id);
    const record = await this.#call('getAccount', id, () => this.#store.getAccount(id));
    if (record === null) throw new AccountNotFoundError('No account has this id', { accountId: id });
    return record;
  }

  #put(
    record: Omit<AccountRecord, 'version' | 'updatedAt'>,
    expectedVersion: number | null,
  ): Promise<AccountRecord> {
    return this.#call('putAccount', record.id, () => this.#store.putAccount(record, { expectedVersion }));
  }

  async #call<T>(operation: string, accountId: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      if (cause instanceof MailboxAuthError) throw cause;
      throw new StorageError(`The account store failed (${operation})`, { operation, accountId, cause });
    }
  }

  async #mergeWithStored(record: AccountRecord, input: TokenSetInput): Promise<TokenSet> {
    const stored = await this.#sealed.open(record);
    return stored === null ? new TokenSet(input) : stored.merge(input);
  }

  /** @internal */
  [inspect.custom](): string {
    return 'TokenPersistence {}';
  }

  /** @internal */
  toJSON(): Record<string, never> {
    return {};
  }
}

function checkId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) {
    throw new InvalidArgumentError(`account id must be a non-empty string (got ${describeType(id)})`);
  }
  assertId(id, 'account id');
}

function checkHolder(holder: unknown): asserts holder is string {
  if (typeof holder !== 'string' || holder.length === 0) {
    throw new InvalidArgumentError(`lease holder must be a non-empty string (got ${describeType(holder)})`);
  }
  assertId(holder, 'holder');
}

function checkLeaseOptions(ttlMs: unknown, options: unknown): void {
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new InvalidArgumentError('ttlMs must be a positive integer (milliseconds)');
  }
  const dueBefore = (options as { dueBefore?: unknown } | null | undefined)?.dueBefore;
  if (dueBefore !== null && (typeof dueBefore !== 'number' || !Number.isSafeInteger(dueBefore))) {
    throw new InvalidArgumentError('options.dueBefore must be null or an epoch-millisecond integer');
  }
}

function checkScopes(scopes: unknown): readonly string[] {
  assertScopes(scopes);
  return [...scopes];
}

/**
 * A failure text every store keeps as given: a slice may cut a surrogate pair, and a server's text may hold a
 * NUL (PostgreSQL refuses it).
 */
function storable(text: string): string {
  return (text as string & { toWellFormed(): string }).toWellFormed().replaceAll('\u0000', '\ufffd');
}

function checkStatus(status: unknown): AccountStatus {
  if (!ACCOUNT_STATUSES.includes(status as AccountStatus)) {
    throw new InvalidArgumentError(`status must be one of ${ACCOUNT_STATUSES.join(', ')}`);
  }
  return status as AccountStatus;
}
