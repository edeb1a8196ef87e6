/**
 * The TokenRefresher: a valid access token for any account, one refresh per expiry across processes. This
 * file is the orchestration; each policy is its own module: the token cache (`token-cache.ts`), single flight
 * (`single-flight.ts`), the per-account lock (`account-lock.ts`), the store lease taken with the read
 * (`TokenPersistence.readAndLease`), the wait for another process woken by the store (`change-feed.ts`), the
 * circuit breaker (`circuit-breaker.ts`), retries (`retry.ts`), the token source (`token-source.ts`) and the
 * write-behind of rotated tokens (`write-behind.ts`).
 * @module
 */

import { setMaxListeners } from 'node:events';
import { inspect } from 'node:util';
import {
  MailboxAuthError,
  ReauthorizationRequiredError,
  TokenExpiredError,
  TokenRefreshError,
} from '../errors.js';
import { TypedEvents } from '../events.js';
import type { Logger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { OAuthProvider } from '../providers/types.js';
import { refreshSpanAttributes } from '../telemetry/attributes.js';
import { SPANS } from '../telemetry/names.js';
import { bindTelemetry, type Telemetry, telemetryFrom } from '../telemetry/telemetry.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import type { AccessToken } from './access-token.js';
import { KeyedLock } from './account-lock.js';
import { ChangeFeed } from './change-feed.js';
import { CircuitBreakers, type CircuitSnapshot } from './circuit-breaker.js';
import { nextTokens, resourceScopes, toTokenInput } from './next-tokens.js';
import { assertRefreshable, circuitOutcome, failureEffect } from './refresh-failure.js';
import { assertRefreshIfDue, refresherSettings, refuseTokenCall } from './refresher-options.js';
import type {
  GetAccessTokenOptions,
  RefreshOutcome,
  TokenRefresherEvents,
  TokenRefresherOptions,
} from './refresher-types.js';
import type { RefreshRetryOptions } from './retry.js';
import { type Flight, SingleFlight } from './single-flight.js';
import { type HeldTokens, pickToken, TokenCache } from './token-cache.js';
import { obtainWithRetries, type TokenSource } from './token-source.js';
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
  readonly #breakers: CircuitBreakers;
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
  #closing: Promise<void> | undefined;

  constructor(options: TokenRefresherOptions) {
    super();
    const settings = refresherSettings(options);
    ({
      persistence: this.#persistence,
      registry: this.#registry,
      minValidityMs: this.#minValidityMs,
      leaseTtlMs: this.#leaseTtlMs,
      waitMs: this.#waitMs,
      retry: this.#retry,
      tokenSource: this.#tokenSource,
      logger: this.#logger,
      holder: this.#holder,
      now: this.#now,
    } = settings);
    this.#breakers = new CircuitBreakers(settings.circuitBreaker, this.#now, (provider, state, snapshot) => {
      this.#telemetry.circuit(provider, state);
      if (state === 'open') {
        const { retryAfterMs } = snapshot;
        this.#logger.error({ provider, retryAfterMs }, 'circuit open: refreshes fail fast');
        this.#emit('circuitOpen', { provider, retryAfterMs });
      } else if (state === 'closed') {
        this.#logger.info({ provider }, 'circuit closed');
        this.#emit('circuitClosed', { provider });
      }
    });
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
    const refused = refuseTokenCall(accountId, options);
    if (refused !== undefined) return Promise.reject(refused);
    const minValidityMs = options.minValidityMs ?? this.#minValidityMs;
    const { resource, rejected } = options;
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
    assertRefreshIfDue(accountId, minValidityMs);
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
    return this.#breakers.snapshots();
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
      return { token: await this.#breakers.execute(provider.id, refresh, circuitOutcome) };
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
    assertRefreshable(read.account);
    if (read.busy) return { busy: true, provider: read.account.provider };
    const { account, tokens } = await read.open();
    if (tokens === null) {
      throw new ReauthorizationRequiredError('The account was disconnected: it has no tokens', {
        accountId,
        providerId: account.provider,
      });
    }
    return { account, tokens: toTokenInput(tokens) };
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
    const started = performance.now();
    try {
      const { result, refreshToken, rescued } = await obtainWithRetries(
        source,
        { account, provider, refreshToken: current.refreshToken ?? null, resource, scopes, signal },
        {
          ...this.#retry,
          now: this.#now,
          onFailedAttempt: ({ error, attempt, retriesLeft }) => {
            const code = codeOf(error);
            const fields = {
              accountId,
              provider: provider.id,
              attempt,
              retriesLeft,
              code,
              message: error.message,
            };
            this.#logger.warn(fields, 'token refresh attempt failed');
          },
          onRotated: async (refreshToken) => {
            const stored = await this.#writes.write(
              accountId,
              { ...current, refreshToken },
              { release: false },
            );
            if (stored === 'pending') scope.keep = true;
            const fields = { accountId, provider: provider.id };
            this.#logger.warn(fields, 'stored the rotated refresh token of a refused token response');
          },
        },
      );
      const issuedAt = this.#now();
      const next = nextTokens(current, resource, {
        tokens: result.tokens,
        grantedScopes: result.scopes,
        scopes,
        refreshToken,
        issuedAt,
      });
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
    const { record, status, consentOnly } = failureEffect(err, resource);
    if (record) {
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
      const reason = err.message;
      this.#emit('reauthorizationRequired', {
        accountId,
        provider,
        reason,
        ...(consentOnly ? { resource } : {}),
      });
    }
  }

  #emit<E extends keyof TokenRefresherEvents>(event: E, payload: TokenRefresherEvents[E]): void {
    this.emitTo(this.#logger, event, payload);
  }

  /** @internal */
  [inspect.custom](): string {
    return `TokenRefresher { holder: '${this.#holder}', cached: ${this.#cache.size}, inFlight: ${this.#flights.size} }`;
  }
}
