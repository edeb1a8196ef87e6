/**
 * The page-by-page walk that every operation over all accounts shares: memory stays constant however many
 * accounts there are.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { integerOption } from '../internal/options.js';
import type { AccountFilter } from '../store/account-store.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';

/** An optional integer option from 1 to `max`, or `fallback` when absent; anything else is refused. */
export function positive(value: unknown, name: string, fallback: number, max: number): number {
  return integerOption(
    value,
    fallback,
    1,
    max,
    () => new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`),
  );
}

/** The accounts matching `filter`, one page of `pageSize` at a time, from `cursor`. */
export async function* walk(
  persistence: TokenPersistence,
  filter: AccountFilter,
  pageSize: number,
  signal: AbortSignal | undefined,
  cursor: string | null = null,
  onPage?: (cursor: string | null) => void,
): AsyncGenerator<MailboxAccount> {
  let next: string | null = cursor;
  do {
    signal?.throwIfAborted();
    const page = await persistence.listAccounts(filter, { cursor: next, limit: pageSize });
    for (const account of page.accounts) yield account;
    next = page.nextCursor;
    onPage?.(next);
  } while (next !== null);
}
