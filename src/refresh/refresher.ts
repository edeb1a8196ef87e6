/**
 * The TokenRefresher: a valid access token for any account, one refresh per expiry across processes.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
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
import { TypedEvents } from '../events.js';
import { linkSignals, raceAbort } from '../internal/abort.js';
import { Backoff } from '../internal/backoff.js';
import { integerOption } from '../internal/options.js';
import { delay, pause } from '../internal/timers.js';
import { type Logger, silentLogger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { rescuedRefreshToken } from '../providers/token-response.js';
import type { OAuthProvider, ProviderTokenResult } from '../providers/types.js';
import type { AccountStatus } from '../store/account-store.js';
import { assertId } from '../store/validate.js';
import { refreshSpanAttributes } from '../telemetry/attributes.js';
import { SPANS } from '../telemetry/names.js';
import {
  bindTelemetry,
  type Telemetry,
  type TelemetryOptions,
  telemetryFrom,
} from '../telemetry/telemetry.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { StoredAccount, TokenPersistence } from '../tokens/persistence.js';
import type { TokenSetInput } from '../tokens/token-set.js';
import {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitSnapshot,
  type CircuitState,
} from './circuit-breaker.js';

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
  /** Where refresh metrics and spans go (see `docs/operations.md`). @default the global OpenTelemetry providers */
  readonly telemetry?: TelemetryOptions;
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
  /**
   * The token a server just refused (implies `forceRefresh`): refreshed unless the token held now is already
   * another, valid one (a concurrent caller replaced it), so a late 401 for an old token costs no second
   * refresh. Must be an `AccessToken` of this account and resource, as `getAccessToken` returned it.
   */
  readonly rejected?: AccessToken;
  /** Stops waiting (and the refresh, once every waiting caller has stopped). */
  readonly signal?: AbortSignal;
  /**
   * An extra resource of the provider (such as `graph` at Microsoft): the access token for it, obtained with
   * the account's refresh token and the resource's scopes and stored beside the primary one. Omitted: the
   * primary access token (IMAP, SMTP, the Gmail API).
   */
  readonly resource?: string;
}

/**
 * What {@link TokenRefresher.refreshIfDue} did: `refreshed` (this process obtained a new token),
 * `fresh` (the token held or stored was valid long enough: nothing to do, or another caller had just
 * refreshed it) or `busy` (another process holds the account's refresh lease: the refresh is left to it).
 *
 * @example
 * ```ts
 * const outcome: RefreshOutcome = await auth.refresher.refreshIfDue(accountId, { minValidityMs: 600_000 });
 * ```
 */
export type RefreshOutcome = 'refreshed' | 'fresh' | 'busy';

/** Thrown inside a flight that was told not to wait for another process's lease. */
const LEASE_BUSY: unique symbol = Symbol('lease busy elsewhere');

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
  /** The extra resource this token is for (such as `graph`), or `undefined` for the primary token. */
  readonly resource: string | undefined;

  /** @internal */
  constructor(
    token: string,
    account: { id: string; provider: string; email: string },
    expiresAtMs: number | null,
    resource?: string,
  ) {
    this.#token = token;
    this.accountId = account.id;
    this.provider = account.provider;
    this.email = account.email;
    this.expiresAt = expiresAtMs === null ? null : new Date(expiresAtMs);
    this.resource = resource;
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
      ...(this.resource === undefined ? {} : { resource: this.resource }),
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
    /** The extra resource whose token was refreshed (such as `graph`); absent for the primary token. */
    readonly resource?: string;
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
  /**
   * Ask the user to reconnect: the refresh token is dead (`invalid_grant`), or the user never consented to
   * an extra resource's scopes (`resource` set; the account stays usable for the rest).
   */
  reauthorizationRequired: {
    /** The account (its status is now `reauth_required`, unless `resource` is set). */
    readonly accountId: string;
    /** Its provider id. */
    readonly provider: string;
    /** The error message (no secret). */
    readonly reason: string;
    /** The extra resource whose scopes were never consented (such as `graph`), if that was the cause. */
    readonly resource?: string;
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
  /** Half the token's issued lifetime: the refresh skew never exceeds it (Infinity when unknown). */
  readonly halfLifeMs: number;
  /** `token`, already resolved: every hot-path call returns this one promise (no allocation per call). */
  readonly resolved: Promise<AccessToken>;
}

interface Flight {
  readonly promise: Promise<AccessToken>;
  /**
   * Aborts the flight once every waiter has given up. Absent when the first caller passed no signal: that
   * caller never gives up, so the flight always has a waiter (and creating signals costs: Node 20 makes
   * every AbortSignal transferable, the most expensive allocation of a bulk refresh after the HTTP request).
   */
  readonly controller: AbortController | undefined;
  waiters: number;
}

const MINUTE = 60_000;

function closedController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}
/** A resource name, as in `TokenSetInput.resources`. */
const RESOURCE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

