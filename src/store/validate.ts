import { InvalidArgumentError } from '../errors.js';
import { describeType, hasControlCharacter, isWellFormed } from '../internal/text.js';
import {
  ACCOUNT_STATUSES,
  type AccountFilter,
  type AccountRecord,
  type AccountStatus,
  type ListOptions,
  type MailboxActivity,
  type MetadataValue,
} from './account-store.js';
import type { StoredState } from './state-store.js';

/** Largest page {@link AccountStore.listAccounts} serves. */
export const MAX_PAGE_SIZE = 1000;
/** Page size when none is given. */
export const DEFAULT_PAGE_SIZE = 100;
const MAX_ID = 255;
const MAX_TEXT = 1024;

/**
 * Why a string cannot be stored the same way by every store, or `undefined` when it can. A NUL is refused by
 * PostgreSQL (memory and Redis would keep it); a lone UTF-16 surrogate is rewritten to U+FFFD by UTF-8
 * encodings (two distinct owners would become one); other control characters are refused in identifiers.
 */
function badCharacters(value: string, controls: boolean): string | undefined {
  if (!isWellFormed(value)) return 'ill-formed UTF-16 (a lone surrogate)';
  // C0, DEL and C1 controls are never part of an id, owner, email, provider or metadata key.
  if (controls ? hasControlCharacter(value, { c1: true }) : value.includes('\u0000'))
    return 'a control character';
  return undefined;
}

function text(value: unknown, name: string, max = MAX_TEXT): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new InvalidArgumentError(`${name} must be a non-empty string of at most ${max} characters`);
  }
  const bad = badCharacters(value, true);
  // The value itself is not echoed: it is a caller's input, and may be long or hostile.
  if (bad !== undefined) throw new InvalidArgumentError(`${name} must not contain ${bad}`);
  return value;
}

/**
 * Check a record's `metadata`: a plain, JSON-serializable object whose keys (at every depth) hold no control
 * character or lone surrogate, and whose strings hold no NUL or lone surrogate (so that every store keeps
 * exactly what was given). @internal
 */
export function assertMetadata(
  metadata: unknown,
  name = 'metadata',
): asserts metadata is Record<string, unknown> {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new InvalidArgumentError(`${name} must be a plain object`);
  }
  try {
    JSON.stringify(metadata);
  } catch (cause) {
    throw new InvalidArgumentError(`${name} must be JSON-serializable`, { cause });
  }
  const walk = (value: unknown, depth: number): void => {
    if (depth > MAX_METADATA_DEPTH) throw new InvalidArgumentError(`${name} is nested too deeply`);
    if (typeof value === 'string') {
      const bad = badCharacters(value, false);
      if (bad !== undefined) throw new InvalidArgumentError(`${name} values must not contain ${bad}`);
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, depth + 1);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        const bad = badCharacters(key, true);
        if (bad !== undefined) throw new InvalidArgumentError(`${name} keys must not contain ${bad}`);
        walk(item, depth + 1);
      }
    }
  };
  walk(metadata, 0);
}

/** Deepest nesting of `metadata` that is checked (and accepted). */
const MAX_METADATA_DEPTH = 32;

/** A list of scopes: strings without NUL or lone surrogates. @internal */
export function assertScopes(scopes: unknown, name = 'scopes'): asserts scopes is readonly string[] {
  if (
    !Array.isArray(scopes) ||
    !scopes.every((s) => typeof s === 'string' && s.length > 0 && badCharacters(s, true) === undefined)
  ) {
    throw new InvalidArgumentError(
      `${name} must be an array of non-empty strings without control characters`,
    );
  }
}

function epoch(value: unknown, name: string, nullable: boolean): void {
  if (nullable && value === null) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      `${name} must be ${nullable ? 'null or ' : ''}a non-negative integer (epoch ms)`,
    );
  }
}

/**
 * Check an account record before it is written. Adapters call it so that bad input changes nothing.
 * @internal
 */
