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
import type { CursorKeeper } from './watch-cursor.js';

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
  saved?: {
    /** Keeps the position in the store. */
    readonly keeper: CursorKeeper;
    /** The watch was given its starting position (`cursor`, `sinceUid`): the stored one is not read. */
    readonly given: boolean;
  },
): Promise<void> {
  try {
    await loop(host, run, onFirstReady, saved);
  } finally {
    // The last positions reach the store before the watch is reported stopped.
    await saved?.keeper.flush();
  }
}

async function loop(
  host: WatchLoopHost,
  run: WatchRun,
  onFirstReady: () => void,
  saved: { readonly keeper: CursorKeeper; readonly given: boolean } | undefined,
): Promise<void> {
  const { signal } = run;
  let loaded = saved === undefined;
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
  run.resynced = (why: string) => {
    logger.warn({ accountId, reason: why }, 'watch resume point expired; resynchronized');
    host.emit('resynced', { accountId, mailbox: run.mailbox, reason: why });
    host.emit('reconnected', { accountId, reason: 'resync' });
  };
  while (!signal.aborted) {
    try {
      const driver = await host.driver();
      if (!loaded && saved !== undefined) {
        // Where a previous watch of this transport and folder stopped (another instance's, or before a
        // restart); a watch given a position starts there and saves from there.
        const stored = await saved.keeper.load(cursorKey(driver.name, run.mailbox));
        if (!saved.given && stored !== null) run.cursor = stored;
        loaded = true;
      }
      const outcome = await driver.watchSession(run);
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

/**
 * The key of a watch position: the transport and the folder, the inbox spelled `INBOX` whatever the case
 * (IMAP, Gmail and Graph all name it so; a watch without a folder watches it).
 * @internal
 */
export function cursorKey(transport: string, mailbox: string | undefined): string {
  const folder = mailbox === undefined || mailbox.toUpperCase() === 'INBOX' ? 'INBOX' : mailbox;
  return `${transport}:${folder}`;
}