function positiveInt(value: unknown, name: string, fallback: number, allowZero = false): number {
  const kind = allowZero ? 'non-negative' : 'positive';
  const refuse = () =>
    new ConfigurationError(`TokenRefresher: ${name} must be a ${kind} integer (milliseconds or count)`);
  return integerOption(value, fallback, allowZero ? 0 : 1, Number.MAX_SAFE_INTEGER, refuse);
}

/**
 * Gives every caller a valid access token, refreshing at most once per account per expiry:
 * - hot path: a token this process already holds, still valid for `minValidityMs`, is returned without
 *   touching the store or the cipher;
 * - in-process single flight: concurrent callers share one refresh;
 * - across processes: the store's lease decides who refreshes; the others wait for the new version;
 * - per resource: `{ resource: 'graph' }` gives the access token of an extra resource of the provider (one
 *   access token per resource at Microsoft), refreshed with the same refresh token and the resource's
 *   scopes; its flight is its own, but refreshes of one account (any resource) run one at a time, in this
 *   process and across processes (the lease is per account), because each may rotate the shared refresh token;
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
export class TokenRefresher extends TypedEvents<TokenRefresherEvents> {
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
  readonly #cache = new Map<string, CacheEntry>();
  /** Extra resource tokens this process holds, by account then resource. */
  readonly #resourceCache = new Map<string, Map<string, CacheEntry>>();
  /** Flights by account id, or `<account id>\u0000<resource>` for a resource. */
  readonly #flights = new Map<string, Flight>();
  /** Tokens this process obtained from the provider (not read from the cache or the store). */
  readonly #obtained = new WeakSet<AccessToken>();
  /** Per account, the tail of the queue of refreshes of this process (any resource): one at a time. */
  readonly #accountLocks = new Map<string, Promise<void>>();
  /** Tokens obtained from a refresh whose store write has not succeeded yet. */
  readonly #pending = new Map<string, TokenSetInput>();
  /** Aborted by `close()`. Every in-flight refresh without a caller signal listens to it (no listener cap). */
  readonly #closed = closedController();
  readonly #telemetry: Telemetry;

  constructor(options: TokenRefresherOptions) {
    super();
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
    if (options.holderId !== undefined) {
      // Checked here, not at the first lease (every refresh would fail with it), by the stores' own rules.
      try {
        assertId(options.holderId, 'holderId');
      } catch (cause) {
        throw new ConfigurationError(
          'TokenRefresher: holderId must be a non-empty string of at most 255 characters without control characters',
          { cause },
        );
      }
    }
    this.#holder = options.holderId ?? `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    this.#now = options.now ?? Date.now;
    this.#telemetry = telemetryFrom(options.telemetry);
    bindTelemetry(this, this.#telemetry);
  }

  /** This process's lease holder id. */
  get holderId(): string {
    return this.#holder;
  }

  /**
   * A valid access token for the account (or, with `resource`, for one of the provider's extra resources).
   * Throws `ReauthorizationRequiredError` (reconnect), `TokenRefreshError` / `ProviderUnavailableError`
   * (transient), `ConfigurationError`, `AccountNotFoundError`, `TokenExpiredError` (no refresh token),
   * `StorageError`, `CryptoError`, and `InvalidArgumentError` for a resource the provider does not have.
   */
  getAccessToken(accountId: string, options: GetAccessTokenOptions = {}): Promise<AccessToken> {
    if (typeof accountId !== 'string' || accountId.length === 0) {
      return Promise.reject(new InvalidArgumentError('accountId must be a non-empty string'));
    }
    const minValidityMs = options.minValidityMs ?? this.#minValidityMs;
    if (options.minValidityMs !== undefined && (!Number.isSafeInteger(minValidityMs) || minValidityMs < 0)) {
      return Promise.reject(
        new InvalidArgumentError('minValidityMs must be a non-negative integer (milliseconds)'),
      );
    }
    const { resource } = options;
    if (resource !== undefined && (typeof resource !== 'string' || !RESOURCE_NAME.test(resource))) {
      return Promise.reject(
        new InvalidArgumentError(
          'resource must be a resource name such as "graph" (lowercase, at most 32 characters)',
        ),
      );
    }
    const { rejected } = options;
    if (
      rejected !== undefined &&
      (typeof rejected !== 'object' ||
        rejected === null ||
        typeof rejected.accessToken !== 'string' ||
        rejected.accountId !== accountId ||
        rejected.resource !== resource)
    ) {
      return Promise.reject(
        new InvalidArgumentError(
          'rejected must be an AccessToken of this account and resource (from getAccessToken)',
        ),
      );
    }
    const cached =
      resource === undefined ? this.#cache.get(accountId) : this.#resourceCache.get(accountId)?.get(resource);
    const force = options.forceRefresh === true || rejected !== undefined;
    if (
      cached !== undefined &&
      (!force || (rejected !== undefined && cached.token.accessToken !== rejected.accessToken)) &&
      this.#valid(cached.expiresAtMs, minValidityMs, cached.halfLifeMs)
    ) {
      return cached.resolved; // the hot path: no store, no cipher, no allocation
    }
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    return this.#join(
      { accountId, resource },
      minValidityMs,
      force,
      rejected?.accessToken ?? (force ? cached?.token.accessToken : undefined),
      options.signal,
    );
  }

  /**
   * Refresh the account's primary token if it expires within `minValidityMs`, for a bulk refresh shared by
   * several processes: where another process holds the account's refresh lease, this returns `busy` at once
   * instead of waiting for it, so that concurrent runs split the accounts between them rather than queue
   * behind each other. Throws what {@link TokenRefresher.getAccessToken} throws.
   *
   * @example
   * ```ts
   * const outcome = await refresher.refreshIfDue(accountId, { minValidityMs: 3_600_000, signal });
   * if (outcome === 'busy') console.log('another instance is refreshing it');
   * ```
   */
  async refreshIfDue(
    accountId: string,
    options: { readonly minValidityMs: number; readonly signal?: AbortSignal },
  ): Promise<RefreshOutcome> {
    const minValidityMs = options?.minValidityMs;
    if (typeof accountId !== 'string' || accountId.length === 0) {
      throw new InvalidArgumentError('accountId must be a non-empty string');
    }
    if (typeof minValidityMs !== 'number' || !Number.isSafeInteger(minValidityMs) || minValidityMs < 0) {
      throw new InvalidArgumentError('minValidityMs must be a non-negative integer (milliseconds)');
    }
    const cached = this.#cache.get(accountId);
    if (cached !== undefined && this.#valid(cached.expiresAtMs, minValidityMs, cached.halfLifeMs))
      return 'fresh';
    options.signal?.throwIfAborted();
    try {
      const token = await this.#join(
        { accountId, resource: undefined },
        minValidityMs,
        false,
        undefined,
        options.signal,
        true,
      );
      return this.#obtained.has(token) ? 'refreshed' : 'fresh';
    } catch (err) {
      if (err === LEASE_BUSY) return 'busy';
      throw err;
    }
  }

  /** Forget what this process holds for an account, every resource included (after a disconnect, say). */
  invalidate(accountId: string): void {
    this.#cache.delete(accountId);
    this.#resourceCache.delete(accountId);
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

  /**
   * Resolves once every refresh in flight has settled: its token stored (or its failure recorded) and its
   * lease released. After `close()`, a token request already sent is still answered first.
   */
  async settled(): Promise<void> {
    while (this.#flights.size > 0) {
      await Promise.allSettled([...this.#flights.values()].map((flight) => flight.promise));
    }
  }

  async #join(
    target: Target,
    minValidityMs: number,
    force: boolean,
    stale: string | undefined,
    signal: AbortSignal | undefined,
    skipIfBusy = false,
  ): Promise<AccessToken> {
    const key =
      target.resource === undefined ? target.accountId : `${target.accountId}\u0000${target.resource}`;
    let flight = this.#flights.get(key);
    if (flight === undefined) {
      const controller = signal === undefined ? undefined : new AbortController();
      const link =
        controller === undefined ? undefined : linkSignals([controller.signal, this.#closed.signal]);
      const shared = link === undefined ? this.#closed.signal : link.signal;
      const promise = this.#obtain(target, minValidityMs, force, stale, shared, skipIfBusy).finally(() => {
        link?.dispose();
        if (this.#flights.get(key)?.promise === promise) this.#flights.delete(key);
      });
      flight = { promise, controller, waiters: 0 };
      this.#flights.set(key, flight);
    }
    let token: AccessToken;
    try {
      token = await this.#wait(flight, signal);
    } catch (err) {
      // A flight of refreshIfDue left the refresh to another process; this caller waits for it.
      if (err !== LEASE_BUSY || skipIfBusy) throw err;
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
      return this.#join(target, minValidityMs, force, stale, signal);
    }
    if (stale !== undefined && token.accessToken === stale) {
      // We joined a flight that did not replace the rejected token: refresh now.
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
      return this.#join(target, minValidityMs, force, stale, signal);
    }
    return token;
  }

  /** Wait for a shared flight; abort it only when every waiter has given up. */
  async #wait(flight: Flight, signal: AbortSignal | undefined): Promise<AccessToken> {
    flight.waiters++;
    try {
      return await raceAbort(flight.promise, signal);
    } finally {
      flight.waiters--;
      if (flight.waiters === 0 && signal?.aborted) flight.controller?.abort(signal.reason);
    }
  }

  /**
   * Whether a token is still valid for `minValidityMs`. The skew is clamped to half the token's issued
   * lifetime: a token that lives 5 minutes or less (Keycloak's default is 300 s) would otherwise be refreshed
   * on every call, and by every process sharing the store.
   */
  #valid(expiresAtMs: number | null, minValidityMs: number, halfLifeMs: number): boolean {
    return expiresAtMs === null || expiresAtMs - Math.min(minValidityMs, halfLifeMs) > this.#now();
  }

  #remember(
    stored: StoredAccount | { account: MailboxAccount; tokens: TokenSetInput },
    resource: string | undefined,
  ): AccessToken {
    const { account } = stored;
    const picked = pick(stored.tokens as TokenSetInput, resource) as Picked;
    const issuedAtMs = picked.issuedAtMs ?? account.lastRefreshedAt?.getTime() ?? null;
    const token = new AccessToken(picked.accessToken, account, picked.expiresAtMs, resource);
    const entry: CacheEntry = {
      token,
      expiresAtMs: picked.expiresAtMs,
      halfLifeMs: halfLife(picked.expiresAtMs, issuedAtMs),
      resolved: Promise.resolve(token),
    };
    if (resource === undefined) {
      this.#cache.set(account.id, entry);
    } else {
      let byResource = this.#resourceCache.get(account.id);
      if (byResource === undefined) {
        byResource = new Map();
        this.#resourceCache.set(account.id, byResource);
      }
      byResource.set(resource, entry);
    }
    return token;
  }

  /** Whether the stored token of the target can be handed out (not the rejected one, valid long enough). */
  #usable(
    { account, tokens }: { readonly account: MailboxAccount; readonly tokens: TokenSetInput },
    resource: string | undefined,
    stale: string | undefined,
    minValidityMs: number,
  ) {
    const picked = pick(tokens, resource);
    // Tokens stored by earlier versions carry no issue time: the account's last token write stands in.
    const issuedAtMs = picked?.issuedAtMs ?? account.lastRefreshedAt?.getTime() ?? null;
    const halfLifeMs = halfLife(picked?.expiresAtMs ?? null, issuedAtMs);
    return (
      picked !== undefined &&
      picked.accessToken !== stale &&
      this.#valid(picked.expiresAtMs, minValidityMs, halfLifeMs)
    );
  }

  /** Load, decide, and refresh if needed (the body of a flight). */
  async #obtain(
    target: Target,
    minValidityMs: number,
    force: boolean,
    stale: string | undefined,
    signal: AbortSignal,
    skipIfBusy: boolean,
  ): Promise<AccessToken> {
    const { accountId, resource } = target;
    const deadline = this.#now() + this.#waitMs;
    const poll = new Backoff({ minDelayMs: 50, maxDelayMs: 1000, jitter: false });
    let waited = false; // for another process's refresh (counted once)
    for (;;) {
      signal.throwIfAborted();
      const current = await this.#load(accountId);
      const scopes =
        resource === undefined
          ? undefined
          : resourceScopes(this.#registry.get(current.account.provider), resource, accountId);
      // A forced refresh from a caller that held no token: the token stored now is the one to replace.
      if (force && stale === undefined) stale = pick(current.tokens, resource)?.accessToken;
      if (this.#usable(current, resource, stale, minValidityMs)) return this.#remember(current, resource);
      const provider = this.#registry.get(current.account.provider);
      const refreshToken = current.tokens.refreshToken;
      if (refreshToken === null || refreshToken === undefined) {
        throw new TokenExpiredError('The access token expired and no refresh token is stored', {
          accountId,
          providerId: provider.id,
        });
      }
      // One refresh of an account at a time in this process (the store lease is re-entrant for this holder):
      // a Graph token and the primary one are refreshed with the same, rotating, refresh token. The breaker
      // wraps the whole attempt, so that a probe that finds the lease busy (or a usable token, or is aborted)
      // is settled too.
      const attempt = () =>
        this.#withAccountLock(accountId, signal, async () => {
          const lease = await this.#persistence.acquireLease(accountId, this.#holder, this.#leaseTtlMs);
          if (lease === null) return undefined;
          return this.#telemetry.span(
            SPANS.refresh,
            refreshSpanAttributes(provider.id, accountId, resource),
            () => this.#refreshHoldingLease(target, scopes, minValidityMs, stale, signal, current),
          );
        });
      const breaker = this.#breaker(provider.id);
      const token = await (breaker === undefined ? attempt() : breaker.execute(attempt));
      if (token !== undefined) return token;
      if (!waited) this.#telemetry.leaseWait(provider.id);
      waited = true;
      if (skipIfBusy) throw LEASE_BUSY;
      // Another process is refreshing: wait for its new version rather than calling the provider.
      if (this.#now() >= deadline) {
        throw new TokenRefreshError('Timed out waiting for another process to refresh this token', {
          accountId,
          providerId: provider.id,
        });
      }
      await delay(Math.min(poll.next(), Math.max(1, deadline - this.#now())), signal);
    }
  }

  /** Run `fn` when no other refresh of this account runs in this process (a FIFO queue per account). */
  async #withAccountLock<T>(accountId: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const previous = this.#accountLocks.get(accountId);
    let release = () => {};
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous === undefined ? mine : previous.then(() => mine);
    this.#accountLocks.set(accountId, tail);
    try {
      if (previous !== undefined) await raceAbort(previous, signal);
      return await fn();
    } finally {
      release();
      if (this.#accountLocks.get(accountId) === tail) this.#accountLocks.delete(accountId);
    }
  }

  async #refreshHoldingLease(
    target: Target,
    scopes: readonly string[] | undefined,
    minValidityMs: number,
    stale: string | undefined,
    signal: AbortSignal,
    before: { account: MailboxAccount; tokens: TokenSetInput },
  ): Promise<AccessToken> {
    const { accountId, resource } = target;
    let keepLease = false;
    let providerId: string | undefined;
    let started: number | undefined; // when the provider was asked (performance.now())
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
      if (this.#usable(current, resource, stale, minValidityMs)) return this.#remember(current, resource);
      const provider = this.#registry.get(current.account.provider);
      // A refused answer that carried a rotated refresh token: store it before anything else is decided (the
      // old one is already invalid), and use it for the next attempt.
      let rescued: string | undefined;
      const onRescued = async (refreshToken: string) => {
        rescued = refreshToken;
        const stored = await this.#store(accountId, { ...current.tokens, refreshToken });
        if (stored === 'pending') keepLease = true;
        this.#logger.warn(
          { accountId, provider: provider.id },
          'stored the rotated refresh token of a refused token response',
        );
      };
      started = performance.now();
      const result = await this.#refreshWithRetry(
        accountId,
        provider.id,
        current.tokens.refreshToken as string,
        scopes,
        signal,
        onRescued,
      );
      this.#breaker(provider.id)?.success();
      const refreshToken = result.tokens.refreshToken ?? rescued ?? current.tokens.refreshToken ?? null;
      const issuedAt = this.#now();
      // The primary token, or the resource's beside the unchanged primary one; either way the rotated
      // refresh token and every other resource token are kept.
      const next: TokenSetInput =
        resource === undefined
          ? {
              accessToken: result.tokens.accessToken,
              refreshToken,
              idToken: result.tokens.idToken,
              expiresAt: result.tokens.expiresAt,
              issuedAt,
              tokenType: result.tokens.tokenType,
              resources: current.tokens.resources,
            }
          : {
              ...current.tokens,
              refreshToken,
              resources: {
                ...current.tokens.resources,
                [resource]: {
                  accessToken: result.tokens.accessToken,
                  expiresAt: result.tokens.expiresAt,
                  issuedAt,
                  scopes: result.scopes ?? scopes ?? [],
                  tokenType: result.tokens.tokenType,
                },
              },
            };
      const stored = await this.#store(accountId, next, rescued === undefined ? current.account : undefined);
      keepLease = stored === 'pending';
      const token = this.#remember({ account: current.account, tokens: next }, resource);
      this.#obtained.add(token);
      const rotated = result.tokens.refreshToken !== null;
      this.#telemetry.refreshed(provider.id, (performance.now() - started) / 1000);
      if (token.expiresAt !== null)
        this.#telemetry.expiresIn(provider.id, (token.expiresAt.getTime() - issuedAt) / 1000);
      this.#emit('refreshed', {
        accountId,
        provider: provider.id,
        expiresAt: token.expiresAt,
        rotated,
        ...(resource === undefined ? {} : { resource }),
      });
      this.#logger.info(
        { accountId, provider: provider.id, rotated, ...(resource === undefined ? {} : { resource }) },
        'token refreshed',
      );
      return token;
    } catch (err) {
      if (started !== undefined)
        this.#telemetry.refreshed(providerId ?? 'unknown', (performance.now() - started) / 1000, err);
      await this.#fail(accountId, providerId, err, signal, resource);
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
        issuedAt: tokens.issuedAt,
        tokenType: tokens.tokenType,
        resources: tokens.resourceInputs(),
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
    scopes: readonly string[] | undefined,
    signal: AbortSignal,
    onRescued: (refreshToken: string) => Promise<void>,
  ): Promise<ProviderTokenResult> {
    const provider = this.#registry.get(providerId);
    let current = refreshToken;
    const started = this.#now();
    const { retries, minDelayMs, maxDelayMs, maxRetryTimeMs } = this.#retry;
    // An attempt is never cut short: with a rotating provider its answer holds the only valid refresh token,
    // so it is kept (and stored) even if every caller has given up meanwhile. Waits between attempts abort.
    let obtained: ProviderTokenResult | undefined;
    return pRetry(
      async () => {
        try {
          obtained = await provider.refresh(current, scopes === undefined ? {} : { scopes });
        } catch (err) {
          const rescued = rescuedRefreshToken(err);
          if (rescued !== undefined) {
            current = rescued;
            await onRescued(rescued);
          }
          throw err;
        }
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
            await delay(error.retryAfterMs, signal);
          }
        },
      },
    ).catch((err: unknown) => {
      if (obtained !== undefined) return obtained; // p-retry discards a success if the signal fired meanwhile
      throw err;
    });
  }

  /** Store refreshed tokens; on failure keep them, keep the lease, and retry in the background. */
  async #store(
    accountId: string,
    tokens: TokenSetInput,
    basedOn?: MailboxAccount,
  ): Promise<'stored' | 'pending'> {
    try {
      // `basedOn`: the account as read under the lease, so the write needs no second read.
      await this.#persistence.saveTokens(accountId, tokens, basedOn === undefined ? {} : { basedOn });
      // These tokens supersede any older ones still waiting for a write (they were refreshed from them).
      this.#pending.delete(accountId);
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
    const backoff = new Backoff({ minDelayMs: 200, maxDelayMs: 30_000, jitter: false });
    while (!this.#closed.signal.aborted) {
      await pause(backoff.next(), this.#closed.signal);
      if (this.#closed.signal.aborted) return;
      if (!this.#pending.has(accountId)) return;
      try {
        // Under the account lock: a refresh of another resource of this account may be using the lease.
        await this.#withAccountLock(accountId, this.#closed.signal, async () => {
          const tokens = this.#pending.get(accountId);
          if (tokens === undefined) return; // a later refresh stored newer tokens meanwhile
          await this.#persistence.acquireLease(accountId, this.#holder, this.#leaseTtlMs);
          await this.#persistence.saveTokens(accountId, tokens);
          if (this.#pending.get(accountId) === tokens) this.#pending.delete(accountId);
          await this.#persistence.releaseLease(accountId, this.#holder).catch(() => {});
          this.#logger.info({ accountId }, 'stored refreshed tokens after a failed write');
        });
        return;
      } catch (err) {
        if (this.#closed.signal.aborted) return;
        if (isMailboxAuthError(err, 'ERR_ACCOUNT_NOT_FOUND')) {
          this.#pending.delete(accountId);
          return;
        }
        this.#logger.warn({ accountId, code: codeOf(err) }, 'retrying the store write of refreshed tokens');
      }
    }
  }

  async #fail(
    accountId: string,
    providerId: string | undefined,
    err: unknown,
    signal: AbortSignal,
    resource?: string,
  ): Promise<void> {
    if (!(err instanceof MailboxAuthError) || signal.aborted) return;
    const provider = providerId ?? err.providerId ?? 'unknown';
    let status: AccountStatus | undefined;
    // A resource the user never consented to (Graph for an IMAP-consented account): the refresh token and
    // the account's primary token still work, so the account keeps its status.
    const consentOnly =
      resource !== undefined && err instanceof ReauthorizationRequiredError && err.consentRequired;
    if (err instanceof ReauthorizationRequiredError && !consentOnly) {
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
    if (!consentOnly) this.#cache.delete(accountId);
    this.#resourceCache.delete(accountId);
    this.#logger.warn({ accountId, provider, code: err.code, message: err.message }, 'token refresh failed');
    this.#emit('refreshFailed', { accountId, provider, error: err });
    if (err instanceof ReauthorizationRequiredError) {
      this.#emit('reauthorizationRequired', {
        accountId,
        provider,
        reason: err.message,
        ...(consentOnly ? { resource } : {}),
      });
    }
  }

  #breaker(providerId: string): CircuitBreaker | undefined {
    if (this.#breakerOptions === false) return undefined;
    let breaker = this.#breakers.get(providerId);
    if (breaker === undefined) {
      breaker = new CircuitBreaker(providerId, this.#breakerOptions, this.#now, (state: CircuitState) => {
        this.#telemetry.circuit(providerId, state);
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
    this.emitTo(this.#logger, event, payload);
  }

  /** @internal */
  [inspect.custom](): string {
    return `TokenRefresher { holder: '${this.#holder}', cached: ${this.#cache.size}, inFlight: ${this.#flights.size} }`;
  }
}

/** What a flight obtains: the primary token of an account, or the token of one of its resources. */
interface Target {
  readonly accountId: string;
  readonly resource: string | undefined;
}

interface Picked {
  readonly accessToken: string;
  readonly expiresAtMs: number | null;
  readonly issuedAtMs: number | null;
}

function msOf(e: Date | number | null | undefined): number | null {
  return e === undefined || e === null ? null : e instanceof Date ? e.getTime() : e;
}

/** The stored token of the target, if any. */
/** Half of a token's issued lifetime, or Infinity when it is unknown. */
function halfLife(expiresAtMs: number | null, issuedAtMs: number | null): number {
  if (expiresAtMs === null || issuedAtMs === null || expiresAtMs <= issuedAtMs)
    return Number.POSITIVE_INFINITY;
  return (expiresAtMs - issuedAtMs) / 2;
}

function pick(tokens: TokenSetInput, resource: string | undefined): Picked | undefined {
  const t = resource === undefined ? tokens : tokens.resources?.[resource];
  if (t === undefined) return undefined;
  return { accessToken: t.accessToken, expiresAtMs: msOf(t.expiresAt), issuedAtMs: msOf(t.issuedAt) };
}

/** The scopes to refresh a resource's token with; a resource the provider lacks is the caller's mistake. */
function resourceScopes(
  provider: { readonly id: string; readonly resources?: OAuthProvider['resources'] },
  resource: string | undefined,
  accountId: string,
): readonly string[] | undefined {
  if (resource === undefined) return undefined;
  const definition = provider.resources?.[resource];
  if (definition === undefined) {
    const known = Object.keys(provider.resources ?? {});
    throw new InvalidArgumentError(
      `The provider "${provider.id}" has no resource "${resource}" (${known.length === 0 ? 'it has none' : `it has: ${known.join(', ')}`})`,
      { accountId, providerId: provider.id },
    );
  }
  return definition.scopes;
}

function codeOf(error: unknown): string {
  return isMailboxAuthError(error) ? error.code : error instanceof Error ? error.name : typeof error;
}
