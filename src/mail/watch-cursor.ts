/**
 * A watch position kept in the store, per account and key (the transport and the folder: `imap:INBOX`): read
 * once before the first session of a watch that was given none, and saved each time the transport moves it
 * (after the host's callback resolved for the messages before it). Saves are written one at a time, the
 * newest position winning over the ones not yet written; a failed save is reported and the next one goes
 * on (the watch never stops for it: a position not saved means messages delivered again after a crash,
 * never messages lost).
 * @internal
 * @module
 */
import type { TokenPersistence } from '../tokens/persistence.js';

/** What the keeper reports a failed read or save to. @internal */
export interface CursorKeeperHost {
  readonly accountId: string;
  /** A save failed (the watch goes on). */
  saveFailed(err: unknown): void;
}

/** @internal */
export class CursorKeeper {
  readonly #persistence: TokenPersistence;
  readonly #host: CursorKeeperHost;
  #key: string | undefined;
  #pending: string | undefined;
  #writing: Promise<void> | undefined;

  constructor(persistence: TokenPersistence, host: CursorKeeperHost) {
    this.#persistence = persistence;
    this.#host = host;
  }

  /** Whether the store keeps positions at all. */
  get enabled(): boolean {
    return this.#persistence.keepsWatchCursors;
  }

  /** The position saved under `key` (`null`: none), and from now on save under that key. Throws a `StorageError`. */
  async load(key: string): Promise<string | null> {
    this.#key = key;
    return this.#persistence.getWatchCursor(this.#host.accountId, key);
  }

  /** Save `cursor` (after the writes before it; a newer call replaces a position not yet written). */
  save(cursor: string): void {
    if (this.#key === undefined) return; // not loaded: this watch keeps no position in the store
    this.#pending = cursor;
    this.#writing ??= this.#drain();
  }

  /** Resolves once every position given to {@link CursorKeeper.save} so far was written (or failed). */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  /** Write the pending positions; `#writing` is cleared in the same step that finds none left. */
  async #drain(): Promise<void> {
    const key = this.#key as string;
    try {
      for (let cursor = this.#pending; cursor !== undefined; cursor = this.#pending) {
        this.#pending = undefined;
        try {
          await this.#persistence.putWatchCursor(this.#host.accountId, key, cursor);
        } catch (err) {
          this.#host.saveFailed(err);
        }
      }
    } finally {
      this.#writing = undefined;
    }
  }
}
