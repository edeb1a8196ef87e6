/**
 * The lifecycle of a `MailboxAuth`: what `close()` stops, aborts and waits for, and the refusal of every
 * call once it has closed.
 * @internal
 * @module
 */
import { ClosedError, isMailboxAuthError } from '../errors.js';
import { linkSignals } from './abort.js';

/**
 * How `guard` wraps each method: `sync` (refused after close), `adopt` (refused after close; the result is
 * stopped at close), `async` (refused, counted in flight), or the index of the options argument whose
 * `signal` is joined with the close signal (an async call the close aborts).
 * @internal
 */
export type MethodKind = 'sync' | 'adopt' | 'async' | number;

/** Something the auth created that `close()` must stop (a mailbox client, a watch orchestrator). @internal */
export type Closable = object;

/**
 * Tracks the work and the objects of one `MailboxAuth`:
 * - `call` refuses new work once closing, passes the close signal into options that take one, counts the call
 *   as in flight, and reports a failure caused by the close as a `ClosedError` (the failure as its `cause`);
 * - `adopt` remembers an object to stop at close (weakly: a client the host dropped is not kept alive);
 * - `close` runs the shutdown once; a second call returns the same promise.
 * @internal
 */
export class Lifecycle {
  readonly #name: string;
  readonly #controller = new AbortController();
  /** Calls in flight, and who waits for them all to settle. */
  #active = 0;
  #drained: (() => void) | undefined;
  readonly #adopted = new Set<WeakRef<Closable>>();
  readonly #forget = new FinalizationRegistry<WeakRef<Closable>>((ref) => this.#adopted.delete(ref));
  #closing: Promise<void> | undefined;

  constructor(name: string) {
    this.#name = name;
  }

  /** Aborted (with a `ClosedError`) when `close()` starts. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Throw the `ClosedError` of a call made after `close()`. */
  assertOpen(method: string): void {
    if (this.#closing !== undefined) {
      throw new ClosedError(`${this.#name} was closed: ${method}() refused (create a new one)`);
    }
  }

  /**
   * Run an async call: refused after close, counted while in flight. With `signalAt`, the argument at that
   * index is an options object whose `signal` is joined with the close signal (absent options are created).
   */
  call<T>(
    method: string,
    run: (...args: never[]) => Promise<T>,
    args: unknown[],
    signalAt?: number,
  ): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(
        new ClosedError(`${this.#name} was closed: ${method}() refused (create a new one)`),
      );
    }
    // The caller's signal linked to this object's close signal; unlinked once the call settles (an
    // `AbortSignal.any` over the long-lived close signal would retain every call's signal: see linkSignals).
    let unlink = () => {};
    if (signalAt !== undefined) {
      const options = (args[signalAt] ?? {}) as { readonly signal?: AbortSignal };
      let signal = this.signal;
      if (options.signal !== undefined) {
        const link = linkSignals([options.signal, this.signal]);
        signal = link.signal;
        unlink = link.dispose;
      }
      args[signalAt] = { ...options, signal };
    }
    let started: Promise<T>;
    try {
      started = run(...(args as never[]));
    } catch (err) {
      started = Promise.reject(err);
    }
    this.#active++;
    return started.then(
      (value) => {
        unlink();
        this.#settled();
        return value;
      },
      (err: unknown) => {
        unlink();
        this.#settled();
        // A failure the close caused (an aborted refresh, a stopped walk) is reported as the close.
        if (this.#closing === undefined || isMailboxAuthError(err)) throw err;
        throw new ClosedError(`${this.#name} was closed while ${method}() ran`, { cause: err });
      },
    );
  }

  #settled(): void {
    this.#active--;
    if (this.#active === 0) this.#drained?.();
  }

  /** Resolves once no call is in flight. */
  #drain(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = resolve;
    });
  }

  /** Replace each listed method of `target` by its guarded version (before the object is frozen). */
  guard<T extends object>(target: T, methods: { readonly [K in keyof T]?: MethodKind }): void {
    const record = target as Record<string, unknown>;
    for (const [name, kind] of Object.entries(methods) as [string, MethodKind][]) {
      const method = record[name] as (...args: unknown[]) => unknown;
      record[name] =
        kind === 'sync' || kind === 'adopt'
          ? (...args: unknown[]) => {
              this.assertOpen(name);
              const result = method(...args);
              return kind === 'adopt' ? this.adopt(result as Closable) : result;
            }
          : (...args: unknown[]) =>
              this.call(
                name,
                method as (...a: never[]) => Promise<unknown>,
                args,
                kind === 'async' ? undefined : kind,
              );
    }
  }

  /** Remember `value` to stop at close; it is returned. */
  adopt<T extends Closable>(value: T): T {
    const ref = new WeakRef(value);
    this.#adopted.add(ref);
    this.#forget.register(value, ref);
    return value;
  }

  /**
   * Close once: abort the close signal, `settle` (stop the refresher), `stop` every adopted object still
   * alive, wait for every call in flight, then `release` (wait for the refreshes still running, give up
   * what is still held).
   */
  close(steps: {
    readonly stop: (value: Closable) => Promise<void>;
    readonly settle: () => void;
    readonly release: () => Promise<void>;
  }): Promise<void> {
    this.#closing ??= (async () => {
      this.#controller.abort(new ClosedError(`${this.#name} was closed while the call ran`));
      const adopted = [...this.#adopted].flatMap((ref) => {
        const value = ref.deref();
        return value === undefined ? [] : [value];
      });
      this.#adopted.clear();
      steps.settle();
      await Promise.allSettled(adopted.map((value) => steps.stop(value)));
      await this.#drain();
      await steps.release();
    })();
    return this.#closing;
  }
}
