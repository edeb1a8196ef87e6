/**
 * The TokenRefresher: a valid access token for any account, one refresh per expiry across processes.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import pRetry from 'p-retry';
import {
  ConfigurationError,
  InvalidArgumentError,
  isMailboxAuthError,
  MailboxAuthError,
  ReauthorizationRequiredError,
  TokenExpiredError,
  TokenRefreshError,
} from '../errors.js';
import { emitSafely } from '../events.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { ProviderTokenResult } from '../providers/types.js';
import type { AccountStatus } from '../storage/account-store.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { StoredAccount, TokenPersistence } from '../tokens/persistence.js';
import type { TokenSetInput } from '../tokens/token-set.js';
import {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitSnapshot,
  type CircuitState,
} from './circuit-breaker.js';
import { type Logger, silentLogger } from './logger.js';

/**
 * Retry policy of transient refresh failures.
 *
 * @example
 * ```ts
 * createMailboxAuth({ ...config, refresh: { retry: { retries: 5, maxRetryTimeMs: 60_000 } } });
 * ```
 */
export interface RefreshRetryOptions {
  /** Retries after the first attempt. @default 3 */
  readonly retries?: number;
  /** First backoff, in milliseconds (then doubling, with jitter). @default 500 */
  readonly minDelayMs?: number;
  /** Largest backoff, in milliseconds. @default 10000 */
  readonly maxDelayMs?: number;
  /** Give up once this much time has passed since the first attempt, in milliseconds. @default 30000 */
  readonly maxRetryTimeMs?: number;
}

/**
 * Options of {@link TokenRefresher}.
 *
 * @example
 * ```ts
 * new TokenRefresher({ persistence, registry, minValidityMs: 600_000, leaseTtlMs: 90_000, logger: pino() });
 * ```
 */
export interface TokenRefresherOptions {
  /** Reads and writes the accounts' encrypted tokens, and holds the refresh leases. */
  readonly persistence: TokenPersistence;
  /** Resolves each account's provider. */
  readonly registry: ProviderRegistry;
  /**
   * Refresh when the access token expires within this many milliseconds.
   * @default 300000 (5 minutes)
   */
  readonly minValidityMs?: number;
  /**
   * How long a refresh lease lasts, in milliseconds; it is extended while a rotated token waits to be stored.
   * Must exceed the longest refresh (retries included).
   * @default 60000
   */
  readonly leaseTtlMs?: number;
  /**
   * How long to wait for another process's refresh before failing with a retryable `TokenRefreshError`,
   * in milliseconds.
   * @default 20000
   */
  readonly waitForOtherRefreshMs?: number;
  /** Retries of transient failures. */
  readonly retry?: RefreshRetryOptions;
  /** Per-provider circuit breaker; `false` disables it. */
  readonly circuitBreaker?: CircuitBreakerOptions | false;
  /** Receives events as log lines; never a secret. @default silent */
  readonly logger?: Logger;
  /** This process's lease holder id. @default `<hostname>:<pid>:<random>` */
  readonly holderId?: string;
  /** The clock, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

/**
 * Options of {@link TokenRefresher.getAccessToken}.
 *
 * @example
 * ```ts
 * await auth.getAccessToken(accountId, { minValidityMs: 30 * 60_000, signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface GetAccessTokenOptions {
  /** Refresh if the token expires within this many milliseconds. @default the refresher's `minValidityMs` */
  readonly minValidityMs?: number;
  /**
   * Refresh even if the token looks valid (a mail server rejected it). Skipped when another caller already
   * replaced the token this caller holds.
   */
  readonly forceRefresh?: boolean;
  /** Stops waiting (and the refresh, once every waiting caller has stopped). */
  readonly signal?: AbortSignal;
}

/**
 * A usable access token. `accessToken` is readable but never serialized: `JSON.stringify` and
 * `util.inspect` show `[redacted]`.
 *
 * @example
 * ```ts
 * const token: AccessToken = await auth.getAccessToken(accountId);
 * fetch(url, { headers: { authorization: `Bearer ${token.accessToken}` } });
 * ```
 */
