/**
 * Online key rotation: re-encrypt every account sealed with an older key, page by page, resumable.
 * @module
 */
import { isMailboxAuthError } from '../errors.js';
import { MAX_PAGE_SIZE } from '../store/validate.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import { positive, walk } from './walk.js';

/**
 * Options of {@link rotateKeys}.
 *
 * @example
 * ```ts
 * await auth.rotateKeys({ batchSize: 500, cursor: savedCursor, onProgress: (p) => save(p.cursor) });
 * ```
 */
export interface RotateKeysOptions {
  /** Accounts per page. @default 100 */
  readonly batchSize?: number;
  /** Resume after this cursor (the `cursor` of a previous report or progress callback). */
  readonly cursor?: string | null;
  /** Stops the walk; re-encrypted records stay re-encrypted. */
  readonly signal?: AbortSignal;
  /** Called after each page with the cursor to resume from. */
  readonly onProgress?: (progress: RotateKeysReport) => void;
}

/**
 * What {@link rotateKeys} did.
 *
 * @example
 * ```ts
 * const { reencrypted, cursor }: RotateKeysReport = await auth.rotateKeys();
 * ```
 */
export interface RotateKeysReport {
  /** Accounts looked at. */
  readonly scanned: number;
  /** Accounts rewritten with the current key. */
  readonly reencrypted: number;
  /** Accounts that could not be re-encrypted (counted by code in `failures`). */
  readonly failed: number;
  /** Failures by error code (`ERR_CRYPTO` for a record no configured key decrypts). */
  readonly failures: Readonly<Record<string, number>>;
  /** Where to resume; `null` once the walk is complete. */
  readonly cursor: string | null;
}

/**
 * Re-encrypt every account whose tokens were sealed with a key other than the cipher's current one, page by
 * page (online: writes are version-checked). Resumable: pass the last reported `cursor`.
 *
 * @example
 * ```ts
 * const report = await rotateKeys(auth.persistence, { batchSize: 200, onProgress: (p) => saveCursor(p.cursor) });
 * ```
 */
export async function rotateKeys(
  persistence: TokenPersistence,
  options: RotateKeysOptions = {},
): Promise<RotateKeysReport> {
  const batchSize = positive(options.batchSize, 'batchSize', 100, MAX_PAGE_SIZE);
  const counts = { scanned: 0, reencrypted: 0, failed: 0 };
  const failures: Record<string, number> = {};
  let cursor = options.cursor ?? null;
  const report = (): RotateKeysReport => ({ ...counts, failures: { ...failures }, cursor });
  for await (const account of walk(persistence, {}, batchSize, options.signal, cursor, (next) => {
    cursor = next;
    options.onProgress?.(report());
  })) {
    counts.scanned++;
    try {
      if (await persistence.reencrypt(account.id)) counts.reencrypted++;
    } catch (err) {
      if (isMailboxAuthError(err, 'ERR_ACCOUNT_NOT_FOUND')) continue;
      if (isMailboxAuthError(err, 'ERR_STORAGE')) throw err;
      counts.failed++;
      const code = isMailboxAuthError(err) ? err.code : 'ERR_UNEXPECTED';
      failures[code] = (failures[code] ?? 0) + 1;
    }
  }
  return report();
}
