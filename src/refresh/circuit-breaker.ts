import { ConfigurationError, ProviderUnavailableError } from '../errors.js';
import { integerOption } from '../internal/options.js';

/**
 * Options of the per-provider circuit breaker.
 *
 * @example
 * ```ts
 * createMailboxAuth({ ...config, refresh: { circuitBreaker: { failureThreshold: 3, cooldownMs: 30_000 } } });
 * ```
 */
export interface CircuitBreakerOptions {
  /**
   * Consecutive transient refresh failures that open the circuit.
   * @default 5
   */
  readonly failureThreshold?: number;
  /**
   * How long the circuit stays open before one probe is let through, in milliseconds.
   * @default 60000
   */
  readonly cooldownMs?: number;
  /**
   * Successful probes in a row that close the circuit again ("3 successes to close"); until then each
   * success lets the next probe through at once, and a failure opens it for a new cool-down.
   * @default 1
   */
  readonly successThreshold?: number;
}

/**
 * How a call through {@link CircuitBreaker.execute} ended, as the breaker counts it: `success` (the provider
 * answered with a token), `failure` (a transient failure: the provider is down or throttling), `neutral` (the
 * provider answered, but refused: it is up) or `none` (nothing learnt: aborted, a bug, no call made).
 * @internal
 */
export type CircuitOutcome = 'success' | 'failure' | 'neutral' | 'none';

/**
 * A circuit's state: `closed` (calls flow), `open` (calls fail fast), `half_open` (one probe is in flight).
 *
 * @example
 * ```ts
 * const open = Object.values(auth.refresher.circuits()).some((c) => c.state !== ('closed' satisfies CircuitState));
 * ```
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

/**
 * A snapshot for health checks.
 *
 * @example
 * ```ts
 * const { state, retryAfterMs }: CircuitSnapshot = auth.refresher.circuits().google ?? { state: 'closed', consecutiveFailures: 0, openedAt: null, retryAfterMs: 0 };
 * ```
 */
export interface CircuitSnapshot {
  /** `closed`, `open` or `half_open` (probing: one probe at a time until `successThreshold` succeeded). */
  readonly state: CircuitState;
  /** Transient failures in a row. */
  readonly consecutiveFailures: number;
  /** Successful probes in a row while half-open (0 otherwise). */
  readonly consecutiveSuccesses: number;
  /** When it opened, if open or half-open. */
  readonly openedAt: Date | null;
  /** Milliseconds until the next probe may run (0 when closed). */
  readonly retryAfterMs: number;
}

