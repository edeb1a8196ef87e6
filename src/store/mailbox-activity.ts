/**
 * Mailbox activity kept per account and hour, in memory: the reference the memory store keeps and the
 * conformance suite's sums are checked against.
 * @internal
 * @module
 */
import type { MailboxActivity, MailboxActivityError, MailboxActivityTotals } from './account-store.js';
import { ACTIVITY_HOUR_MS } from './validate.js';

/** Hours kept before the newest one given (a day and one hour: the current hour is partial). */
export const KEPT_HOURS = 25;

/** The counts of one hour. */
interface HourCounts {
  processed: number;
  failed: number;
  errors: number;
  handlerMs: number;
}

/** What is kept for one account. @internal */
export interface KeptActivity {
  readonly hours: Map<number, HourCounts>;
  lastSuccessAt: number | null;
  lastError: MailboxActivityError | null;
}

/** `activity` added to `kept` (created when `undefined`); hours older than {@link KEPT_HOURS} dropped. @internal */
export function addActivity(kept: KeptActivity | undefined, activity: MailboxActivity): KeptActivity {
  const into = kept ?? { hours: new Map(), lastSuccessAt: null, lastError: null };
  const hour = into.hours.get(activity.hour) ?? { processed: 0, failed: 0, errors: 0, handlerMs: 0 };
  hour.processed += activity.processed;
  hour.failed += activity.failed;
  hour.errors += activity.errors;
  hour.handlerMs += activity.handlerMs;
  into.hours.set(activity.hour, hour);
  const oldest = Math.max(...into.hours.keys()) - KEPT_HOURS * ACTIVITY_HOUR_MS;
  for (const at of into.hours.keys()) if (at < oldest) into.hours.delete(at);
  if (
    activity.lastSuccessAt !== null &&
    (into.lastSuccessAt === null || activity.lastSuccessAt > into.lastSuccessAt)
  )
    into.lastSuccessAt = activity.lastSuccessAt;
  if (activity.lastError !== null && (into.lastError === null || activity.lastError.at > into.lastError.at))
    into.lastError = { ...activity.lastError };
  return into;
}

/** The totals of `kept` over the hours from `sinceHour` on. @internal */
export function sumActivity(accountId: string, kept: KeptActivity, sinceHour: number): MailboxActivityTotals {
  const totals = { processed: 0, failed: 0, errors: 0, handlerMs: 0 };
  for (const [at, hour] of kept.hours) {
    if (at < sinceHour) continue;
    totals.processed += hour.processed;
    totals.failed += hour.failed;
    totals.errors += hour.errors;
    totals.handlerMs += hour.handlerMs;
  }
  return {
    accountId,
    ...totals,
    lastSuccessAt: kept.lastSuccessAt,
    lastError: kept.lastError === null ? null : { ...kept.lastError },
  };
}
