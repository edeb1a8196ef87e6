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
}

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
  /** `closed`, `open` or `half_open`. */
  readonly state: CircuitState;
  /** Transient failures in a row. */
  readonly consecutiveFailures: number;
  /** When it opened, if open or half-open. */
  readonly openedAt: Date | null;
  /** Milliseconds until the next probe may run (0 when closed). */
  readonly retryAfterMs: number;
}

/**
 * One provider's circuit breaker: after `failureThreshold` consecutive transient failures it opens, and
 * calls fail fast with `ProviderUnavailableError` for `cooldownMs`; then a single probe is let through;
 * its success closes the circuit, its failure opens it again.
 * @internal
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #now: () => number;
  readonly #providerId: string;
  readonly #onChange: (state: CircuitState) => void;
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;

  constructor(
    providerId: string,
    options: CircuitBreakerOptions,
    now: () => number,
    onChange: (state: CircuitState) => void,
  ) {
    const MAX = Number.MAX_SAFE_INTEGER;
    const badThreshold = () =>
      new ConfigurationError('circuitBreaker.failureThreshold must be a positive integer');
    const badCooldown = () =>
      new ConfigurationError('circuitBreaker.cooldownMs must be a non-negative integer (milliseconds)');
    const threshold = integerOption(options.failureThreshold, 5, 1, MAX, badThreshold);
    const cooldown = integerOption(options.cooldownMs, 60_000, 0, MAX, badCooldown);
    this.#providerId = providerId;
    this.#threshold = threshold;
    this.#cooldownMs = cooldown;
    this.#now = now;
    this.#onChange = onChange;
  }

  /** Throw `ProviderUnavailableError` unless a call may go through now. */
  check(): void {
    if (this.#state === 'closed') return;
    const wait = this.#openedAt + this.#cooldownMs - this.#now();
    if (this.#state === 'open' && wait <= 0) {
      this.#state = 'half_open';
      return; // this caller is the probe
    }
    throw new ProviderUnavailableError(
      `${this.#providerId} is unavailable: its last ${this.#failures} refreshes failed; calls fail fast until the next probe`,
      { providerId: this.#providerId, retryAfterMs: Math.max(0, wait) },
    );
  }

  /**
   * Run `fn` through the breaker: refused at once (`ProviderUnavailableError`) while the circuit is open; when
   * the cool-down is over, this call is the probe. A probe always settles: if `fn` ends without reporting an
   * outcome ({@link success}, {@link failure} or {@link neutral}: another process held the lease, a usable token
   * was found, the caller aborted, an unexpected error), the circuit returns to open with its cool-down over, so
   * the next call probes again. It can never stay half-open.
   */
  async execute<T>(fn: () => Promise<T>): Promise<T> {
    this.check();
    if (this.#state !== 'half_open') return fn();
    try {
      return await fn();
    } finally {
      if (this.#state === 'half_open') {
        this.#state = 'open';
        this.#openedAt = this.#now() - this.#cooldownMs;
      }
    }
  }

  /** Record a success (closes the circuit). */
  success(): void {
    this.#failures = 0;
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.#onChange('closed');
    }
  }

  /** Record a transient failure. */
  failure(): void {
    this.#failures++;
    if (this.#state === 'half_open' || (this.#state === 'closed' && this.#failures >= this.#threshold)) {
      this.#state = 'open';
      this.#openedAt = this.#now();
      this.#onChange('open');
    }
  }

  /** Record an outcome that says nothing about availability (a probe that ended in a permanent error). */
  neutral(): void {
    if (this.#state === 'half_open') {
      this.#state = 'closed';
      this.#failures = 0;
      this.#onChange('closed');
    }
  }

  snapshot(): CircuitSnapshot {
    const open = this.#state !== 'closed';
    return {
      state: this.#state,
      consecutiveFailures: this.#failures,
      openedAt: open ? new Date(this.#openedAt) : null,
      retryAfterMs: open ? Math.max(0, this.#openedAt + this.#cooldownMs - this.#now()) : 0,
    };
  }
}