/**
 * One provider's circuit breaker: after `failureThreshold` consecutive transient failures it opens, and
 * calls fail fast with `ProviderUnavailableError` for `cooldownMs`; then it is half-open: one probe at a time
 * is let through; `successThreshold` successful probes in a row close it, a failed one opens it again.
 * Calls go through {@link CircuitBreaker.execute}, which reports every call's outcome (classified by the
 * caller's `classify`) in a `finally`, so that a probe always settles: one that ends without telling anything
 * (aborted, an unexpected error) lets the next call probe again. It can never stay half-open with no probe.
 * @internal
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #successThreshold: number;
  readonly #cooldownMs: number;
  readonly #now: () => number;
  readonly #providerId: string;
  readonly #onChange: (state: CircuitState) => void;
  #state: CircuitState = 'closed';
  #failures = 0;
  #successes = 0;
  #probing = false;
  #openedAt = 0;

  constructor(
    providerId: string,
    options: CircuitBreakerOptions,
    now: () => number,
    onChange: (state: CircuitState) => void,
  ) {
    const MAX = Number.MAX_SAFE_INTEGER;
    const positive = (name: string) => () =>
      new ConfigurationError(`circuitBreaker.${name} must be a positive integer`);
    const badCooldown = () =>
      new ConfigurationError('circuitBreaker.cooldownMs must be a non-negative integer (milliseconds)');
    this.#threshold = integerOption(options.failureThreshold, 5, 1, MAX, positive('failureThreshold'));
    this.#successThreshold = integerOption(options.successThreshold, 1, 1, MAX, positive('successThreshold'));
    this.#cooldownMs = integerOption(options.cooldownMs, 60_000, 0, MAX, badCooldown);
    this.#providerId = providerId;
    this.#now = now;
    this.#onChange = onChange;
  }

  /**
   * Run `fn` through the breaker: refused at once (`ProviderUnavailableError`) while the circuit is open or a
   * probe runs; when the cool-down is over, this call is the probe. The outcome is reported however `fn` ends:
   * a value is a `success`, an error is what `classify` says.
   */
  async execute<T>(fn: () => Promise<T>, classify: (error: unknown) => CircuitOutcome): Promise<T> {
    const probe = this.#admit();
    let outcome: CircuitOutcome = 'none';
    try {
      const value = await fn();
      outcome = 'success';
      return value;
    } catch (err) {
      outcome = classify(err);
      throw err;
    } finally {
      this.#report(outcome, probe);
    }
  }

  /** Let a call through (returns whether it is the probe) or throw `ProviderUnavailableError`. */
  #admit(): boolean {
    if (this.#state === 'closed') return false;
    const wait = this.#openedAt + this.#cooldownMs - this.#now();
    if ((this.#state === 'open' && wait <= 0) || (this.#state === 'half_open' && !this.#probing)) {
      this.#state = 'half_open';
      this.#probing = true;
      return true;
    }
    throw new ProviderUnavailableError(
      this.#state === 'half_open'
        ? `${this.#providerId} is recovering: a probe refresh is running; calls fail fast until it succeeds`
        : `${this.#providerId} is unavailable: its last ${this.#failures} refreshes failed; calls fail fast until the next probe`,
      { providerId: this.#providerId, retryAfterMs: Math.max(0, wait) },
    );
  }

  #report(outcome: CircuitOutcome, probe: boolean): void {
    if (probe) this.#probing = false;
    switch (outcome) {
      case 'failure':
        this.#failures++;
        this.#successes = 0;
        if (this.#state === 'half_open' || (this.#state === 'closed' && this.#failures >= this.#threshold)) {
          this.#state = 'open';
          this.#openedAt = this.#now();
          this.#onChange('open');
        }
        return;
      case 'success':
      case 'neutral': // the provider answered (a refusal): it is up
        this.#failures = 0;
        if (this.#state === 'half_open' && probe && ++this.#successes >= this.#successThreshold) {
          this.#state = 'closed';
          this.#successes = 0;
          this.#onChange('closed');
        }
        return;
      case 'none':
        return; // nothing learnt; a probe's turn passes to the next call
    }
  }

  snapshot(): CircuitSnapshot {
    const open = this.#state !== 'closed';
    return {
      state: this.#state,
      consecutiveFailures: this.#failures,
      consecutiveSuccesses: this.#successes,
      openedAt: open ? new Date(this.#openedAt) : null,
      retryAfterMs: open ? Math.max(0, this.#openedAt + this.#cooldownMs - this.#now()) : 0,
    };
  }
}

/**
 * The circuit breakers of a refresher, one per provider, made at a provider's first refresh; `false`
 * options: none (every call goes through).
 * @internal
 */
export class CircuitBreakers {
  readonly #options: CircuitBreakerOptions | false;
  readonly #now: () => number;
  readonly #onChange: (providerId: string, state: CircuitState, snapshot: CircuitSnapshot) => void;
  readonly #breakers = new Map<string, CircuitBreaker>();

  constructor(
    options: CircuitBreakerOptions | false,
    now: () => number,
    onChange: (providerId: string, state: CircuitState, snapshot: CircuitSnapshot) => void,
  ) {
    // Validated now, not at the first failure.
    if (options !== false) new CircuitBreaker('validation', options, now, () => {});
    this.#options = options;
    this.#now = now;
    this.#onChange = onChange;
  }

  /** Run `fn` through the provider's breaker (see {@link CircuitBreaker.execute}). */
  execute<T>(
    providerId: string,
    fn: () => Promise<T>,
    classify: (error: unknown) => CircuitOutcome,
  ): Promise<T> {
    if (this.#options === false) return fn();
    let breaker = this.#breakers.get(providerId);
    if (breaker === undefined) {
      const created: CircuitBreaker = new CircuitBreaker(providerId, this.#options, this.#now, (state) =>
        this.#onChange(providerId, state, created.snapshot()),
      );
      breaker = created;
      this.#breakers.set(providerId, breaker);
    }
    return breaker.execute(fn, classify);
  }

  /** The circuit of every provider that has one. */
  snapshots(): Record<string, CircuitSnapshot> {
    return Object.fromEntries([...this.#breakers].map(([id, breaker]) => [id, breaker.snapshot()]));
  }
}