export function assertAccountInput(
  record: unknown,
): asserts record is Omit<AccountRecord, 'version' | 'updatedAt'> {
  if (typeof record !== 'object' || record === null) {
    throw new InvalidArgumentError(`account record must be an object (got ${describeType(record)})`);
  }
  const r = record as Record<string, unknown>;
  text(r.id, 'record.id', MAX_ID);
  text(r.provider, 'record.provider', MAX_ID);
  text(r.owner, 'record.owner', MAX_ID);
  text(r.email, 'record.email', 320);
  assertScopes(r.scopes, 'record.scopes');
  if (!ACCOUNT_STATUSES.includes(r.status as AccountStatus)) {
    throw new InvalidArgumentError(`record.status must be one of ${ACCOUNT_STATUSES.join(', ')}`);
  }
  epoch(r.tokenExpiresAt, 'record.tokenExpiresAt', true);
  epoch(r.createdAt, 'record.createdAt', false);
  epoch(r.lastRefreshedAt, 'record.lastRefreshedAt', true);
  if (!Number.isSafeInteger(r.consecutiveFailures) || (r.consecutiveFailures as number) < 0) {
    throw new InvalidArgumentError('record.consecutiveFailures must be a non-negative integer');
  }
  if (r.lastError !== null) {
    const e = r.lastError as Record<string, unknown> | undefined;
    if (typeof e !== 'object' || e === null || typeof e.code !== 'string' || typeof e.message !== 'string') {
      throw new InvalidArgumentError('record.lastError must be null or { code, message, at }');
    }
    epoch(e.at, 'record.lastError.at', false);
  }
  assertMetadata(r.metadata, 'record.metadata');
  if (typeof r.secret !== 'string') throw new InvalidArgumentError('record.secret must be a string');
}

/** @internal */
export function assertExpectedVersion(value: unknown): asserts value is number | null {
  if (value !== null && (!Number.isSafeInteger(value) || (value as number) < 1)) {
    throw new InvalidArgumentError('expectedVersion must be null (create) or a positive integer (update)');
  }
}

/** @internal */
export function assertId(id: unknown, name = 'id'): asserts id is string {
  text(id, name, MAX_ID);
}

/** The longest watch position a store keeps (a Graph delta link with its watermark fits many times). @internal */
export const MAX_WATCH_CURSOR = 16_384;

/** The account id and key of a saved watch position. @internal */
export function assertWatchCursorKey(accountId: unknown, key: unknown): asserts key is string {
  assertId(accountId, 'accountId');
  assertId(key, 'key');
}

/** The arguments of `putWatchCursor`: the account id and key, and a non-empty position of at most 16 KiB. @internal */
export function assertWatchCursor(
  accountId: unknown,
  key: unknown,
  cursor: unknown,
): asserts cursor is string {
  assertWatchCursorKey(accountId, key);
  text(cursor, 'cursor', MAX_WATCH_CURSOR);
}

/** One hour, in milliseconds: the unit of mailbox activity. @internal */
export const ACTIVITY_HOUR_MS = 3_600_000;
/** The most accounts one `getMailboxActivity` reads. @internal */
export const MAX_ACTIVITY_ACCOUNTS = 1000;

function hourStart(value: unknown, name: string): void {
  if (
    typeof value !== 'number' ||
    !Number.isSafeInteger(value) ||
    value < 0 ||
    value % ACTIVITY_HOUR_MS !== 0
  )
    throw new InvalidArgumentError(`${name} must be the start of an hour (epoch ms, a multiple of 3600000)`);
}

function count(value: unknown, name: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new InvalidArgumentError(`${name} must be a non-negative integer`);
}

/** The arguments of `addMailboxActivity` (see `MailboxActivity`). @internal */
export function assertMailboxActivity(
  accountId: unknown,
  activity: unknown,
): asserts activity is MailboxActivity {
  assertId(accountId, 'accountId');
  if (typeof activity !== 'object' || activity === null)
    throw new InvalidArgumentError('activity must be an object');
  const a = activity as Record<string, unknown>;
  hourStart(a.hour, 'activity.hour');
  for (const name of ['processed', 'failed', 'errors', 'handlerMs'] as const)
    count(a[name], `activity.${name}`);
  epoch(a.lastSuccessAt, 'activity.lastSuccessAt', true);
  if (a.lastError !== null) {
    const e = a.lastError as Record<string, unknown> | undefined;
    if (typeof e !== 'object' || e === null)
      throw new InvalidArgumentError('activity.lastError must be null or { code, message, at }');
    text(e.code, 'activity.lastError.code', 100);
    if (
      typeof e.message !== 'string' ||
      e.message.length > 300 ||
      !isWellFormed(e.message) ||
      e.message.includes('\u0000')
    )
      throw new InvalidArgumentError(
        'activity.lastError.message must be a string of at most 300 characters without NUL',
      );
    epoch(e.at, 'activity.lastError.at', false);
  }
}

