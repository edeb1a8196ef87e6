/**
 * Mailbox health of the fleet: what every instance's mailbox clients and watchers did, per account, read from
 * the store, so that one call on any instance answers for all of them.
 * @module
 */

import { ConfigurationError, InvalidArgumentError } from '../errors.js';
import type { ActivityRecorder } from '../mail/activity.js';
import type { MailboxActivityTotals } from '../store/account-store.js';
import { ACTIVITY_HOUR_MS, assertMailboxActivityQuery } from '../store/validate.js';
import type { TokenPersistence } from '../tokens/persistence.js';

/**
 * One account's mailbox health over the whole fleet: every instance's watchers and clients of this account,
 * counted in the store in hours. "Last 24 hours" is the current hour and the 23 before it (between 23 and 24
 * hours). No secret, no message content in it.
 *
 * @example
 * ```ts
 * const [inbox]: FleetMailboxHealth[] = await auth.mailboxHealth([accountId]);
 * if (inbox && inbox.failedLast24h > 0) alert(`${inbox.failedLast24h} messages skipped`);
 * ```
 */
export interface FleetMailboxHealth {
  /** The account. */
  readonly accountId: string;
  /** Messages whose watch callback resolved. */
  readonly processedLast24h: number;
  /** Messages skipped after their callback failed on every attempt (`messageFailed`). */
  readonly failedLast24h: number;
  /** Failures of connections, requests and watch sessions. */
  readonly errorsLast24h: number;
  /** The average time a watch callback took on the processed messages, in milliseconds (`null`: none). */
  readonly averageHandlerMs: number | null;
  /** The last success of any instance (a delivery, a listing, a connection, a watch session). */
  readonly lastSuccessAt: Date | null;
  /** The last error of any instance: its code and bounded message. */
  readonly lastError: {
    /** The error's stable code. */
    readonly code: string;
    /** Its message, at most 300 characters. */
    readonly message: string;
    /** When it happened. */
    readonly at: Date;
  } | null;
}

/**
 * Options of `auth.mailboxHealth(accountIds, options)`.
 *
 * @example
 * ```ts
 * const options: MailboxHealthOptions = { now: Date.now() };
 * ```
 */
export interface MailboxHealthOptions {
  /** The instant the last 24 hours end at, in epoch milliseconds. @default Date.now() */
  readonly now?: number;
}

/**
 * The fleet's mailbox health of each listed account (1 to 1000 distinct ids), in the order given; an account
 * without any recorded activity has zeros and `null`s. This instance's figures not yet written are written
 * first. Throws a `ConfigurationError` when the store keeps no mailbox activity (a store without
 * `addMailboxActivity` / `getMailboxActivity`), an `InvalidArgumentError` for bad ids and a `StorageError`
 * when the store fails. Hosts call it as `auth.mailboxHealth(accountIds)`.
 * @internal
 */
export async function mailboxHealth(
  persistence: TokenPersistence,
  recorder: ActivityRecorder | undefined,
  accountIds: readonly string[],
  options: MailboxHealthOptions = {},
): Promise<FleetMailboxHealth[]> {
  const now = options.now ?? Date.now();
  if (!Number.isSafeInteger(now) || now < 0)
    throw new InvalidArgumentError('now must be a non-negative integer (epoch ms)');
  const sinceHour = Math.max(0, now - (now % ACTIVITY_HOUR_MS) - 23 * ACTIVITY_HOUR_MS);
  assertMailboxActivityQuery(accountIds, sinceHour); // bad ids change nothing: checked before any write
  if (!persistence.keepsMailboxActivity)
    throw new ConfigurationError(
      'The store keeps no mailbox activity (addMailboxActivity / getMailboxActivity): mailbox health is per process (mailbox.health(), orchestrator.health())',
    );
  await recorder?.flush(accountIds);
  const byId = new Map(
    (await persistence.getMailboxActivity(accountIds, sinceHour)).map((t) => [t.accountId, t]),
  );
  return accountIds.map((id) => figures(id, byId.get(id)));
}

function figures(accountId: string, t: MailboxActivityTotals | undefined): FleetMailboxHealth {
  if (t === undefined)
    return {
      accountId,
      processedLast24h: 0,
      failedLast24h: 0,
      errorsLast24h: 0,
      averageHandlerMs: null,
      lastSuccessAt: null,
      lastError: null,
    };
  return {
    accountId,
    processedLast24h: t.processed,
    failedLast24h: t.failed,
    errorsLast24h: t.errors,
    averageHandlerMs: t.processed === 0 ? null : Math.round((t.handlerMs / t.processed) * 10) / 10,
    lastSuccessAt: t.lastSuccessAt === null ? null : new Date(t.lastSuccessAt),
    lastError:
      t.lastError === null
        ? null
        : { code: t.lastError.code, message: t.lastError.message, at: new Date(t.lastError.at) },
  };
}
