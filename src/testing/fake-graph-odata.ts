/**
 * What the emulated Graph API parses and computes apart from its routes: OData `$filter` and `$orderby`,
 * Graph's error bodies and times, and the rounds of a delta query (what changed since a delta token).
 * @internal
 * @module
 */
import { randomBytes } from 'node:crypto';

/** The fields of a message the OData queries and delta rounds read. */
export interface GraphMessageFields {
  readonly folder: string;
  readonly isRead: boolean;
  readonly receivedDateTime: string;
  readonly createdSeq: number;
  readonly changedSeq: number;
}

/** Where a delta round stands; carried, base64url JSON, in the emulation's delta and skip tokens. */
export interface DeltaState {
  /** Changes after this sequence belong to the round. */
  readonly after: number;
  /** The sequence the round ends at (the next round starts after it). */
  readonly upTo: number;
  readonly offset: number;
  readonly since: number | null;
  readonly changeType: string | null;
  readonly folder: string;
  readonly select: string | null;
}

/** Graph's error body, with the `innerError` Graph adds. */
export function graphError(code: string, message: string): Record<string, unknown> {
  return {
    error: {
      code,
      message,
      innerError: {
        date: new Date().toISOString().replace(/\.\d{3}Z$/, ''),
        'request-id': randomBytes(16).toString('hex'),
        'client-request-id': randomBytes(16).toString('hex'),
      },
    },
  };
}

/** One `property op value` of a `$filter` the emulation understands. */
export interface FilterClause {
  readonly property: 'isRead' | 'receivedDateTime';
  readonly test: (message: GraphMessageFields) => boolean;
}

/**
 * A `$filter` of `and`-joined clauses: `isRead eq true|false`, `receivedDateTime eq|ne|ge|gt|le|lt <time>`;
 * `undefined` for anything else (Graph's `ErrorInvalidUrlQueryFilter`).
 */
export function parseFilter(filter: string): FilterClause[] | undefined {
  const clauses: FilterClause[] = [];
  for (const part of filter.trim().split(/\s+and\s+/i)) {
    const m = /^\(?\s*(\w+)\s+(eq|ne|ge|gt|le|lt)\s+(\S+?)\s*\)?$/.exec(part.trim());
    if (m === null) return undefined;
    const [, property, op, value] = m as unknown as [string, string, string, string];
    if (property === 'isRead' && (op === 'eq' || op === 'ne') && (value === 'true' || value === 'false')) {
      const wanted = (value === 'true') === (op === 'eq');
      clauses.push({ property, test: (message) => message.isRead === wanted });
      continue;
    }
    const time = Date.parse(value);
    if (property !== 'receivedDateTime' || !/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(time)) {
      return undefined;
    }
    const compare: Record<string, (a: number) => boolean> = {
      eq: (a) => a === time,
      ne: (a) => a !== time,
      ge: (a) => a >= time,
      gt: (a) => a > time,
      le: (a) => a <= time,
      lt: (a) => a < time,
    };
    const test = compare[op] as (a: number) => boolean;
    clauses.push({ property, test: (message) => test(Date.parse(message.receivedDateTime)) });
  }
  return clauses;
}

/** An `$orderby` on `receivedDateTime` (`asc` by default); `undefined` for another property. */
export function parseOrderBy(
  orderby: string,
): { readonly property: 'receivedDateTime'; readonly descending: boolean }[] | undefined {
  const terms = orderby.split(',').map((t) => t.trim().split(/\s+/));
  if (
    terms.some(
      ([property, direction]) =>
        property !== 'receivedDateTime' || !['asc', 'desc', undefined].includes(direction?.toLowerCase()),
    )
  ) {
    return undefined;
  }
  return terms.map(([, direction]) => ({
    property: 'receivedDateTime',
    descending: direction?.toLowerCase() === 'desc',
  }));
}

/** A date as Graph writes it (whole seconds, `Z`). */
export function graphTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A delta state as the token of a delta or next link. */
export function encodeDeltaState(state: DeltaState): string {
  return Buffer.from(JSON.stringify(state)).toString('base64url');
}

/** The delta state of a token; `undefined` for one the emulation did not issue. */
export function decodeDeltaState(token: string): DeltaState | undefined {
  try {
    return JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as DeltaState;
  } catch {
    return undefined;
  }
}

/**
 * The changes of one delta round, in creation order: the first round reports every message of the folder;
 * later ones what was created, changed (or, without a `changeType` filter, removed) since the last round.
 */
export function deltaChanges<M extends GraphMessageFields>(
  state: DeltaState,
  messages: Iterable<M>,
  removed: ReadonlyMap<string, number>,
  view: (message: M) => Record<string, unknown>,
): Record<string, unknown>[] {
  const first = state.after === 0;
  const changes: Record<string, unknown>[] = [];
  for (const m of [...messages].sort((a, b) => a.createdSeq - b.createdSeq)) {
    if (m.folder !== 'inbox' || m.createdSeq > state.upTo) continue; // arrived after this round began
    if (state.since !== null && Date.parse(m.receivedDateTime) < state.since) continue;
    const created = first || m.createdSeq > state.after;
    const updated = !created && m.changedSeq > state.after;
    if (!created && !updated) continue;
    if (!first && state.changeType === 'created' && !created) continue;
    if (!first && state.changeType === 'updated' && !updated) continue;
    if (!first && state.changeType === 'deleted') continue;
    changes.push(view(m));
  }
  if (!first && state.changeType !== 'created' && state.changeType !== 'updated') {
    for (const [id, seq] of removed) {
      if (seq > state.after && seq <= state.upTo) changes.push({ id, '@removed': { reason: 'deleted' } });
    }
  }
  return changes;
}