/** The arguments of `getMailboxActivity`: 1 to 1000 distinct account ids and the start of an hour. @internal */
export function assertMailboxActivityQuery(
  accountIds: unknown,
  sinceHour: unknown,
): asserts accountIds is readonly string[] {
  if (!Array.isArray(accountIds) || accountIds.length === 0 || accountIds.length > MAX_ACTIVITY_ACCOUNTS)
    throw new InvalidArgumentError(
      `accountIds must be an array of 1 to ${MAX_ACTIVITY_ACCOUNTS} account ids`,
    );
  for (const id of accountIds) assertId(id, 'accountIds[]');
  if (new Set(accountIds).size !== accountIds.length)
    throw new InvalidArgumentError('accountIds must be distinct');
  hourStart(sinceHour, 'sinceHour');
}

/** A mailbox identity: provider, owner and email, each a non-empty string. @internal */
export function assertIdentity(
  identity: unknown,
): asserts identity is { readonly provider: string; readonly owner: string; readonly email: string } {
  const i = (identity ?? {}) as Record<string, unknown>;
  assertId(i.provider, 'provider');
  assertId(i.owner, 'owner');
  assertId(i.email, 'email');
}

/**
 * Check the arguments of `putAccount` (the record and `expectedVersion`); returns the expected version.
 * @internal
 */
export function checkPutAccount(record: unknown, options: unknown): number | null {
  assertAccountInput(record);
  const expectedVersion = (options as { readonly expectedVersion?: unknown } | undefined)?.expectedVersion;
  assertExpectedVersion(expectedVersion);
  return expectedVersion;
}

/** @internal */
export function assertTtl(ttlMs: unknown): asserts ttlMs is number {
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new InvalidArgumentError('ttlMs must be a positive integer (milliseconds)');
  }
}

/**
 * Check the arguments of `readAndLease`: the id, the holder, `ttlMs` and `options.dueBefore` (`null` or an
 * epoch-millisecond integer). Returns `dueBefore`.
 * @internal
 */
export function checkReadAndLease(
  id: unknown,
  holder: unknown,
  ttlMs: unknown,
  options: unknown,
): number | null {
  assertId(id);
  assertId(holder, 'holder');
  assertTtl(ttlMs);
  const dueBefore = (options as { dueBefore?: unknown } | null | undefined)?.dueBefore;
  if (dueBefore !== null && (typeof dueBefore !== 'number' || !Number.isSafeInteger(dueBefore))) {
    throw new InvalidArgumentError('options.dueBefore must be null or an epoch-millisecond integer');
  }
  return dueBefore;
}

/**
 * The arguments of `listAccounts`, checked and normalized by `storeInput.normalizeList`: what a store
 * filters and pages by.
 *
 * @example
 * ```ts
 * const q: NormalizedList = storeInput.normalizeList({ status: 'active' }, { limit: 50 });
 * q.statuses; // ['active']
 * q.after; // undefined: the first page
 * ```
 */
export interface NormalizedList {
  /** Only this provider, or any. */
  readonly provider: string | undefined;
  /** Only this owner, or any. */
  readonly owner: string | undefined;
  /** Only these statuses (`filter.status` as a list), or any. */
  readonly statuses: readonly AccountStatus[] | undefined;
  /** Only records whose `tokenExpiresAt` is not `null` and earlier than this (epoch ms), or any. */
  readonly expiresBefore: number | undefined;
  /** Only records whose metadata has each of these keys with exactly this value, or any. */
  readonly metadata: readonly (readonly [key: string, value: MetadataValue])[] | undefined;
  /** The page starts after this account id (the cursor, decoded), or at the first id. */
  readonly after: string | undefined;
  /** At most this many records in the page. */
  readonly limit: number;
}

