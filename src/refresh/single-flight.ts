/**
 * Single flight: concurrent callers of one key share one run of the work.
 * @module
 */

import { linkSignals, raceAbort } from '../internal/abort.js';

/** One run of the work, shared by its waiters. @internal */
export interface Flight<T> {
  readonly promise: Promise<T>;
  /**
   * Aborts the flight once every waiter has given up. Absent when the first caller passed no signal: that
   * caller never gives up, so the flight always has a waiter (and creating signals costs: Node 20 makes
   * every AbortSignal transferable, the most expensive allocation of a bulk refresh after the HTTP request).
   */
  readonly controller: AbortController | undefined;
  waiters: number;
}

/**
 * Runs work once per key for every caller that asks while it runs. The work gets a signal that aborts when
 * `closed` does, or when every caller has given up (their signals aborted); a caller that gives up stops
 * waiting at once, the work goes on while another still waits. The signal is linked to `closed` with a
 * listener removed when the flight settles (never `AbortSignal.any`, which retains every derived signal in
 * the long-lived one).
 * @internal
 */
export class SingleFlight<T> {
  readonly #closed: AbortSignal;
  readonly #flights = new Map<string, Flight<T>>();

  constructor(closed: AbortSignal) {
    this.#closed = closed;
  }

  /** Flights running. */
  get size(): number {
    return this.#flights.size;
  }

  /**
   * The running flight of `key`, or a new one started with `start`. `abortable`: the first caller has a
   * signal (see {@link SingleFlight.wait}); without one the flight runs until it settles or `closed` aborts.
   */
  flight(key: string, start: (signal: AbortSignal) => Promise<T>, abortable: boolean): Flight<T> {
    return this.#flights.get(key) ?? this.#start(key, start, abortable);
  }

  /** Wait for `flight`; it is aborted only when every waiter has given up. */
  async wait(flight: Flight<T>, signal: AbortSignal | undefined): Promise<T> {
    flight.waiters++;
    try {
      return await raceAbort(flight.promise, signal);
    } finally {
      flight.waiters--;
      if (flight.waiters === 0 && signal?.aborted) flight.controller?.abort(signal.reason);
    }
  }

  /** Forget `flight` (if it is still the key's), so that the next `join` starts a new one. */
  forget(key: string, flight: Flight<T>): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
  }

  /** Resolves once no flight runs (flights started meanwhile included). */
  async settled(): Promise<void> {
    while (this.#flights.size > 0) {
      await Promise.allSettled([...this.#flights.values()].map((flight) => flight.promise));
    }
  }

  #start(key: string, start: (signal: AbortSignal) => Promise<T>, abortable: boolean): Flight<T> {
    const controller = abortable ? new AbortController() : undefined;
    const link = controller === undefined ? undefined : linkSignals([controller.signal, this.#closed]);
    let promise: Promise<T>;
    try {
      promise = start(link === undefined ? this.#closed : link.signal);
    } catch (err) {
      promise = Promise.reject(err);
    }
    const flight: Flight<T> = {
      promise: promise.finally(() => {
        link?.dispose();
        this.forget(key, flight);
      }),
      controller,
      waiters: 0,
    };
    this.#flights.set(key, flight);
    return flight;
  }
}