export class AccessToken {
  readonly #token: string;
  /** The account the token is for. */
  readonly accountId: string;
  /** The account's provider id. */
  readonly provider: string;
  /** The mailbox address (the SASL user for IMAP and SMTP). */
  readonly email: string;
  /** When it expires, or `null` when the provider did not say. */
  readonly expiresAt: Date | null;

  /** @internal */
  constructor(
    token: string,
    account: { id: string; provider: string; email: string },
    expiresAtMs: number | null,
  ) {
    this.#token = token;
    this.accountId = account.id;
    this.provider = account.provider;
    this.email = account.email;
    this.expiresAt = expiresAtMs === null ? null : new Date(expiresAtMs);
  }

  /** The bearer token. */
  get accessToken(): string {
    return this.#token;
  }

  /** A redacted view: the token shows as `[redacted]`. */
  toJSON(): Record<string, unknown> {
    return {
      accountId: this.accountId,
      provider: this.provider,
      email: this.email,
      expiresAt: this.expiresAt?.toISOString() ?? null,
      accessToken: '[redacted]',
    };
  }

  /** @internal */
  [inspect.custom](_depth: number, options: object): string {
    return `AccessToken ${inspect(this.toJSON(), options)}`;
  }
}

/**
 * Events of {@link TokenRefresher}.
 *
 * @example
 * ```ts
 * auth.on('refreshed', ({ accountId, rotated }: TokenRefresherEvents['refreshed']) => metrics.inc({ rotated }));
 * ```
 */
export interface TokenRefresherEvents {
  /** A token was refreshed and stored. */
  refreshed: {
    /** The account. */
    readonly accountId: string;
    /** Its provider id. */
    readonly provider: string;
    /** When the new access token expires, or `null` when the provider did not say. */
    readonly expiresAt: Date | null;
    /** The provider issued a new refresh token. */
    readonly rotated: boolean;
  };
  /** A refresh failed (any reason). */
  refreshFailed: {
    /** The account. */
    readonly accountId: string;
    /** Its provider id. */
    readonly provider: string;
    /** The typed error the caller received. */
    readonly error: MailboxAuthError;
  };
  /** The refresh token is dead (`invalid_grant`): ask the user to reconnect. */
  reauthorizationRequired: {
    /** The account (its status is now `reauth_required`). */
    readonly accountId: string;
    /** Its provider id. */
    readonly provider: string;
    /** The error message (no secret). */
    readonly reason: string;
  };
  /** A provider's circuit opened: its refreshes fail fast for the cool-down. */
  circuitOpen: {
    /** The provider id. */
    readonly provider: string;
    /** Milliseconds until a probe is let through. */
    readonly retryAfterMs: number;
  };
  /** A provider's circuit closed again. */
  circuitClosed: {
    /** The provider id. */
    readonly provider: string;
  };
}

interface CacheEntry {
  readonly token: AccessToken;
  readonly expiresAtMs: number | null;
}

interface Flight {
  readonly promise: Promise<AccessToken>;
  readonly controller: AbortController;
  waiters: number;
}

const MINUTE = 60_000;

function positiveInt(value: unknown, name: string, fallback: number, allowZero = false): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new ConfigurationError(
      `TokenRefresher: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer (milliseconds or count)`,
    );
  }
  return v;
}

/**
 * Gives every caller a valid access token, refreshing at most once per account per expiry:
 * - hot path: a token this process already holds, still valid for `minValidityMs`, is returned without
 *   touching the store or the cipher;
 * - in-process single flight: concurrent callers share one refresh;
 * - across processes: the store's lease decides who refreshes; the others wait for the new version;
 * - rotation: a new refresh token is stored (version-checked) before the token is handed out; if the store
 *   write fails the tokens stay in memory, the lease is kept, and the write is retried until it succeeds;
 * - transient failures are retried with backoff (honouring `Retry-After`), `invalid_grant` marks the account
 *   `reauth_required` and later calls fail fast, and a per-provider circuit breaker stops hammering a
 *   provider that is down.
 *
 * @example
 * ```ts
 * import { TokenRefresher } from 'oauth-mailbox';
 * const refresher = new TokenRefresher({ persistence: auth.persistence, registry: auth.registry });
 * refresher.on('reauthorizationRequired', ({ accountId }) => notifyUser(accountId));
 * const { accessToken, expiresAt } = await refresher.getAccessToken(accountId);
 * ```
 */
