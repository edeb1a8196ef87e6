import type { EventEmitter } from 'node:events';
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
