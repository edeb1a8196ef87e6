/**
 * `oauth-mailbox/redis`: accounts, leases and pending states in Redis (>= 6.2) through an ioredis client, or a
 * node-redis client wrapped by `nodeRedisClient()`. The driver is yours: this module imports none.
 * @module
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigurationError, MailboxAuthError, StorageError, VersionConflictError } from '../errors.js';
import type * as contract from './account-store.js';
import { KEPT_HOURS } from './mailbox-activity.js';
import type { PutStateOptions, StateStore, StoredState } from './state-store.js';
import { storeInput as input } from './store-input.js';
import { ACTIVITY_HOUR_MS } from './validate.js';

/**
 * What the store uses of a Redis client: the commands of an ioredis client (`Redis` 5 or 6; a `Cluster` works
 * when all keys share a hash tag via `prefix`), which fits as it is. A node-redis client fits through
 * `nodeRedisClient()`.
 *
 * @example
 * ```ts
 * const client: RedisClient = new Redis(process.env.REDIS_URL!);
 * ```
 */
export interface RedisClient {
  /** `GET key`: the value, or `null`. */
  get(key: string): Promise<string | null>;
  /** `SET key value`. */
  set(key: string, value: string): Promise<unknown>;
  /** `GETDEL key`: the value it removed, or `null`. */
  getdel(key: string): Promise<string | null>;
  /** `HGET key field`: the value, or `null`. */
  hget(key: string, field: string): Promise<string | null>;
  /** `EVALSHA sha numKeys ...keys ...args`: the script's reply; rejects with a `NOSCRIPT` message if not cached. */
  evalsha(sha: string, numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
  /** `EVAL script numKeys ...keys ...args`: the script's reply (integers as numbers, nil as `null`). */
  eval(script: string, numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
  /** `ZRANGEBYLEX key min max LIMIT offset count`. */
  zrangebylex(
    key: string,
    min: string,
    max: string,
    limit: 'LIMIT',
    offset: number,
    count: number,
  ): Promise<string[]>;
  /**
   * Optional (ioredis has it; `nodeRedisClient()` provides it): a new connection of the same options, for the
   * subscriber of `watchAccounts` (without it, `watchAccounts` throws a `ConfigurationError`).
   */
  duplicate?(): RedisSubscriber;
  /** Commands sent together; `exec()` resolves to one `[error, reply]` per command, in order. */
  pipeline(): {
    /** Queue `HGET key field`. */
    hget(key: string, field: string): unknown;
    /** Send the queued commands: one `[error, reply]` per command, in order. */
    exec(): Promise<[Error | null, unknown][] | null>;
  };
}

/**
 * What `watchAccounts` uses of the connection {@link RedisClient.duplicate} returns: an ioredis client fits as
 * it is (it connects by itself, reconnects and emits `ready` each time it is connected).
 *
 * @example
 * ```ts
 * const subscriber: RedisSubscriber = new Redis(process.env.REDIS_URL!).duplicate();
 * ```
 */
export interface RedisSubscriber {
  /** `SUBSCRIBE channel` (again after a reconnect: idempotent). */
  subscribe(channel: string): Promise<unknown>;
  /** `message` (channel, message) for each published message. */
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  /** `ready` on each (re)connection, `close` when it is lost, `error`. */
  on(event: 'ready' | 'close' | 'error', listener: (err?: unknown) => void): unknown;
  /** Remove a listener. */
  removeListener?(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Close the connection. */
  disconnect(): unknown;
}

/**
 * Options of {@link redisStore}.
 *
 * @example
 * ```ts
 * redisStore({ client, prefix: '{mail}:' }); // one hash slot for Redis Cluster
 * ```
 */
export interface RedisStoreOptions {
  /** An ioredis client, or a node-redis client wrapped by `nodeRedisClient()`. */
  readonly client: RedisClient;
  /**
   * Prefix of every key. For Redis Cluster use a hash tag, such as `{oauth-mailbox}:`.
   * @default 'oauth-mailbox:'
   */
  readonly prefix?: string;
  /** The clock, in epoch milliseconds (only for reported lease expiry and state TTLs; Redis expires keys itself). @default Date.now */
  readonly now?: () => number;
}

/**
 * The version of the Redis key layout: 2 adds the indexes by status, by access-token expiry (active accounts),
 * by last error and of failing accounts, so that an expiry walk reads only the due records and `countAccounts`
 * reads no record at all. A store of version 1 (no `<prefix>schema` key, accounts present) is indexed in place
 * by `migrate()`, which the store also runs by itself before the first indexed read.
 *
 * @example
 * ```ts
 * import { REDIS_SCHEMA_VERSION, redisStore } from 'oauth-mailbox/redis';
 * if ((await redisStore({ client }).migrate()) !== REDIS_SCHEMA_VERSION) throw new Error('unexpected layout');
 * ```
 */
export const REDIS_SCHEMA_VERSION = 2;

/** The index keys every writing script gets, in this order, after its own keys. */
const INDEX_NAMES = [
  'status:active',
  'status:reauth_required',
  'status:error',
  'status:revoked',
  'expiry',
  'errors',
  'failing',
] as const;

// Index maintenance shared by the writing scripts. `base` is the position of the first index key in KEYS
// (INDEX_NAMES order). A record is unindexed everywhere, then indexed by its fields: idempotent, and
// independent of what the record was before.
const INDEXING = `
local STATUS = { active = 0, reauth_required = 1, error = 2, revoked = 3 }
local function unindex(base, id)
  for k = base, base + 5 do redis.call('ZREM', KEYS[k], id) end
  redis.call('SREM', KEYS[base + 6], id)
end
local function index(base, id, status, expires, errorAt, failing)
  redis.call('ZADD', KEYS[base + STATUS[status]], 0, id)
  if status == 'active' and expires ~= '' then redis.call('ZADD', KEYS[base + 4], expires, id) end
  if errorAt ~= '' then redis.call('ZADD', KEYS[base + 5], errorAt, id) end
  if failing == '1' then redis.call('SADD', KEYS[base + 6], id) end
end
`;

// KEYS[1] account hash, KEYS[2] new identity key, KEYS[3] old identity key, KEYS[4] ids zset, KEYS[5] schema,
// KEYS[6..12] indexes. ARGV[1] id, ARGV[2] expected version ('' = create), ARGV[3] record JSON, ARGV[4] new
// version, ARGV[5] status, ARGV[6] token expiry ('' = none), ARGV[7] last error time ('' = none),
// ARGV[8] failing ('1'/'0'), ARGV[9] schema version, ARGV[10] change channel, ARGV[11] lease holder to release
// ('' = none; KEYS[13] the lease), ARGV[12] '1': the caller did not read the record (then ARGV[13..16], the
// provider, owner, email and creation time of the record written, must be the stored ones, else 'reread')
const PUT = `${INDEXING}
local current = redis.call('HGET', KEYS[1], 'version')
if ARGV[2] == '' then
  if current then return {'conflict', current} end
else
  if not current then return {'conflict', ''} end
  if current ~= ARGV[2] then return {'conflict', current} end
  if ARGV[12] == '1' then
    local old = cjson.decode(redis.call('HGET', KEYS[1], 'json'))
    if old.provider ~= ARGV[13] or old.owner ~= ARGV[14] or old.email ~= ARGV[15] or old.createdAt ~= tonumber(ARGV[16]) then
      return {'reread', ''}
    end
  end
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {'identity', ''} end
if KEYS[3] ~= KEYS[2] then redis.call('DEL', KEYS[3]) end
-- An empty store has nothing to index: it is of the current layout from its first record.
if redis.call('ZCARD', KEYS[4]) == 0 and not redis.call('GET', KEYS[5]) then redis.call('SET', KEYS[5], ARGV[9]) end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'version', ARGV[4], 'json', ARGV[3])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
unindex(6, ARGV[1])
index(6, ARGV[1], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
if ARGV[11] ~= '' and redis.call('GET', KEYS[13]) == ARGV[11] then redis.call('DEL', KEYS[13]) end
redis.call('PUBLISH', ARGV[10], '{"kind":"written","id":' .. cjson.encode(ARGV[1]) .. ',"version":' .. ARGV[4] .. ',"record":' .. ARGV[3] .. '}')
return {'ok', ARGV[4]}
`;

// KEYS[1] account hash, KEYS[2] ids zset, KEYS[3] lease, KEYS[4..10] indexes, KEYS[11] watch positions,
// KEYS[12] mailbox activity; ARGV[1] id, ARGV[2] expected version ('' = any), ARGV[3] change channel
const DELETE = `${INDEXING}
local current = redis.call('HGET', KEYS[1], 'version')
if ARGV[2] ~= '' and current ~= ARGV[2] then return {'conflict', current or ''} end
if not current then return {'missing', ''} end
local json = redis.call('HGET', KEYS[1], 'json')
redis.call('DEL', KEYS[1], KEYS[3], KEYS[11], KEYS[12])
redis.call('ZREM', KEYS[2], ARGV[1])
unindex(4, ARGV[1])
redis.call('PUBLISH', ARGV[3], '{"kind":"deleted","id":' .. cjson.encode(ARGV[1]) .. '}')
return {'ok', json}
`;

// Index records written by a version-1 store. KEYS[1..7] indexes, KEYS[8..] account hashes; ARGV the ids of
// those hashes, in the same order.
const BACKFILL = `${INDEXING}
local function field(value)
  if value == nil or value == cjson.null then return '' end
  return value
end
for n, id in ipairs(ARGV) do
  local json = redis.call('HGET', KEYS[7 + n], 'json')
  if json then
    local r = cjson.decode(json)
    local errorAt = ''
    if r.lastError ~= nil and r.lastError ~= cjson.null then errorAt = field(r.lastError.at) end
    local failing = '0'
    if tonumber(r.consecutiveFailures) ~= nil and tonumber(r.consecutiveFailures) > 0 then failing = '1' end
    unindex(1, id)
    index(1, id, r.status, field(r.tokenExpiresAt), errorAt, failing)
  end
end
return #ARGV
`;

// One page of ids. KEYS[1] a lex index (all ids, or one status's), KEYS[2] the expiry index. ARGV[1] after
// ('' = from the start), ARGV[2] ids wanted, ARGV[3] expiresBefore ('' = no expiry bound: a lex walk),
// ARGV[4] most ids looked at, ARGV[5] due count up to which the expiry index is read by score.
// Returns { done (1: nothing after these), last id looked at ('' = none), ids... }.
const PAGE = `
-- Byte order, as ZRANGEBYLEX compares (Lua's own < on strings follows the server's locale).
local function less(a, b)
  for k = 1, math.min(#a, #b) do
    local x, y = string.byte(a, k), string.byte(b, k)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local after, want, before, maxScan, small = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local from = '-'
if after ~= '' then from = '(' .. after end
local out = {}
if before == '' then
  local ids = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, want)
  local done = 0
  if #ids < want then done = 1 end
  local last = ''
  if #ids > 0 then last = ids[#ids] end
  out = { done, last }
  for _, id in ipairs(ids) do out[#out + 1] = id end
  return out
end
local due = redis.call('ZCOUNT', KEYS[2], '-inf', '(' .. before)
if due == 0 then return { 1, '' } end
if due <= small then
  -- Few due: read them by score, keep those after the cursor, in id order.
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. before)
  local kept = {}
  for _, id in ipairs(ids) do if after == '' or less(after, id) then kept[#kept + 1] = id end end
  table.sort(kept, less)
  local done = 1
  if #kept > want then done = 0 end
  local n = math.min(#kept, want)
  local last = ''
  if n > 0 then last = kept[n] end
  out = { done, last }
  for k = 1, n do out[#out + 1] = kept[k] end
  return out
end
-- Many due: walk the lex index, keeping the ids whose expiry is before the bound.
local ids = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, maxScan)
local bound = tonumber(before)
local last = ''
local kept = 0
out = { 0, '' }
for _, id in ipairs(ids) do
  last = id
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score and tonumber(score) < bound then
    out[#out + 1] = id
    kept = kept + 1
    if kept == want then break end
  end
end
if kept < want and #ids < maxScan then out[1] = 1 end
out[2] = last
return out
`;

// KEYS[1] ids, KEYS[2..8] indexes; ARGV[1] now, ARGV[2] expiringBefore, ARGV[3] failedSince
const COUNT = `
return {
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5]),
  redis.call('ZCOUNT', KEYS[6], '-inf', ARGV[1]),
  redis.call('ZCOUNT', KEYS[6], '(' .. ARGV[1], '(' .. ARGV[2]),
  redis.call('ZCOUNT', KEYS[7], ARGV[3], '+inf'),
  redis.call('SCARD', KEYS[8])
}
`;

// KEYS[1] account hash, KEYS[2] its watch positions (a hash by key); ARGV[1] key, ARGV[2] position
const PUT_CURSOR = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`;

// Mailbox activity: one hash per account, fields '<hour>:p|f|e|h' (processed, failed, errors, handler ms),
// 'last_success', 'last_error' (JSON) and 'last_error_at'.
// KEYS[1] account hash, KEYS[2] activity hash; ARGV[1] hour, ARGV[2..5] processed, failed, errors, handler ms,
// ARGV[6] last success ('' none), ARGV[7] last error JSON ('' none), ARGV[8] its time, ARGV[9] oldest hour kept
const ADD_ACTIVITY = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local kinds = {'p', 'f', 'e', 'h'}
for i, kind in ipairs(kinds) do
  if ARGV[i + 1] ~= '0' then redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':' .. kind, ARGV[i + 1]) end
end
if ARGV[6] ~= '' then
  local kept = redis.call('HGET', KEYS[2], 'last_success')
  if not kept or kept == '' or tonumber(ARGV[6]) > tonumber(kept) then
    redis.call('HSET', KEYS[2], 'last_success', ARGV[6])
  end
end
if ARGV[7] ~= '' then
  local kept = redis.call('HGET', KEYS[2], 'last_error_at')
  if not kept or tonumber(ARGV[8]) > tonumber(kept) then
    redis.call('HSET', KEYS[2], 'last_error', ARGV[7], 'last_error_at', ARGV[8])
  end
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('HSET', KEYS[2], 'last_success', '') end
local oldest = tonumber(ARGV[9])
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  local hour = string.match(field, '^(%d+):')
  if hour and tonumber(hour) < oldest then redis.call('HDEL', KEYS[2], field) end
end
return 1
`;

// KEYS the activity hashes; ARGV[1] the first hour summed. One entry per hash that exists:
// { index (1-based), processed, failed, errors, handler ms, last success or '', last error JSON or '' }
const GET_ACTIVITY = `
local since = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  if #flat > 0 then
    local sums = {p = 0, f = 0, e = 0, h = 0}
    local success, failure = '', ''
    for j = 1, #flat, 2 do
      local hour, kind = string.match(flat[j], '^(%d+):(%a)$')
      if hour then
        if tonumber(hour) >= since then sums[kind] = sums[kind] + tonumber(flat[j + 1]) end
      elseif flat[j] == 'last_success' then success = flat[j + 1]
      elseif flat[j] == 'last_error' then failure = flat[j + 1] end
    end
    out[#out + 1] = {i, string.format('%d', sums.p), string.format('%d', sums.f), string.format('%d', sums.e),
      string.format('%d', sums.h), success, failure}
  end
end
return out
`;

// KEYS[1] lease; ARGV[1] holder, ARGV[2] ttl ms
const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

// KEYS[1] lease; ARGV[1] holder, ARGV[2] change channel, ARGV[3] the account id
const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '{"kind":"released","id":' .. cjson.encode(ARGV[3]) .. '}')
  return 1
end
return 0
`;

// KEYS[1] account hash, KEYS[2] lease; ARGV[1] holder, ARGV[2] ttl ms, ARGV[3] due before ('' = always).
// Returns { record JSON or false, 'leased' | 'busy' | 'none' }.
const READ_AND_LEASE = `
local json = redis.call('HGET', KEYS[1], 'json')
if not json then return { false, 'none' } end
if ARGV[3] ~= '' then
  local expires = cjson.decode(json).tokenExpiresAt
  if type(expires) ~= 'number' or expires > tonumber(ARGV[3]) then return { json, 'none' } end
end
local current = redis.call('GET', KEYS[2])
if current and current ~= ARGV[1] then return { json, 'busy' } end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return { json, 'leased' }
`;

// KEYS[1] identity key; ARGV[1] the account id (only removed if it still points at it)
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

// KEYS[1] state key, KEYS[2] owner zset, KEYS[3] sequence, KEYS[4] every state (by expiry); ARGV[1] state
// JSON, ARGV[2] ttl ms, ARGV[3] max per owner, ARGV[4] state key prefix, ARGV[5] state key suffix (the
// caller's key), ARGV[6] expiry (epoch ms), ARGV[7] now, ARGV[8] max in all (0: no bound)
const PUT_STATE = `
-- Drop the oldest members of a sorted set beyond max: their states, and their place in the global index.
local function keep(set, max)
  local over = redis.call('ZCARD', set) - max
  if over <= 0 then return end
  for _, member in ipairs(redis.call('ZRANGE', set, 0, over - 1)) do
    redis.call('DEL', ARGV[4] .. member)
    redis.call('ZREM', set, member)
    redis.call('ZREM', KEYS[4], member)
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], seq, ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', ARGV[4] .. member) == 0 then redis.call('ZREM', KEYS[2], member) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[7])
keep(KEYS[2], tonumber(ARGV[3]))
if tonumber(ARGV[8]) > 0 then keep(KEYS[4], tonumber(ARGV[8])) end
for _, set in ipairs({ KEYS[2], KEYS[4] }) do
  if redis.call('PTTL', set) < tonumber(ARGV[2]) then redis.call('PEXPIRE', set, ARGV[2]) end
end
return 1
`;

const TAKE_STATE = `
local value = redis.call('GETDEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return value
`;

/** Most ids one page script looks at (a bound on how long it holds Redis). */
const SCAN_PER_CALL = 5000;
/** Up to this many due accounts, an expiry walk reads the expiry index by score instead of walking ids. */
const DUE_BY_SCORE = 2000;

const sha = (script: string) => createHash('sha1').update(script).digest('hex');

/**
 * The Redis store.
 * Construct with {@link redisStore}.
 *
 * @example
 * ```ts
 * const store: RedisStore = redisStore({ client: new Redis(url) });
 * ```
 */
export class RedisStore implements contract.AccountStore, StateStore {
  readonly #client: RedisClient;
  readonly #p: string;
  readonly #now: () => number;
  /** Settles once the key layout is of {@link REDIS_SCHEMA_VERSION} (cleared on failure, to be retried). */
  #ready: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    if (typeof options?.client?.evalsha !== 'function' || typeof options.client.hget !== 'function') {
      throw new ConfigurationError(
        'redisStore: client must be an ioredis client, or a node-redis client wrapped by nodeRedisClient()',
      );
    }
    const prefix = options.prefix ?? 'oauth-mailbox:';
    if (typeof prefix !== 'string' || prefix.length > 100)
      throw new ConfigurationError('redisStore: prefix must be a string of at most 100 characters');
    this.#client = options.client;
    this.#p = prefix;
    this.#now = options.now ?? Date.now;
  }

  #account(id: string) {
    return `${this.#p}account:${id}`;
  }
  #identity(r: { provider: string; owner: string; email: string }) {
    return `${this.#p}identity:${input.identityKey(r)}`;
  }
  #lease(id: string) {
    return `${this.#p}lease:${id}`;
  }
  #cursors(id: string) {
    return `${this.#p}cursors:${id}`;
  }
  #activity(id: string) {
    return `${this.#p}activity:${id}`;
  }
  get #ids() {
    return `${this.#p}ids`;
  }
  get #channel() {
    return `${this.#p}changes`;
  }
  get #schemaKey() {
    return `${this.#p}schema`;
  }
  get #indexes(): string[] {
    return INDEX_NAMES.map((name) => `${this.#p}${name}`);
  }

  async #script(
    operation: string,
    script: string,
    keys: string[],
    args: (string | number)[],
  ): Promise<unknown> {
    return this.#run(operation, async () => {
      try {
        return await this.#client.evalsha(sha(script), keys.length, ...keys, ...args);
      } catch (err) {
        if (!String((err as Error)?.message).includes('NOSCRIPT')) throw err;
        return this.#client.eval(script, keys.length, ...keys, ...args);
      }
    });
  }

  async #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      if (cause instanceof MailboxAuthError) throw cause;
      throw new StorageError(`The Redis store failed (${operation})`, { operation, cause });
    }
  }

  async getAccount(id: string): Promise<contract.AccountRecord | null> {
    input.assertId(id);
    const json = await this.#run('getAccount', () => this.#client.hget(this.#account(id), 'json'));
    return json === null ? null : (JSON.parse(json) as contract.AccountRecord);
  }

  async findAccountByIdentity(identity: contract.AccountIdentity): Promise<contract.AccountRecord | null> {
    input.assertIdentity(identity);
    const id = await this.#run('findAccountByIdentity', () => this.#client.get(this.#identity(identity)));
    return id === null ? null : this.getAccount(id);
  }

  async putAccount(record: contract.AccountRecordInput, options: contract.PutAccountOptions) {
    const expectedVersion = input.checkPutAccount(record, options);
    return this.#write('putAccount', record, expectedVersion, '');
  }

  /**
   * `putAccount` and the release of `holder`'s lease in one script (the lease is deleted only with the write).
   * One round trip when the record keeps its provider, owner, email and creation time (a token refresh); else
   * the record is read first, as `putAccount` does.
   */
  async putAccountAndRelease(
    record: contract.AccountRecordInput,
    options: contract.PutAccountOptions & { readonly holder: string },
  ): Promise<contract.AccountRecord> {
    const expectedVersion = input.checkPutAccount(record, options);
    input.assertId(options.holder, 'holder');
    return this.#write('putAccountAndRelease', record, expectedVersion, options.holder);
  }

  async #write(
    operation: string,
    record: contract.AccountRecordInput,
    expectedVersion: number | null,
    holder: string,
    read = holder === '',
  ): Promise<contract.AccountRecord> {
    const existing = expectedVersion === null || !read ? null : await this.getAccount(record.id);
    if (read && expectedVersion !== null && existing?.version !== expectedVersion) {
      throw new VersionConflictError('The account changed since it was read (or no longer exists)', {
        accountId: record.id,
        expectedVersion,
        actualVersion: existing?.version ?? null,
      });
    }
    const version = (expectedVersion ?? 0) + 1;
    const stored: contract.AccountRecord = {
      ...structuredClone(record),
      createdAt: existing?.createdAt ?? record.createdAt,
      version,
      updatedAt: this.#now(),
    };
    const newIdentity = this.#identity(record);
    const [outcome, detail] = (await this.#script(
      operation,
      PUT,
      [
        this.#account(record.id),
        newIdentity,
        existing === null ? newIdentity : this.#identity(existing),
        this.#ids,
        this.#schemaKey,
        ...this.#indexes,
        this.#lease(record.id),
      ],
      [
        record.id,
        expectedVersion === null ? '' : String(expectedVersion),
        JSON.stringify(stored),
        String(version),
        stored.status,
        stored.tokenExpiresAt === null ? '' : stored.tokenExpiresAt,
        stored.lastError === null ? '' : stored.lastError.at,
        stored.consecutiveFailures > 0 ? '1' : '0',
        REDIS_SCHEMA_VERSION,
        this.#channel,
        holder,
        read || expectedVersion === null ? '0' : '1',
        record.provider,
        record.owner,
        record.email,
        record.createdAt,
      ],
    )) as [string, string];
    if (outcome === 'ok') return stored;
    if (outcome === 'reread') return this.#write(operation, record, expectedVersion, holder, true);
    throw new VersionConflictError(
      outcome === 'identity'
        ? 'Another account already holds this provider, owner and email'
        : expectedVersion === null
          ? 'An account with this id already exists'
          : 'The account changed since it was read (or no longer exists)',
      { accountId: record.id, expectedVersion, actualVersion: detail === '' ? null : Number(detail) },
    );
  }

  async deleteAccount(id: string, options: { readonly expectedVersion?: number } = {}): Promise<boolean> {
    input.assertId(id);
    const [outcome, detail] = (await this.#script(
      'deleteAccount',
      DELETE,
      [
        this.#account(id),
        this.#ids,
        this.#lease(id),
        ...this.#indexes,
        this.#cursors(id),
        this.#activity(id),
      ],
      [id, options.expectedVersion === undefined ? '' : String(options.expectedVersion), this.#channel],
    )) as [string, string];
    if (outcome === 'conflict') {
      throw new VersionConflictError(
        detail === '' ? 'The account no longer exists' : 'The account changed since it was read',
        {
          accountId: id,
          expectedVersion: options.expectedVersion,
          actualVersion: detail === '' ? null : Number(detail),
        },
      );
    }
    if (outcome === 'missing') return false;
    // The identity key is only removed if it still points at this account.
    const record = JSON.parse(detail) as contract.AccountRecord;
    await this.#script('deleteAccount', RELEASE, [this.#identity(record)], [id]);
    return true;
  }

  async getWatchCursor(accountId: string, key: string): Promise<string | null> {
    input.assertWatchCursorKey(accountId, key);
    return this.#run('getWatchCursor', () => this.#client.hget(this.#cursors(accountId), key));
  }

  async putWatchCursor(accountId: string, key: string, cursor: string): Promise<boolean> {
    input.assertWatchCursor(accountId, key, cursor);
    const saved = await this.#script(
      'putWatchCursor',
      PUT_CURSOR,
      [this.#account(accountId), this.#cursors(accountId)],
      [key, cursor],
    );
    return Number(saved) === 1;
  }

  async addMailboxActivity(accountId: string, activity: contract.MailboxActivity): Promise<boolean> {
    input.assertMailboxActivity(accountId, activity);
    const a = activity;
    const added = await this.#script(
      'addMailboxActivity',
      ADD_ACTIVITY,
      [this.#account(accountId), this.#activity(accountId)],
      [
        a.hour,
        a.processed,
        a.failed,
        a.errors,
        a.handlerMs,
        a.lastSuccessAt === null ? '' : a.lastSuccessAt,
        a.lastError === null ? '' : JSON.stringify(a.lastError),
        a.lastError === null ? '' : a.lastError.at,
        a.hour - KEPT_HOURS * ACTIVITY_HOUR_MS,
      ],
    );
    return Number(added) === 1;
  }

  async getMailboxActivity(
    accountIds: readonly string[],
    sinceHour: number,
  ): Promise<contract.MailboxActivityTotals[]> {
    input.assertMailboxActivityQuery(accountIds, sinceHour);
    const rows = (await this.#script(
      'getMailboxActivity',
      GET_ACTIVITY,
      accountIds.map((id) => this.#activity(id)),
      [sinceHour],
    )) as [number, string, string, string, string, string, string][];
    return rows.map(([index, processed, failed, errors, handlerMs, success, failure]) => {
      const lastError = failure === '' ? null : (JSON.parse(failure) as contract.MailboxActivityError);
      return {
        accountId: accountIds[Number(index) - 1] as string,
        processed: Number(processed),
        failed: Number(failed),
        errors: Number(errors),
        handlerMs: Number(handlerMs),
        lastSuccessAt: success === '' ? null : Number(success),
        lastError:
          lastError === null ? null : { code: lastError.code, message: lastError.message, at: lastError.at },
      };
    });
  }

  async listAccounts(
    filter?: contract.AccountFilter,
    options?: contract.ListOptions,
  ): Promise<contract.AccountPage> {
    const f = input.normalizeList(filter, options);
    const status = f.statuses?.length === 1 ? f.statuses[0] : undefined;
    // The expiry index holds active accounts only: it serves a walk of active accounts by expiry.
    const due = status === 'active' && f.expiresBefore !== undefined;
    if (status !== undefined || due) await this.#ensureIndexed();
    const index = status === undefined ? this.#ids : `${this.#p}status:${status}`;
    const records: contract.AccountRecord[] = [];
    let after = f.after;
    const want = Math.max(f.limit + 1, 200);
    for (;;) {
      const [done, last, ...ids] = (await this.#script(
        'listAccounts',
        PAGE,
        [index, `${this.#p}expiry`],
        [after ?? '', want, due ? (f.expiresBefore as number) : '', SCAN_PER_CALL, DUE_BY_SCORE],
      )) as [number, string, ...string[]];
      if (ids.length > 0) {
        const pipeline = this.#client.pipeline();
        for (const id of ids) pipeline.hget(this.#account(id), 'json');
        const results = (await this.#run('listAccounts', () => pipeline.exec())) ?? [];
        for (const i of ids.keys()) {
          const [err, json] = results[i] ?? [new Error('missing pipeline result'), null];
          if (err)
            throw new StorageError('The Redis store failed (listAccounts)', {
              operation: 'listAccounts',
              cause: err,
            });
          if (typeof json !== 'string') continue; // deleted between the two reads
          const record = JSON.parse(json) as contract.AccountRecord;
          if (!input.matchesFilter(record, f)) continue;
          if (records.length === f.limit)
            return {
              records,
              nextCursor: input.encodeCursor((records[records.length - 1] as contract.AccountRecord).id),
            };
          records.push(record);
        }
      }
      if (Number(done) === 1 || last === '') return { records, nextCursor: null };
      after = last;
    }
  }

  /**
   * The figures of `health()` from the indexes (set sizes and score ranges): no record is read, whatever
   * the number of accounts.
   */
  async countAccounts(query: contract.AccountCountQuery): Promise<contract.AccountCounts> {
    const { now, expiringBefore, failedSince } = input.checkCountQuery(query);
    await this.#ensureIndexed();
    const figures = (
      (await this.#script(
        'countAccounts',
        COUNT,
        [this.#ids, ...this.#indexes],
        [now, expiringBefore, failedSince],
      )) as number[]
    ).map(Number) as [number, number, number, number, number, number, number, number, number];
    const [total, active, reauth, error, revoked, expired, expiring, failed, failing] = figures;
    return {
      total,
      byStatus: { active, reauth_required: reauth, error, revoked },
      activeExpired: expired,
      activeExpiring: expiring,
      failedSince: failed,
      failing,
    };
  }

  /**
   * Bring the key layout to {@link REDIS_SCHEMA_VERSION}: index every account written by a version-1 store
   * (200 per script call, so Redis is never blocked for long), then record the version. Idempotent, and safe
   * from several processes at once and while accounts are written. The store runs it by itself before its
   * first indexed read; call it at start-up to take that cost there, and again once the last process of an
   * older version has stopped (records it wrote after the first run are not indexed yet). Returns the version.
   */
  async migrate(): Promise<number> {
    let after: string | undefined;
    for (;;) {
      const ids = await this.#run('migrate', () =>
        this.#client.zrangebylex(this.#ids, after === undefined ? '-' : `(${after}`, '+', 'LIMIT', 0, 200),
      );
      if (ids.length > 0) {
        await this.#script(
          'migrate',
          BACKFILL,
          [...this.#indexes, ...ids.map((id) => this.#account(id))],
          ids,
        );
      }
      if (ids.length < 200) break;
      after = ids[ids.length - 1];
    }
    await this.#run('migrate', () => this.#client.set(this.#schemaKey, String(REDIS_SCHEMA_VERSION)));
    return REDIS_SCHEMA_VERSION;
  }

  /** Once per store: migrate a store of an older layout before reading an index. */
  #ensureIndexed(): Promise<void> {
    this.#ready ??= (async () => {
      const version = await this.#run('migrate', () => this.#client.get(this.#schemaKey));
      if (version !== null && Number(version) >= REDIS_SCHEMA_VERSION) return;
      await this.migrate();
    })().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async acquireLease(id: string, holder: string, ttlMs: number): Promise<contract.Lease | null> {
    input.assertId(id);
    input.assertId(holder, 'holder');
    input.assertTtl(ttlMs);
    const now = this.#now();
    const ok = await this.#script('acquireLease', ACQUIRE, [this.#lease(id)], [holder, ttlMs]);
    return Number(ok) === 1 ? { holder, expiresAt: now + ttlMs } : null;
  }

  async releaseLease(id: string, holder: string): Promise<boolean> {
    input.assertId(id);
    input.assertId(holder, 'holder');
    return (
      Number(
        await this.#script('releaseLease', RELEASE_LEASE, [this.#lease(id)], [holder, this.#channel, id]),
      ) === 1
    );
  }

  /** The record and, when due, the lease, in one script. */
  async readAndLease(
    id: string,
    holder: string,
    ttlMs: number,
    options: contract.ReadAndLeaseOptions,
  ): Promise<contract.LeasedRead> {
    const dueBefore = input.checkReadAndLease(id, holder, ttlMs, options);
    const now = this.#now();
    const [json, outcome] = (await this.#script(
      'readAndLease',
      READ_AND_LEASE,
      [this.#account(id), this.#lease(id)],
      [holder, ttlMs, dueBefore === null ? '' : dueBefore],
    )) as [string | null | false, string];
    if (typeof json !== 'string') return { record: null, lease: null, busy: false };
    return {
      record: JSON.parse(json) as contract.AccountRecord,
      lease: outcome === 'leased' ? { holder, expiresAt: now + ttlMs } : null,
      busy: outcome === 'busy',
    };
  }

  /**
   * Every committed change of this prefix's accounts, from every process: each writing script publishes on
   * `<prefix>changes`, and the watch subscribes on a connection of its own (`client.duplicate()`), which the
   * driver reconnects and subscribes again (then `reset` is reported). Throws a `ConfigurationError` on a
   * client without `duplicate()`.
   */
  async watchAccounts(listener: (change: contract.AccountChange) => void): Promise<contract.AccountWatch> {
    if (typeof listener !== 'function')
      throw new ConfigurationError('watchAccounts: listener must be a function');
    const client = this.#client;
    if (typeof client.duplicate !== 'function') {
      throw new ConfigurationError(
        'redisStore: watchAccounts needs a client with duplicate() (ioredis, or nodeRedisClient() of node-redis)',
      );
    }
    const channel = this.#channel;
    const report = (change: contract.AccountChange) => {
      try {
        listener(change);
      } catch {
        // The listener's own failure; the watch goes on.
      }
    };
    const subscriber = (client.duplicate as () => RedisSubscriber)();
    let subscribed = false;
    let lost = false;
    let closed = false;
    const onMessage = (from: string, message: string) => {
      if (from !== channel || closed) return;
      const change = parseChange(message);
      if (change !== null) report(change);
    };
    const onClose = () => {
      if (subscribed) lost = true;
    };
    const onReady = () => {
      if (!lost || closed) return;
      lost = false;
      subscriber.subscribe(channel).then(
        () => {
          if (!closed) report({ kind: 'reset', id: '' });
        },
        () => {
          lost = true; // tried again on the next ready
        },
      );
    };
    const onError = () => {
      // Reported as a lost connection (close, then reset once ready); never an uncaught 'error' event.
    };
    subscriber.on('message', onMessage);
    subscriber.on('close', onClose);
    subscriber.on('ready', onReady);
    subscriber.on('error', onError);
    const stop = () => {
      closed = true;
      for (const [event, fn] of [
        ['message', onMessage],
        ['close', onClose],
        ['ready', onReady],
      ] as const) {
        subscriber.removeListener?.(event, fn as (...args: unknown[]) => void);
      }
      try {
        subscriber.disconnect();
      } catch {
        // already gone
      }
    };
    try {
      await this.#run('watchAccounts', () => subscriber.subscribe(channel));
    } catch (err) {
      stop();
      throw err;
    }
    subscribed = true;
    return {
      close: async () => {
        if (!closed) stop();
      },
    };
  }

  async putState(key: string, state: StoredState, options: PutStateOptions): Promise<void> {
    input.assertState(key, state, options?.maxPerOwner, options?.maxTotal);
    const now = this.#now();
    const ttl = state.expiresAt - now;
    if (ttl <= 0) return; // already expired: nothing to keep
    await this.#script(
      'putState',
      PUT_STATE,
      [
        `${this.#p}state:${key}`,
        `${this.#p}owner-states:${state.owner}`,
        `${this.#p}state-seq`,
        `${this.#p}all-states`,
      ],
      [
        JSON.stringify(state),
        ttl,
        options.maxPerOwner,
        `${this.#p}state:`,
        key,
        state.expiresAt,
        now,
        options.maxTotal ?? 0,
      ],
    );
  }

  async takeState(key: string): Promise<StoredState | null> {
    input.assertId(key, 'state key');
    const json = (await this.#script(
      'takeState',
      TAKE_STATE,
      [`${this.#p}state:${key}`, `${this.#p}all-states`],
      [key],
    )) as string | null;
    if (json === null) return null;
    const state = JSON.parse(json) as StoredState;
    return state.expiresAt > this.#now() ? state : null;
  }

  /** @internal */
  [inspect.custom](): string {
    return `RedisStore { prefix: '${this.#p}' }`;
  }
}

/** A published message as a change; `null` when it is not one of ours. */
function parseChange(message: string): contract.AccountChange | null {
  let parsed: { kind?: unknown; id?: unknown; version?: unknown; record?: unknown };
  try {
    parsed = JSON.parse(message) as typeof parsed;
  } catch {
    return null;
  }
  const { kind, id, version, record } = parsed ?? {};
  if (typeof id !== 'string') return null;
  if (kind === 'released' || kind === 'deleted') return { kind, id };
  if (kind !== 'written') return null;
  return typeof record === 'object' && record !== null
    ? { kind, id, version: Number(version), record: record as contract.AccountRecord }
    : { kind, id, version: Number(version) };
}

/**
 * Accounts, refresh leases (atomic Lua scripts, expiring with `PX`) and single-use pending states
 * (`SET PX` + `GETDEL`) in Redis 6.2+. Records are JSON with a version field checked atomically; listing walks
 * a lexicographic sorted set of ids, so cursors are stable while accounts change.
 *
 * @example
 * ```ts
 * import Redis from 'ioredis';
 * import { redisStore } from 'oauth-mailbox/redis';
 * const store = redisStore({ client: new Redis(process.env.REDIS_URL!), prefix: 'myapp:mail:' });
 * ```
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}
