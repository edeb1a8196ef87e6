/**
 * Handing one message to the host's callback: a callback that throws is called again a bounded number of
 * times with backoff, then the message is reported (`messageFailed`, the optional `onFailedMessage` hook for
 * a dead-letter store) and skipped, so that one message the host cannot handle never holds back the ones
 * after it (a watch used to fail its session on it and deliver it again, hundreds of times a second).
 * @internal
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { backoffDelay } from '../internal/backoff.js';
import { integerOption } from '../internal/options.js';
import { pause } from '../internal/timers.js';
import type { Logger } from '../logger.js';
import type { FailedMessage, WatchOptions } from './client-options.js';
import type { MailMessage } from './message.js';

/** The checked retry settings of a watch. @internal */
export interface DeliverySettings {
  readonly retries: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly onFailedMessage: WatchOptions['onFailedMessage'];
}

/** Check `retry` and `onFailedMessage` of {@link WatchOptions}; throws `InvalidArgumentError`. @internal */
export function deliverySettings(options: WatchOptions): DeliverySettings {
  const retry = options.retry ?? {};
  if (typeof retry !== 'object' || retry === null)
    throw new InvalidArgumentError('retry must be an object ({ retries, minDelayMs, maxDelayMs })');
  const refuse = (name: string, range: string) => () =>
    new InvalidArgumentError(`retry.${name} must be an integer ${range}`);
  const retries = integerOption(retry.retries, 5, 0, 100, refuse('retries', 'from 0 to 100'));
  const minDelayMs = integerOption(
    retry.minDelayMs,
    1000,
    0,
    3_600_000,
    refuse('minDelayMs', 'from 0 to 3600000 (milliseconds)'),
  );
  const maxDelayMs = integerOption(
    retry.maxDelayMs,
    60_000,
    minDelayMs,
    3_600_000,
    refuse('maxDelayMs', 'from minDelayMs to 3600000 (milliseconds)'),
  );
  if (options.onFailedMessage !== undefined && typeof options.onFailedMessage !== 'function')
    throw new InvalidArgumentError('onFailedMessage must be a function');
  return { retries, minDelayMs, maxDelayMs, onFailedMessage: options.onFailedMessage };
}

/** Where a delivery reports. @internal */
export interface DeliveryHost {
  readonly accountId: string;
  readonly mailbox: string | undefined;
  readonly logger: Logger;
  /** The message was skipped after its retries (counted, and emitted as `messageFailed`). */
  failed(failure: FailedMessage): void;
}

/** The stable code of what a callback threw: its `code` when it has a string one, else its name. */
function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.length > 0) return code.slice(0, 100);
  return err instanceof Error ? err.name : typeof err;
}

/**
 * Call `handler` with `message` until it resolves, at most `retries + 1` times; then report and skip it.
 * Resolves when the message is done with: the time the callback that resolved took (milliseconds) when
 * delivered, `null` when skipped; rejects only when `signal` aborts while the callback fails (the watch is stopping: the message is not skipped, the next watch delivers it again).
 * @internal
 */
export async function deliverMessage(
  handler: (message: MailMessage) => void | Promise<void>,
  message: MailMessage,
  settings: DeliverySettings,
  host: DeliveryHost,
  signal: AbortSignal,
): Promise<number | null> {
  for (let attempt = 1; ; attempt++) {
    let error: unknown;
    try {
      const started = performance.now();
      await handler(message);
      return performance.now() - started;
    } catch (err) {
      error = err;
    }
    if (signal.aborted) throw error;
    if (attempt > settings.retries) {
      const failure: FailedMessage = {
        accountId: host.accountId,
        mailbox: host.mailbox,
        messageId: message.id,
        attempts: attempt,
        code: codeOf(error),
      };
      host.logger.warn({ ...failure }, 'message handler failed on every attempt; message skipped');
      host.failed(failure);
      try {
        await settings.onFailedMessage?.(message, { ...failure, error });
      } catch (hookError) {
        host.logger.warn(
          { accountId: host.accountId, messageId: message.id, code: codeOf(hookError) },
          'onFailedMessage failed; message skipped',
        );
      }
      return null;
    }
    await pause(backoffDelay(attempt - 1, settings), signal);
    if (signal.aborted) throw error;
  }
}
