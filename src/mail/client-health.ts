/**
 * The figures behind `MailboxClient.health()`: last success, last error, and the failures and deliveries of
 * the last 24 hours (a sliding window, trimmed as it is read).
 * @internal
 * @module
 */
import { isMailboxAuthError } from '../errors.js';
import type { MailboxHealth } from './client-options.js';

const DAY = 86_400_000;

/** What a client records as it works, and reads as {@link MailboxHealth}. @internal */
export class ClientHealth {
  #lastSuccess: number | null = null;
  #lastError: { code: string; message: string; at: number } | null = null;
  readonly #errors: number[] = [];
  readonly #messages: number[] = [];
  readonly #failedMessages: number[] = [];

  /** Something succeeded; `message`: a message was delivered or listed too. */
  success(kind: 'success' | 'message' = 'success'): void {
    const now = Date.now();
    this.#lastSuccess = now;
    if (kind === 'message') this.#messages.push(now);
  }

  /** A message was skipped after its callback failed on every attempt. */
  messageFailed(): void {
    this.#failedMessages.push(Date.now());
  }

  /** Something failed: its code and (bounded) message are kept, never more of it. */
  failure(err: unknown): void {
    const now = Date.now();
    this.#errors.push(now);
    this.#lastError = {
      code: isMailboxAuthError(err) ? err.code : ((err as { code?: string })?.code ?? 'ERR_UNEXPECTED'),
      message: err instanceof Error ? err.message.slice(0, 300) : String(err),
      at: now,
    };
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
