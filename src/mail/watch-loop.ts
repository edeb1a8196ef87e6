/**
 * The watch loop of `MailboxClient`, the same for every transport: a session until it must be renewed or
 * fails; after a failure, exponential backoff with jitter (never shorter than a `Retry-After`), then a new
 * session that resumes from the cursor. A permanent authentication failure stops the watch with
 * `reauthorizationRequired`; a refused request (a resource the API does not know, an account deleted) stops
 * it too.
 * @internal
 * @module
 */
import { isMailboxAuthError } from '../errors.js';
import { Backoff } from '../internal/backoff.js';
import { pause } from '../internal/timers.js';
import type { Logger } from '../logger.js';
import type { MailboxClientEvents } from './client-options.js';
import type { MailTransportDriver, WatchRun } from './transport.js';

/** What the loop needs from its client. @internal */
export interface WatchLoopHost {
  readonly accountId: string;
  readonly logger: Logger;
  readonly reconnect: { readonly minDelayMs: number; readonly maxDelayMs: number };
  /** The client's transport (created on first use). */
  driver(): Promise<MailTransportDriver>;
  emit<E extends keyof MailboxClientEvents>(event: E, payload: MailboxClientEvents[E]): void;
  success(): void;
  failure(err: unknown): void;
}

/**
 * Run `run` until its signal aborts (resolves) or a failure must stop it (rejects). `onFirstReady` is called
 * when the first session is up.
 * @internal
 */
export async function runWatchLoop(
  host: WatchLoopHost,
  run: WatchRun,
  onFirstReady: () => void,
): Promise<void> {
  const { signal } = run;
  const { accountId, logger } = host;
  const backoff = new Backoff(host.reconnect);
  let reason: 'token' | 'drop' | undefined;
  run.ready = () => {
    onFirstReady();
    if (reason !== undefined) host.emit('reconnected', { accountId, reason });
    reason = undefined;
    backoff.reset();
    host.success();
  };
  run.resynced = () => {
    logger.warn({ accountId }, 'watch resume point expired; resynchronized');
    host.emit('reconnected', { accountId, reason: 'resync' });
  };
  while (!signal.aborted) {
    try {
      const outcome = await (await host.driver()).watchSession(run);
      if (outcome === 'renew') reason = 'token';
    } catch (err) {
      if (signal.aborted) break;
      host.failure(err);
      if (isMailboxAuthError(err) && err.category === 'reauthorization') {
        host.emit('reauthorizationRequired', { accountId, reason: err.message });
        throw err;
      }
      if (isMailboxAuthError(err) && err.category === 'request') {
        logger.warn({ accountId, code: err.code }, 'watcher stopped: request refused');
        throw err;
      }
      host.emit('error', { accountId, error: err as Error });
      logger.warn({ accountId, code: (err as { code?: string }).code }, 'watcher failed; reconnecting');
      reason = 'drop';
      // A throttling API (or provider) said how long to stay away: never come back sooner than that.
      const retryAfterMs = (err as { retryAfterMs?: unknown }).retryAfterMs;
      await pause(Math.max(backoff.next(), typeof retryAfterMs === 'number' ? retryAfterMs : 0), signal);
    }
  }
}
