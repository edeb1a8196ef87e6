import { EventEmitter } from 'node:events';
import type { Logger } from './logger.js';

/**
 * Call every listener of `event` with `payload`; a listener that throws is logged, never allowed to break the
 * operation that emitted.
 * @internal
 */
export function emitSafely(emitter: EventEmitter, logger: Logger, event: string, payload: unknown): void {
  for (const listener of emitter.listeners(event)) {
    try {
      (listener as (p: unknown) => void)(payload);
    } catch (error) {
      logger.error(
        { event, message: error instanceof Error ? error.message : String(error) },
        'event listener threw',
      );
    }
  }
}

/**
 * The typed `on` / `off` of the library's event sources ({@link TokenRefresher}, {@link MailboxClient}):
 * each listener gets its event's payload (never a secret), and a listener that throws is logged, never
 * allowed to break the operation that emitted.
 *
 * @example
 * ```ts
 * const refresher: TypedEvents<TokenRefresherEvents> = auth.refresher;
 * const onFailure = ({ accountId, code }: TokenRefresherEvents['refreshFailed']) => log.warn({ accountId, code });
 * refresher.on('refreshFailed', onFailure);
 * refresher.off('refreshFailed', onFailure);
 * ```
 */
export class TypedEvents<Events extends object> {
  readonly #emitter = new EventEmitter();

  /** Listen to an event. */
  on<E extends keyof Events & string>(event: E, listener: (payload: Events[E]) => void): this {
    this.#emitter.on(event, listener);
    return this;
  }

  /** Stop listening. */
  off<E extends keyof Events & string>(event: E, listener: (payload: Events[E]) => void): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /** Call the event's listeners (see {@link emitSafely}). @internal */
  protected emitTo<E extends keyof Events & string>(logger: Logger, event: E, payload: Events[E]): void {
    emitSafely(this.#emitter, logger, event, payload);
  }
}
