/**
 * The figures behind `MailboxClient.health()`: last success, last error, and the failures and deliveries of
 * the last 24 hours (a sliding window, trimmed as it is read).
 * @internal
 * @module
 */
import { type ActivityRecorder, activityError } from './activity.js';
import type { MailboxHealth } from './client-options.js';

const DAY = 86_400_000;

/**
 * What a client records as it works, and reads as {@link MailboxHealth}; each record is also given to the
 * shared activity recorder (the store's figures of the fleet), when there is one.
 * @internal
 */
export class ClientHealth {
  readonly #shared: { readonly recorder: ActivityRecorder; readonly accountId: string } | undefined;
  #lastSuccess: number | null = null;
  #lastError: { code: string; message: string; at: number } | null = null;
  readonly #errors: number[] = [];
  readonly #messages: number[] = [];
  readonly #failedMessages: number[] = [];

  constructor(shared?: { readonly recorder: ActivityRecorder; readonly accountId: string }) {
    this.#shared = shared;
  }

  /** Something succeeded; `message`: a message was listed too. */
  success(kind: 'success' | 'message' = 'success'): void {
    const now = Date.now();
    this.#lastSuccess = now;
    if (kind === 'message') this.#messages.push(now);
    this.#shared?.recorder.succeeded(this.#shared.accountId);
  }

  /** A watched message's callback resolved after `handlerMs`. */
  delivered(handlerMs: number): void {
    const now = Date.now();
    this.#lastSuccess = now;
    this.#messages.push(now);
    this.#shared?.recorder.processed(this.#shared.accountId, handlerMs);
  }

  /** A message was skipped after its callback failed on every attempt. */
  messageFailed(): void {
    this.#failedMessages.push(Date.now());
    this.#shared?.recorder.failed(this.#shared.accountId);
  }

  /** Something failed: its code and (bounded) message are kept, never more of it. */
  failure(err: unknown): void {
    const now = Date.now();
    this.#errors.push(now);
    const { code, message } = activityError(err, now);
    this.#lastError = { code, message, at: now };
    this.#shared?.recorder.errored(this.#shared.accountId, err);
  }

  /** The figures now, given the connection and watch state the client knows. */
  read(connected: boolean, watching: boolean): MailboxHealth {
    const since = Date.now() - DAY;
    for (const list of [this.#errors, this.#messages, this.#failedMessages])
      while (list.length > 0 && (list[0] as number) < since) list.shift();
    return {
      connected,
      watching,
      lastSuccessAt: this.#lastSuccess === null ? null : new Date(this.#lastSuccess),
      lastError: this.#lastError === null ? null : { ...this.#lastError, at: new Date(this.#lastError.at) },
      errorsLast24h: this.#errors.length,
      messagesLast24h: this.#messages.length,
      failedMessagesLast24h: this.#failedMessages.length,
    };
  }
}
