/**
 * The TokenRefresher: a valid access token for any account, one refresh per expiry across processes. This
 * file is the orchestration; each policy is its own module: the token cache (`token-cache.ts`), single flight
 * (`single-flight.ts`), the per-account lock (`account-lock.ts`), the store lease taken with the read
 * (`TokenPersistence.readAndLease`), the wait for another process woken by the store (`change-feed.ts`), the
 * circuit breaker (`circuit-breaker.ts`), retries (`retry.ts`), the token source (`token-source.ts`) and the
 * write-behind of rotated tokens (`write-behind.ts`).
 * @module
 */

import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { inspect } from 'node:util';
import {
  ConfigurationError,
  InvalidArgumentError,
  MailboxAuthError,
  ReauthorizationRequiredError,
  TokenExpiredError,
  TokenRefreshError,
} from '../errors.js';
import { TypedEvents } from '../events.js';
import { integerOption } from '../internal/options.js';
import { type Logger, silentLogger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { rescuedRefreshToken } from '../providers/token-response.js';
import type { OAuthProvider } from '../providers/types.js';
import type { AccountStatus } from '../store/account-store.js';
import { assertId } from '../store/validate.js';
import { refreshSpanAttributes } from '../telemetry/attributes.js';
import { SPANS } from '../telemetry/names.js';
import { bindTelemetry, type Telemetry, telemetryFrom } from '../telemetry/telemetry.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import type { TokenSetInput } from '../tokens/token-set.js';
import type { AccessToken } from './access-token.js';
import { KeyedLock } from './account-lock.js';
import { ChangeFeed } from './change-feed.js';
import {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitOutcome,
  type CircuitSnapshot,
  type CircuitState,
} from './circuit-breaker.js';
import type {
  GetAccessTokenOptions,
  RefreshOutcome,
  TokenRefresherEvents,
  TokenRefresherOptions,
} from './refresher-types.js';
import { type RefreshRetryOptions, retryTransient } from './retry.js';
import { type Flight, SingleFlight } from './single-flight.js';
import { type HeldTokens, pickToken, TokenCache } from './token-cache.js';
import { refreshTokenGrant, type TokenSource } from './token-source.js';
import { codeOf, WriteBehind } from './write-behind.js';

export { AccessToken } from './access-token.js';
export type {
  GetAccessTokenOptions,
  RefreshOutcome,
  TokenRefresherEvents,
  TokenRefresherOptions,
} from './refresher-types.js';
export type { RefreshRetryOptions } from './retry.js';

/** Thrown inside a flight that was told not to wait for another process's lease. */
const LEASE_BUSY: unique symbol = Symbol('lease busy elsewhere');

interface Target {
  readonly accountId: string;
  readonly resource: string | undefined;
}

/** Whether this flight's caller holds the account's lease, and whether it must keep it past the flight. */
interface LeaseScope {
  held: boolean;
  /** A write is pending (write-behind): the lease is kept so no other process refreshes meanwhile. */
  keep: boolean;
}

/** What one look at the store found: a token to hand out, or another process refreshing. */
type Step =
  | { readonly token: AccessToken }
  | { readonly busy: true; readonly stale: string | undefined; readonly provider: string };

const MINUTE = 60_000;
/** A resource name, as in `TokenSetInput.resources`. */
const RESOURCE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

function positiveInt(value: unknown, name: string, fallback: number, allowZero = false): number {
  const kind = allowZero ? 'non-negative' : 'positive';
  const refuse = () =>
    new ConfigurationError(`TokenRefresher: ${name} must be a ${kind} integer (milliseconds or count)`);
  return integerOption(value, fallback, allowZero ? 0 : 1, Number.MAX_SAFE_INTEGER, refuse);
}

/** How the breaker counts a refresh's failure (see {@link CircuitOutcome}). */
function circuitOutcome(error: unknown): CircuitOutcome {
  if (error instanceof TokenRefreshError) return 'failure';
  if (error instanceof MailboxAuthError && error.code !== 'ERR_PROVIDER_UNAVAILABLE') return 'neutral';
  return 'none'; // aborted, or not the library's error: nothing learnt about the provider
}

/**
 * Gives every caller a valid access token, refreshing at most once per account per expiry:
 * - hot path: a token this process already holds, still valid for `minValidityMs`, is returned without
 *   touching the store or the cipher;
 * - in-process single flight: concurrent callers share one refresh;
 * - across processes: one store call reads the account and, when its token is due, takes its refresh lease;
 *   the process that got it refreshes and writes the new tokens with the lease's release (one more call);
 *   the others wait, woken by the store's change notification (which carries the new record where the
 *   store can), with a timer as the fallback;
 * - per resource: `{ resource: 'graph' }` gives the access token of an extra resource of the provider (one
 *   access token per resource at Microsoft), refreshed with the same refresh token and the resource's
 *   scopes; refreshes of one account (any resource) run one at a time, in this process and across processes
 *   (the lease is per account), because each may rotate the shared refresh token;
 * - rotation: a new refresh token is stored (version-checked) before the token is handed out; if the store
 *   write fails the tokens stay in memory, the lease is kept, and the write is retried until it succeeds;
 * - transient failures are retried with backoff (honouring `Retry-After`), `invalid_grant` marks the account
 *   `reauth_required` and later calls fail fast, and a per-provider circuit breaker stops hammering a
 *   provider that is down (its probe always settles).
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
  readonly #tokenSource: (account: MailboxAccount) => TokenSource;
  readonly #cache: TokenCache;
  /** Aborted by `close()`. Every in-flight refresh listens to it (no listener cap). */
  readonly #closed = new AbortController();
  /** Flights by account id, or `<account id>\u0000<resource>` for a resource. */
  readonly #flights: SingleFlight<AccessToken>;
  readonly #lock = new KeyedLock();
  readonly #writes: WriteBehind;
  readonly #feed: ChangeFeed;
  /** Tokens this process obtained from the provider (not read from the cache or the store). */
  readonly #obtained = new WeakSet<AccessToken>();
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
    if (options.tokenSource !== undefined && typeof options.tokenSource !== 'function') {
      throw new ConfigurationError('TokenRefresher: tokenSource must be a function of the account');
    }
    const select = options.tokenSource;
    this.#tokenSource = (account) => select?.(account) ?? refreshTokenGrant;
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
    setMaxListeners(0, this.#closed.signal);
    this.#cache = new TokenCache(this.#now);
    this.#flights = new SingleFlight(this.#closed.signal);
    this.#writes = new WriteBehind({
      persistence: this.#persistence,
      lock: this.#lock,
      holder: this.#holder,
      leaseTtlMs: this.#leaseTtlMs,
      closed: this.#closed.signal,
      logger: this.#logger,
    });
    this.#feed = new ChangeFeed(this.#persistence, this.#logger);
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
    const { resource, rejected } = options;
    if (resource !== undefined && (typeof resource !== 'string' || !RESOURCE_NAME.test(resource))) {
      return Promise.reject(
        new InvalidArgumentError(
          'resource must be a resource name such as "graph" (lowercase, at most 32 characters)',
        ),
      );
    }
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
    const force = options.forceRefresh === true || rejected !== undefined;
    // The hot path: no store, no cipher, no allocation. A forced refresh skips it unless the token held now is
    // already another one than the rejected.
    if (!force || rejected !== undefined) {
      const held = this.#cache.valid(accountId, resource, minValidityMs, rejected?.accessToken);
      if (held !== undefined) return held;
    }
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const stale =
      rejected?.accessToken ?? (force ? this.#cache.held(accountId, resource)?.token.accessToken : undefined);
    return this.#join({ accountId, resource }, minValidityMs, force, stale, options.signal, false);
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
    if (this.#cache.valid(accountId, undefined, minValidityMs) !== undefined) return 'fresh';
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
    this.#cache.forget(accountId);
  }

  /** The circuit of every provider that has one. */
  circuits(): Record<string, CircuitSnapshot> {
    return Object.fromEntries([...this.#breakers].map(([id, breaker]) => [id, breaker.snapshot()]));
  }

  /** Accounts whose rotated tokens are held in memory because the store write has not succeeded yet. */
  pendingWrites(): string[] {
    return this.#writes.accounts();
  }

  /** Stop background write retries and the change feed, and abort in-flight refreshes. */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort(new Error('TokenRefresher closed'));
    this.#closing = this.#feed.close();
  }

  #closing: Promise<void> | undefined;

  /**
   * Resolves once every refresh in flight has settled: its token stored (or its failure recorded) and its
   * lease released. After `close()`, a token request already sent is still answered first, and the change
   * feed's connection is freed.
   */
  async settled(): Promise<void> {
    await this.#flights.settled();
    if (this.#closed.signal.aborted) await Promise.all([this.#writes.settled(), this.#closing]);
  }

  /** Join (or start) the flight of the target; start anew when the one joined cannot serve this caller. */
  async #join(
    target: Target,
    minValidityMs: number,
    force: boolean,
    stale: string | undefined,
    signal: AbortSignal | undefined,
    skipIfBusy: boolean,
  ): Promise<AccessToken> {
    const key =
      target.resource === undefined ? target.accountId : `${target.accountId}\u0000${target.resource}`;
    const flight: Flight<AccessToken> = this.#flights.flight(
      key,
      (shared) => this.#obtain(target, minValidityMs, force, stale, shared, skipIfBusy),
      signal !== undefined,
    );
    let token: AccessToken;
    try {
      token = await this.#flights.wait(flight, signal);
    } catch (err) {
      // A flight of refreshIfDue left the refresh to another process; this caller waits for it.
      if (err !== LEASE_BUSY || skipIfBusy) throw err;
      this.#flights.forget(key, flight);
      return this.#join(target, minValidityMs, force, stale, signal, false);
    }
    if (stale !== undefined && token.accessToken === stale) {
      // We joined a flight that did not replace the rejected token: refresh now.
      this.#flights.forget(key, flight);
      return this.#join(target, minValidityMs, force, stale, signal, skipIfBusy);
    }
    return token;
  }

  /** The body of a flight: look at the store (under the account lock) until a token is had. */
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
    let waited = false; // for another process's refresh (counted once)
    let known = stale;
    await this.#feed.ready(1000); // listening before the first read: no change after it is missed
    for (;;) {
      signal.throwIfAborted();
      // Registered before the read: a change committed while we read is not missed.
      const expectation = this.#feed.expect(accountId);
      try {
        const step = await this.#lock.run(accountId, signal, () =>
          this.#step(target, minValidityMs, force, known, signal),
        );
        if ('token' in step) return step.token;
        known = step.stale;
        const { provider } = step;
        if (!waited) this.#telemetry.leaseWait(provider);
        waited = true;
        if (skipIfBusy) throw LEASE_BUSY;
        // Another process is refreshing: wait for its write rather than calling the provider.
        if (this.#now() >= deadline) {
          throw new TokenRefreshError('Timed out waiting for another process to refresh this token', {
            accountId,
            providerId: provider,
          });
        }
        const change = await expectation.next(Math.max(1, deadline - this.#now()), signal);
        if (change?.kind === 'written' && change.open !== undefined) {
          // The notification carried the record: no read.
          const stored = await change.open();
          if (stored.tokens !== null) {
            const held = { account: stored.account, tokens: stored.tokens };
            if (this.#cache.usable(held, resource, known, minValidityMs))
              return this.#cache.remember(held, resource);
          }
        }
      } finally {
        expectation.dispose();
      }
    }
  }

  /**
   * One look at the store, under the account lock: read the account and take its lease if the token is due
   * (one call), then hand out the stored token, or refresh it holding the lease, or report another holder.
   * The lease is released on every exit, with the write when there is one, unless a write is pending.
   */
  async #step(
    target: Target,
    minValidityMs: number,
    force: boolean,
    stale: string | undefined,
    signal: AbortSignal,
  ): Promise<Step> {
    const { accountId, resource } = target;
    const scope: LeaseScope = { held: false, keep: false };
    try {
      const held = await this.#read(target, minValidityMs, force, scope);
      if ('busy' in held) return { busy: true, stale, provider: held.provider };
      // A forced refresh from a caller that held no token: the token stored now is the one to replace.
      const replace = force && stale === undefined ? pickToken(held.tokens, resource)?.accessToken : stale;
      if (this.#cache.usable(held, resource, replace, minValidityMs)) {
        return { token: this.#cache.remember(held, resource) };
      }
      if (!scope.held) {
        // Due by our reckoning but not the store's (a resource's token, a refused one): take the lease now.
        scope.held =
          (await this.#persistence.acquireLease(accountId, this.#holder, this.#leaseTtlMs)) !== null;
        if (!scope.held) return { busy: true, stale: replace, provider: held.account.provider };
      }
      const provider = this.#registry.get(held.account.provider);
      const scopes = resourceScopes(provider, resource, accountId);
      const source = this.#tokenSource(held.account);
      if (!source.canObtain({ account: held.account, refreshToken: held.tokens.refreshToken ?? null })) {
        throw new TokenExpiredError('The access token expired and no refresh token is stored', {
          accountId,
          providerId: provider.id,
        });
      }
      const refresh = () =>
        this.#telemetry.span(SPANS.refresh, refreshSpanAttributes(provider.id, accountId, resource), () =>
          this.#refresh(target, held, provider, source, scopes, signal, scope),
        );
      const breaker = this.#breaker(provider.id);
      return { token: await (breaker === undefined ? refresh() : breaker.execute(refresh, circuitOutcome)) };
    } finally {
      if (scope.held && !scope.keep) {
        await this.#persistence.releaseLease(accountId, this.#holder).catch((error: unknown) => {
          this.#logger.warn(
            { accountId, code: codeOf(error) },
            'could not release the refresh lease; it will lapse',
          );
        });
      }
    }
  }

  /** The account with its tokens (the pending ones win over the older stored ones), leased when due. */
  async #read(
    { accountId, resource }: Target,
    minValidityMs: number,
    force: boolean,
    scope: LeaseScope,
  ): Promise<HeldTokens | { readonly busy: true; readonly provider: string }> {
    const pending = this.#writes.pending(accountId);
    if (pending !== undefined) {
      // Our own write is pending: we hold (or take again) the lease, the tokens are in memory.
      const account = await this.#persistence.getAccount(accountId);
      scope.held = (await this.#persistence.acquireLease(accountId, this.#holder, this.#leaseTtlMs)) !== null;
      return scope.held ? { account, tokens: pending } : { busy: true, provider: account.provider };
    }
    // A resource's expiry is not the record's: lease whenever its token is wanted here.
    const dueBefore = force || resource !== undefined ? null : this.#now() + minValidityMs;
    const read = await this.#persistence.readAndLease(accountId, this.#holder, this.#leaseTtlMs, {
      dueBefore,
    });
    scope.held = read.lease !== null;
    checkStatus(read.account);
    if (read.busy) return { busy: true, provider: read.account.provider };
    const { account, tokens } = await read.open();
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

  /** Obtain a token from the source (retries inside), write it with the lease's release, hand it out. */
  async #refresh(
    { accountId, resource }: Target,
    held: HeldTokens,
    provider: OAuthProvider,
    source: TokenSource,
    scopes: readonly string[] | undefined,
    signal: AbortSignal,
    scope: LeaseScope,
  ): Promise<AccessToken> {
    const { account, tokens: current } = held;
    let refreshToken = current.refreshToken ?? null;
    let rescued = false;
    const started = performance.now();
    try {
      const result = await retryTransient(
        async () => {
          try {
            return await source.obtain({ account, provider, refreshToken, resource, scopes, signal });
          } catch (err) {
            // A refused answer that carried a rotated refresh token: store it before anything else is
            // decided (the old one is already invalid), and use it for the next attempt.
            const rotated = rescuedRefreshToken(err);
            if (rotated !== undefined) {
              refreshToken = rotated;
              rescued = true;
              const stored = await this.#writes.write(
                accountId,
                { ...current, refreshToken },
                { release: false },
              );
              if (stored === 'pending') scope.keep = true;
              this.#logger.warn(
                { accountId, provider: provider.id },
                'stored the rotated refresh token of a refused token response',
              );
            }
            throw err;
          }
        },
        {
          ...this.#retry,
          signal,
          now: this.#now,
          onFailedAttempt: ({ error, attempt, retriesLeft }) =>
            this.#logger.warn(
              {
                accountId,
                provider: provider.id,
                attempt,
                retriesLeft,
                code: codeOf(error),
                message: error.message,
              },
              'token refresh attempt failed',
            ),
        },
      );
      const issuedAt = this.#now();
      const next = nextTokens(
        current,
        result.tokens,
        result.scopes,
        scopes,
        resource,
        refreshToken,
        issuedAt,
      );
      // The write releases the lease (one store call); a pending write keeps it.
      const written = await this.#writes.write(accountId, next, {
        ...(rescued ? {} : { basedOn: account }),
        release: true,
      });
      scope.keep = written === 'pending';
      if (written === 'stored') scope.held = false;
      const token = this.#cache.remember({ account, tokens: next }, resource);
      this.#obtained.add(token);
      const rotated = result.tokens.refreshToken !== null;
      this.#telemetry.refreshed(provider.id, (performance.now() - started) / 1000);
      if (token.expiresAt !== null)
        this.#telemetry.expiresIn(provider.id, (token.expiresAt.getTime() - issuedAt) / 1000);
      const onResource = resource === undefined ? {} : { resource };
      this.#emit('refreshed', {
        accountId,
        provider: provider.id,
        expiresAt: token.expiresAt,
        rotated,
        ...onResource,
      });
      this.#logger.info({ accountId, provider: provider.id, rotated, ...onResource }, 'token refreshed');
      return token;
    } catch (err) {
      this.#telemetry.refreshed(provider.id, (performance.now() - started) / 1000, err);
      await this.#fail(accountId, provider.id, err, signal, resource);
      throw err;
    }
  }

  async #fail(
    accountId: string,
    provider: string,
    err: unknown,
    signal: AbortSignal,
    resource: string | undefined,
  ): Promise<void> {
    if (!(err instanceof MailboxAuthError) || signal.aborted) return;
    let status: AccountStatus | undefined;
    // A resource the user never consented to (Graph for an IMAP-consented account): the refresh token and
    // the account's primary token still work, so the account keeps its status.
    const consentOnly =
      resource !== undefined && err instanceof ReauthorizationRequiredError && err.consentRequired;
    if (err instanceof ReauthorizationRequiredError && !consentOnly) status = 'reauth_required';
    else if (err.category === 'configuration') status = 'error';
    if (RECORDED.has(err.code)) {
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
    this.#cache.forget(accountId, { keepPrimary: consentOnly });
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

/** The failures recorded on the account. */
const RECORDED = new Set([
  'ERR_TOKEN_REFRESH_FAILED',
  'ERR_REAUTHORIZATION_REQUIRED',
  'ERR_CONFIGURATION',
  'ERR_PROVIDER_UNAVAILABLE',
]);

function checkStatus(account: MailboxAccount): void {
  if (account.status === 'reauth_required' || account.status === 'revoked') {
    throw new ReauthorizationRequiredError(
      account.status === 'revoked'
        ? 'The account was disconnected: connect the mailbox again'
        : 'The refresh token was revoked or has expired: connect the mailbox again',
      { accountId: account.id, providerId: account.provider },
    );
  }
}

/**
 * The token set to store after a refresh: the primary token, or the resource's beside the unchanged primary
 * one; either way the (possibly rotated) refresh token and every other resource's token are kept.
 */
function nextTokens(
  current: TokenSetInput,
  obtained: import('../tokens/token-set.js').TokenSet,
  grantedScopes: readonly string[] | undefined,
  scopes: readonly string[] | undefined,
  resource: string | undefined,
  refreshToken: string | null,
  issuedAt: number,
): TokenSetInput {
  const kept = obtained.refreshToken ?? refreshToken;
  if (resource === undefined) {
    return {
      accessToken: obtained.accessToken,
      refreshToken: kept,
      idToken: obtained.idToken,
      expiresAt: obtained.expiresAt,
      issuedAt,
      tokenType: obtained.tokenType,
      resources: current.resources,
    };
  }
  return {
    ...current,
    refreshToken: kept,
    resources: {
      ...current.resources,
      [resource]: {
        accessToken: obtained.accessToken,
        expiresAt: obtained.expiresAt,
        issuedAt,
        scopes: grantedScopes ?? scopes ?? [],
        tokenType: obtained.tokenType,
      },
    },
  };
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