export class TokenRefresher {
  readonly #persistence: TokenPersistence;
  readonly #registry: ProviderRegistry;
  readonly #minValidityMs: number;
  readonly #leaseTtlMs: number;
  readonly #waitMs: number;
  readonly #retry: Required<RefreshRetryOptions>;
  readonly #breakerOptions: CircuitBreakerOptions | false;
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #logger: Logger;
  readonly #holder: string;
  readonly #now: () => number;
  readonly #events = new EventEmitter();
  readonly #cache = new Map<string, CacheEntry>();
  readonly #flights = new Map<string, Flight>();
  /** Tokens obtained from a refresh whose store write has not succeeded yet. */
  readonly #pending = new Map<string, TokenSetInput>();
  readonly #closed = new AbortController();

  constructor(options: TokenRefresherOptions) {
    if (typeof options?.persistence?.load !== 'function') {
      throw new ConfigurationError('TokenRefresher: persistence is required');
    }
    if (typeof options.registry?.get !== 'function')
      throw new ConfigurationError('TokenRefresher: registry is required');
    this.#persistence = options.persistence;
    this.#registry = options.registry;
    this.#minValidityMs = positiveInt(options.minValidityMs, 'minValidityMs', 5 * MINUTE, true);
    this.#leaseTtlMs = positiveInt(options.leaseTtlMs, 'leaseTtlMs', MINUTE);
    this.#waitMs = positiveInt(options.waitForOtherRefreshMs, 'waitForOtherRefreshMs', 20_000);
    const retry = options.retry ?? {};
    this.#retry = {
      retries: positiveInt(retry.retries, 'retry.retries', 3, true),
      minDelayMs: positiveInt(retry.minDelayMs, 'retry.minDelayMs', 500, true),
      maxDelayMs: positiveInt(retry.maxDelayMs, 'retry.maxDelayMs', 10_000, true),
      maxRetryTimeMs: positiveInt(retry.maxRetryTimeMs, 'retry.maxRetryTimeMs', 30_000),
    };
    this.#breakerOptions = options.circuitBreaker ?? {};
    if (this.#breakerOptions !== false) {
      // Validate now, not at the first failure.
      new CircuitBreaker('validation', this.#breakerOptions, Date.now, () => {});
    }
    this.#logger = options.logger ?? silentLogger;
    this.#holder = options.holderId ?? `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    this.#now = options.now ?? Date.now;
  }

  /** Listen to an event. Listener errors are logged, never thrown into a refresh. */
  on<E extends keyof TokenRefresherEvents>(
    event: E,
    listener: (payload: TokenRefresherEvents[E]) => void,
  ): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Stop listening. */
  off<E extends keyof TokenRefresherEvents>(
    event: E,
    listener: (payload: TokenRefresherEvents[E]) => void,
  ): this {
    this.#events.off(event, listener);
    return this;
  }

  /** This process's lease holder id. */
  get holderId(): string {
    return this.#holder;
  }

