import { InvalidArgumentError } from '../errors.js';
import type { AccountFilter, AccountRecord, AccountStore } from './account-store.js';

/**
 * Options of {@link iterateAccounts}.
 *
 * @example
 * ```ts
 * for await (const r of iterateAccounts(store, {}, { pageSize: 500, signal })) console.log(r.id);
 * ```
 */
export interface IterateAccountsOptions {
  /**
   * Records fetched per page.
   * @default 100
   */
  readonly pageSize?: number;
  /** Stops the iteration (the iterator throws the signal's reason). */
  readonly signal?: AbortSignal;
}

/**
 * Walk every record matching `filter`, one page at a time: memory stays constant however many accounts
 * the store holds. Records changed during the walk may or may not be seen in their new state; none is
 * visited twice.
 *
 * @example
 * ```ts
 * import { iterateAccounts } from 'oauth-mailbox';
 * for await (const record of iterateAccounts(store, { expiresBefore: Date.now() + 86_400_000 })) {
 *   console.log(record.id, record.email);
 * }
 * ```
 */
export async function* iterateAccounts(
  store: AccountStore,
  filter: AccountFilter = {},
  options: IterateAccountsOptions = {},
): AsyncGenerator<AccountRecord, void, undefined> {
  const pageSize = options.pageSize ?? 100;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
    throw new InvalidArgumentError('pageSize must be a positive integer');
  }
  let cursor: string | null = null;
  do {
    options.signal?.throwIfAborted();
    const page = await store.listAccounts(filter, { cursor, limit: pageSize });
    for (const record of page.records) yield record;
    cursor = page.nextCursor;
  } while (cursor !== null);
}