/** Validate and normalize list arguments. @internal */
export function normalizeList(filter: AccountFilter = {}, options: ListOptions = {}): NormalizedList {
  if (typeof filter !== 'object' || filter === null)
    throw new InvalidArgumentError('filter must be an object');
  const statuses =
    filter.status === undefined ? undefined : Array.isArray(filter.status) ? filter.status : [filter.status];
  for (const s of statuses ?? []) {
    if (!ACCOUNT_STATUSES.includes(s)) {
      throw new InvalidArgumentError(`filter.status must be one of ${ACCOUNT_STATUSES.join(', ')}`);
    }
  }
  if (filter.provider !== undefined) text(filter.provider, 'filter.provider', MAX_ID);
  if (filter.owner !== undefined) text(filter.owner, 'filter.owner', MAX_ID);
  if (filter.expiresBefore !== undefined) epoch(filter.expiresBefore, 'filter.expiresBefore', false);
  const metadata = filter.metadata === undefined ? undefined : metadataFilter(filter.metadata);
  const limit = options.limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new InvalidArgumentError(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  return {
    provider: filter.provider,
    owner: filter.owner,
    statuses,
    expiresBefore: filter.expiresBefore,
    metadata,
    after: options.cursor == null ? undefined : decodeCursor(options.cursor),
    limit,
  };
}

/** The most keys a metadata filter compares. */
const MAX_METADATA_FILTER_KEYS = 16;

function metadataFilter(metadata: unknown): [string, MetadataValue][] {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new InvalidArgumentError('filter.metadata must be an object of keys and values');
  }
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_FILTER_KEYS) {
    throw new InvalidArgumentError(`filter.metadata compares at most ${MAX_METADATA_FILTER_KEYS} keys`);
  }
  for (const [key, value] of entries) {
    text(key, 'filter.metadata key', MAX_ID);
    const scalar =
      value === null ||
      typeof value === 'boolean' ||
      (typeof value === 'string' && value.length <= 1024) ||
      (typeof value === 'number' && Number.isFinite(value));
    if (!scalar) {
      throw new InvalidArgumentError(
        'filter.metadata values must be strings (at most 1024 characters), finite numbers, booleans or null',
      );
    }
  }
  return entries as [string, MetadataValue][];
}

/** Encode the id a page ended on. @internal */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ a: lastId }), 'utf8').toString('base64url');
}

/** @internal */
export function decodeCursor(cursor: unknown): string {
  if (typeof cursor === 'string') {
    try {
      const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { a?: unknown };
      if (typeof parsed.a === 'string' && parsed.a.length > 0) return parsed.a;
    } catch {
      // fall through to the typed error
    }
  }
  throw new InvalidArgumentError('cursor is not a cursor returned by listAccounts');
}

/** Does a record match a normalized filter? @internal */
export function matchesFilter(record: AccountRecord, f: NormalizedList): boolean {
  return (
    (f.provider === undefined || record.provider === f.provider) &&
    (f.owner === undefined || record.owner === f.owner) &&
    (f.statuses === undefined || f.statuses.includes(record.status)) &&
    (f.expiresBefore === undefined ||
      (record.tokenExpiresAt !== null && record.tokenExpiresAt < f.expiresBefore)) &&
    (f.metadata === undefined ||
      f.metadata.every(
        ([key, value]) => Object.hasOwn(record.metadata, key) && record.metadata[key] === value,
      ))
  );
}

/** @internal */
export function assertStateInput(
  key: unknown,
  state: unknown,
  maxPerOwner: unknown,
  maxTotal?: unknown,
): asserts state is StoredState {
  text(key, 'state key', 512);
  if (typeof state !== 'object' || state === null) throw new InvalidArgumentError('state must be an object');
  const s = state as Record<string, unknown>;
  text(s.owner, 'state.owner', MAX_ID);
  text(s.provider, 'state.provider', MAX_ID);
  if (typeof s.payload !== 'string') throw new InvalidArgumentError('state.payload must be a string');
  epoch(s.createdAt, 'state.createdAt', false);
  epoch(s.expiresAt, 'state.expiresAt', false);
  if (!Number.isSafeInteger(maxPerOwner) || (maxPerOwner as number) < 1) {
    throw new InvalidArgumentError('maxPerOwner must be a positive integer');
  }
  if (maxTotal !== undefined && (!Number.isSafeInteger(maxTotal) || (maxTotal as number) < 1)) {
    throw new InvalidArgumentError('maxTotal must be a positive integer');
  }
}

/** The identity key of a mailbox: provider, owner and lower-cased email. @internal */
export function identityKey(r: {
  readonly provider: string;
  readonly owner: string;
  readonly email: string;
}): string {
  return JSON.stringify([r.provider, r.owner, r.email.toLowerCase()]);
}