  /**
   * A valid access token for the account. Throws `ReauthorizationRequiredError` (reconnect),
   * `TokenRefreshError` / `ProviderUnavailableError` (transient), `ConfigurationError`,
   * `AccountNotFoundError`, `TokenExpiredError` (no refresh token), `StorageError`, `CryptoError`.
   */
  getAccessToken(accountId: string, options: GetAccessTokenOptions = {}): Promise<AccessToken> {
    if (typeof accountId !== 'string' || accountId.length === 0) {
      return Promise.reject(new InvalidArgumentError('accountId must be a non-empty string'));
    }
    const minValidityMs = options.minValidityMs ?? this.#minValidityMs;
    if (!Number.isSafeInteger(minValidityMs) || minValidityMs < 0) {
      return Promise.reject(
        new InvalidArgumentError('minValidityMs must be a non-negative integer (milliseconds)'),
      );
    }
    const cached = this.#cache.get(accountId);
    if (
      options.forceRefresh !== true &&
      cached !== undefined &&
      this.#valid(cached.expiresAtMs, minValidityMs)
    ) {
      return Promise.resolve(cached.token); // the hot path: no store, no cipher
    }
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const force = options.forceRefresh === true;
    return this.#join(
      accountId,
      minValidityMs,
      force,
      force ? cached?.token.accessToken : undefined,
      options.signal,
    );
  }

  /** Forget what this process holds for an account (after a disconnect, say). */
  invalidate(accountId: string): void {
    this.#cache.delete(accountId);
  }

  /** The circuit of every provider that has one. */
  circuits(): Record<string, CircuitSnapshot> {
    return Object.fromEntries([...this.#breakers].map(([id, breaker]) => [id, breaker.snapshot()]));
  }

  /** Accounts whose rotated tokens are held in memory because the store write has not succeeded yet. */
  pendingWrites(): string[] {
    return [...this.#pending.keys()];
  }

  /** Stop background write retries and abort in-flight refreshes. */
  close(): void {
    this.#closed.abort(new Error('TokenRefresher closed'));
  }

  async #join(
    accountId: string,
    minValidityMs: number,
    force: boolean,
    stale: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<AccessToken> {
    let flight = this.#flights.get(accountId);
    if (flight === undefined) {
      const controller = new AbortController();
      const shared = AbortSignal.any([controller.signal, this.#closed.signal]);
      const promise = this.#obtain(accountId, minValidityMs, force, stale, shared).finally(() => {
        if (this.#flights.get(accountId)?.promise === promise) this.#flights.delete(accountId);
      });
      flight = { promise, controller, waiters: 0 };
      this.#flights.set(accountId, flight);
    }
    const token = await this.#wait(flight, signal);
    if (stale !== undefined && token.accessToken === stale) {
      // We joined a flight that did not replace the rejected token: refresh now.
      if (this.#flights.get(accountId) === flight) this.#flights.delete(accountId);
      return this.#join(accountId, minValidityMs, force, stale, signal);
    }
    return token;
  }

  /** Wait for a shared flight; abort it only when every waiter has given up. */
  async #wait(flight: Flight, signal: AbortSignal | undefined): Promise<AccessToken> {
    flight.waiters++;
    if (signal === undefined) {
      try {
        return await flight.promise;
      } finally {
        flight.waiters--;
      }
    }
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        flight.promise,
        new Promise<never>((_, reject) => {
          onAbort = () => reject(signal.reason);
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
      flight.waiters--;
      if (flight.waiters === 0 && signal.aborted) flight.controller.abort(signal.reason);
    }
  }

  #valid(expiresAtMs: number | null, minValidityMs: number): boolean {
    return expiresAtMs === null || expiresAtMs - minValidityMs > this.#now();
  }

  #remember(stored: StoredAccount | { account: MailboxAccount; tokens: TokenSetInput }): AccessToken {
    const { account } = stored;
    const tokens = stored.tokens as TokenSetInput;
    const expiresAtMs =
      tokens.expiresAt === undefined || tokens.expiresAt === null
        ? null
        : tokens.expiresAt instanceof Date
          ? tokens.expiresAt.getTime()
          : tokens.expiresAt;
    const token = new AccessToken(tokens.accessToken, account, expiresAtMs);
    this.#cache.set(account.id, { token, expiresAtMs });
    return token;
  }

  /** Load, decide, and refresh if needed (the body of a flight). */
  async #obtain(
    accountId: string,
    minValidityMs: number,
    force: boolean,
    stale: string | undefined,
    signal: AbortSignal,
  ): Promise<AccessToken> {
    const deadline = this.#now() + this.#waitMs;
    let delayMs = 50;
    for (;;) {
      signal.throwIfAborted();
      const current = await this.#load(accountId);
      // A forced refresh from a caller that held no token: the token stored now is the one to replace.
      if (force && stale === undefined) stale = current.tokens.accessToken;
      if (current.tokens.accessToken !== stale && this.#valid(expiresAtOf(current.tokens), minValidityMs)) {
        return this.#remember(current);
      }
      const provider = this.#registry.get(current.account.provider);
      const refreshToken = current.tokens.refreshToken;
      if (refreshToken === null || refreshToken === undefined) {
        throw new TokenExpiredError('The access token expired and no refresh token is stored', {
          accountId,
          providerId: provider.id,
        });
      }
      this.#breaker(provider.id)?.check();
      const lease = await this.#persistence.acquireLease(accountId, this.#holder, this.#leaseTtlMs);
      if (lease === null) {
        // Another process is refreshing: wait for its new version rather than calling the provider.
        if (this.#now() >= deadline) {
          throw new TokenRefreshError('Timed out waiting for another process to refresh this token', {
            accountId,
            providerId: provider.id,
          });
        }
        await sleep(Math.min(delayMs, Math.max(1, deadline - this.#now())), undefined, { signal });
        delayMs = Math.min(delayMs * 2, 1000);
        continue;
      }
      return this.#refreshHoldingLease(accountId, minValidityMs, stale, signal, current);
    }
  }

  async #refreshHoldingLease(
    accountId: string,
    minValidityMs: number,
    stale: string | undefined,
    signal: AbortSignal,
    before: { account: MailboxAccount; tokens: TokenSetInput },
  ): Promise<AccessToken> {
    let keepLease = false;
    let providerId: string | undefined;
    try {
      // Re-read under the lease: another process may have refreshed between our read and our lease. The
      // version says whether anything changed; only then are the tokens decrypted again.
      const latest = this.#pending.has(accountId) ? undefined : await this.#persistence.getAccount(accountId);
      const current =
        latest !== undefined && latest.version === before.account.version
          ? before
          : await this.#load(accountId);
      if (latest !== undefined && latest.version === before.account.version) this.#checkStatus(latest);
      providerId = current.account.provider;
      if (current.tokens.accessToken !== stale && this.#valid(expiresAtOf(current.tokens), minValidityMs)) {
        return this.#remember(current);
      }
      const provider = this.#registry.get(current.account.provider);
      const result = await this.#refreshWithRetry(
        accountId,
        provider.id,
        current.tokens.refreshToken as string,
        signal,
      );
      this.#breaker(provider.id)?.success();
      const next: TokenSetInput = {
        accessToken: result.tokens.accessToken,
        refreshToken: result.tokens.refreshToken ?? current.tokens.refreshToken ?? null,
        idToken: result.tokens.idToken,
        expiresAt: result.tokens.expiresAt,
        tokenType: result.tokens.tokenType,
      };
      const stored = await this.#store(accountId, next);
      keepLease = stored === 'pending';
      const token = this.#remember({ account: current.account, tokens: next });
      this.#emit('refreshed', {
        accountId,
        provider: provider.id,
        expiresAt: token.expiresAt,
        rotated: result.tokens.refreshToken !== null,
      });
      this.#logger.info(
        { accountId, provider: provider.id, rotated: result.tokens.refreshToken !== null },
        'token refreshed',
      );
      return token;
    } catch (err) {
      await this.#fail(accountId, providerId, err, signal);
      throw err;
    } finally {
      if (!keepLease) {
        await this.#persistence.releaseLease(accountId, this.#holder).catch((error: unknown) => {
          this.#logger.warn(
            { accountId, code: codeOf(error) },
            'could not release the refresh lease; it will lapse',
          );
        });
      }
    }
  }

  /** The account with its tokens: the in-memory pending tokens win over the (older) stored ones. */
  async #load(accountId: string): Promise<{ account: MailboxAccount; tokens: TokenSetInput }> {
    const pending = this.#pending.get(accountId);
    if (pending !== undefined) {
      return { account: await this.#persistence.getAccount(accountId), tokens: pending };
    }
    const { account, tokens } = await this.#persistence.load(accountId);
    this.#checkStatus(account);
    if (tokens === null) {
      throw new ReauthorizationRequiredError('The account was disconnected: it has no tokens', {
        accountId,
        providerId: account.provider,
      });
    }
    return {
      account,
      tokens: {
        accessToken: tokens.accessToken,
        refreshToken: tokens.refreshToken,
        idToken: tokens.idToken,
        expiresAt: tokens.expiresAt,
        tokenType: tokens.tokenType,
      },
    };
  }

  #checkStatus(account: MailboxAccount): void {
    if (account.status === 'reauth_required' || account.status === 'revoked') {
      throw new ReauthorizationRequiredError(
        account.status === 'revoked'
          ? 'The account was disconnected: connect the mailbox again'
          : 'The refresh token was revoked or has expired: connect the mailbox again',
        { accountId: account.id, providerId: account.provider },
      );
    }
  }

  async #refreshWithRetry(
    accountId: string,
    providerId: string,
    refreshToken: string,
    signal: AbortSignal,
  ): Promise<ProviderTokenResult> {
    const provider = this.#registry.get(providerId);
    const started = this.#now();
    const { retries, minDelayMs, maxDelayMs, maxRetryTimeMs } = this.#retry;
    // An attempt is never cut short: with a rotating provider its answer holds the only valid refresh token,
    // so it is kept (and stored) even if every caller has given up meanwhile. Waits between attempts abort.
    let obtained: ProviderTokenResult | undefined;
    return pRetry(
      async () => {
        obtained = await provider.refresh(refreshToken);
        return obtained;
      },
      {
        retries,
        factor: 2,
        minTimeout: minDelayMs,
        maxTimeout: maxDelayMs,
        randomize: true,
        maxRetryTime: maxRetryTimeMs,
        signal,
        shouldRetry: ({ error }) => error instanceof TokenRefreshError,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          this.#logger.warn(
            {
              accountId,
              provider: providerId,
              attempt: attemptNumber,
              retriesLeft,
              code: codeOf(error),
              message: error.message,
            },
            'token refresh attempt failed',
          );
          if (error instanceof TokenRefreshError && error.retryAfterMs !== undefined && retriesLeft > 0) {
            if (this.#now() - started + error.retryAfterMs > maxRetryTimeMs) throw error; // would outlive the budget
            await sleep(error.retryAfterMs, undefined, { signal });
          }
        },
      },
    ).catch((err: unknown) => {
      if (obtained !== undefined) return obtained; // p-retry discards a success if the signal fired meanwhile
      throw err;
    });
  }

  /** Store refreshed tokens; on failure keep them, keep the lease, and retry in the background. */
  async #store(accountId: string, tokens: TokenSetInput): Promise<'stored' | 'pending'> {
    try {
      await this.#persistence.saveTokens(accountId, tokens);
      return 'stored';
    } catch (err) {
      if (isMailboxAuthError(err, 'ERR_ACCOUNT_NOT_FOUND') || isMailboxAuthError(err, 'ERR_INVALID_ARGUMENT'))
        throw err;
      this.#pending.set(accountId, tokens);
      this.#logger.error(
        { accountId, code: codeOf(err) },
        'could not store refreshed tokens; keeping them in memory and retrying',
      );
      void this.#flush(accountId);
      return 'pending';
    }
  }

  /** Retry a pending write with backoff until it succeeds (or the refresher closes), keeping the lease. */
  async #flush(accountId: string): Promise<void> {
    let delayMs = 200;
    while (!this.#closed.signal.aborted) {
      try {
        await sleep(delayMs, undefined, { signal: this.#closed.signal });
      } catch {
        return;
      }
      const tokens = this.#pending.get(accountId);
      if (tokens === undefined) return;
      try {
        await this.#persistence.acquireLease(accountId, this.#holder, this.#leaseTtlMs);
        await this.#persistence.saveTokens(accountId, tokens);
        this.#pending.delete(accountId);
        await this.#persistence.releaseLease(accountId, this.#holder).catch(() => {});
        this.#logger.info({ accountId }, 'stored refreshed tokens after a failed write');
        return;
      } catch (err) {
        if (isMailboxAuthError(err, 'ERR_ACCOUNT_NOT_FOUND')) {
          this.#pending.delete(accountId);
          return;
        }
        this.#logger.warn({ accountId, code: codeOf(err) }, 'retrying the store write of refreshed tokens');
        delayMs = Math.min(delayMs * 2, 30_000);
      }
    }
  }

  async #fail(
    accountId: string,
    providerId: string | undefined,
    err: unknown,
    signal: AbortSignal,
  ): Promise<void> {
    if (!(err instanceof MailboxAuthError) || signal.aborted) return;
    const provider = providerId ?? err.providerId ?? 'unknown';
    let status: AccountStatus | undefined;
    if (err instanceof ReauthorizationRequiredError) {
      status = 'reauth_required';
    } else if (err.category === 'configuration') {
      status = 'error';
    }
    if (err.code === 'ERR_TOKEN_REFRESH_FAILED') this.#breaker(provider)?.failure();
    else if (err.code !== 'ERR_PROVIDER_UNAVAILABLE') this.#breaker(provider)?.neutral();
    const storeNeeded = [
      'ERR_TOKEN_REFRESH_FAILED',
      'ERR_REAUTHORIZATION_REQUIRED',
      'ERR_CONFIGURATION',
      'ERR_PROVIDER_UNAVAILABLE',
    ];
    if (storeNeeded.includes(err.code)) {
      await this.#persistence
        .recordFailure(
          accountId,
          { code: err.code, message: err.message },
          status === undefined ? {} : { status },
        )
        .catch((error: unknown) =>
          this.#logger.warn({ accountId, code: codeOf(error) }, 'could not record the failure'),
        );
    }
    this.#cache.delete(accountId);
    this.#logger.warn({ accountId, provider, code: err.code, message: err.message }, 'token refresh failed');
    this.#emit('refreshFailed', { accountId, provider, error: err });
    if (err instanceof ReauthorizationRequiredError) {
      this.#emit('reauthorizationRequired', { accountId, provider, reason: err.message });
    }
  }

  #breaker(providerId: string): CircuitBreaker | undefined {
    if (this.#breakerOptions === false) return undefined;
    let breaker = this.#breakers.get(providerId);
    if (breaker === undefined) {
      breaker = new CircuitBreaker(providerId, this.#breakerOptions, this.#now, (state: CircuitState) => {
        if (state === 'open') {
          const retryAfterMs = this.#breakers.get(providerId)?.snapshot().retryAfterMs ?? 0;
          this.#logger.error({ provider: providerId, retryAfterMs }, 'circuit open: refreshes fail fast');
          this.#emit('circuitOpen', { provider: providerId, retryAfterMs });
        } else if (state === 'closed') {
          this.#logger.info({ provider: providerId }, 'circuit closed');
          this.#emit('circuitClosed', { provider: providerId });
        }
      });
      this.#breakers.set(providerId, breaker);
    }
    return breaker;
  }

  #emit<E extends keyof TokenRefresherEvents>(event: E, payload: TokenRefresherEvents[E]): void {
    emitSafely(this.#events, this.#logger, event, payload);
  }

  /** @internal */
  [inspect.custom](): string {
    return `TokenRefresher { holder: '${this.#holder}', cached: ${this.#cache.size}, inFlight: ${this.#flights.size} }`;
  }
}

function expiresAtOf(tokens: TokenSetInput): number | null {
  const e = tokens.expiresAt;
  return e === undefined || e === null ? null : e instanceof Date ? e.getTime() : e;
}

function codeOf(error: unknown): string {
  return isMailboxAuthError(error) ? error.code : error instanceof Error ? error.name : typeof error;
}
