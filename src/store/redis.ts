/**
 * `oauth-mailbox/redis`: accounts, leases and pending states in Redis (>= 6.2) through an ioredis client.
 * The driver is yours: this module imports it by type only.
 * @module
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import type { Redis } from 'ioredis';
import { ConfigurationError, MailboxAuthError, StorageError, VersionConflictError } from '../errors.js';
import type * as contract from './account-store.js';
import type { PutStateOptions, StateStore, StoredState } from './state-store.js';
import { storeInput as input } from './store-input.js';

/**
 * What the store uses of an ioredis client (`Redis`; a `Cluster` works when all keys share a hash tag via `prefix`).
 *
 * @example
 * ```ts
 * const client: RedisClient = new Redis(process.env.REDIS_URL!);
 * ```
 */
export type RedisClient = Pick<
  Redis,
  'get' | 'getdel' | 'hget' | 'evalsha' | 'eval' | 'zrangebylex' | 'pipeline'
>;

/**
 * Options of {@link redisStore}.
 *
 * @example
 * ```ts
 * redisStore({ client, prefix: '{mail}:' }); // one hash slot for Redis Cluster
 * ```
 */
export interface RedisStoreOptions {
  /** An ioredis client. */
  readonly client: RedisClient;
  /**
   * Prefix of every key. For Redis Cluster use a hash tag, such as `{oauth-mailbox}:`.
   * @default 'oauth-mailbox:'
   */
  readonly prefix?: string;
  /** The clock, in epoch milliseconds (only for reported lease expiry and state TTLs; Redis expires keys itself). @default Date.now */
  readonly now?: () => number;
}

// KEYS[1] account hash, KEYS[2] new identity key, KEYS[3] old identity key, KEYS[4] ids zset
// ARGV[1] id, ARGV[2] expected version ('' = create), ARGV[3] record JSON, ARGV[4] new version
const PUT = `
local current = redis.call('HGET', KEYS[1], 'version')
if ARGV[2] == '' then
  if current then return {'conflict', current} end
else
  if not current then return {'conflict', ''} end
  if current ~= ARGV[2] then return {'conflict', current} end
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {'identity', ''} end
if KEYS[3] ~= KEYS[2] then redis.call('DEL', KEYS[3]) end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'version', ARGV[4], 'json', ARGV[3])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
return {'ok', ARGV[4]}
`;

// KEYS[1] account hash, KEYS[2] ids zset, KEYS[3] lease; ARGV[1] id, ARGV[2] expected version ('' = any)
const DELETE = `
local current = redis.call('HGET', KEYS[1], 'version')
if ARGV[2] ~= '' and current ~= ARGV[2] then return {'conflict', current or ''} end
if not current then return {'missing', ''} end
local json = redis.call('HGET', KEYS[1], 'json')
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return {'ok', json}
`;

// KEYS[1] lease; ARGV[1] holder, ARGV[2] ttl ms
const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

// KEYS[1] lease; ARGV[1] holder
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

  constructor(options: RedisStoreOptions) {
    if (typeof options?.client?.evalsha !== 'function' || typeof options.client.hget !== 'function') {
      throw new ConfigurationError('redisStore: client must be an ioredis client');
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
  get #ids() {
    return `${this.#p}ids`;
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
    const existing = expectedVersion === null ? null : await this.getAccount(record.id);
    if (expectedVersion !== null && existing?.version !== expectedVersion) {
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
      'putAccount',
      PUT,
      [
        this.#account(record.id),
        newIdentity,
        existing === null ? newIdentity : this.#identity(existing),
        this.#ids,
      ],
      [
        record.id,
        expectedVersion === null ? '' : String(expectedVersion),
        JSON.stringify(stored),
        String(version),
      ],
    )) as [string, string];
    if (outcome === 'ok') return stored;
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
      [this.#account(id), this.#ids, this.#lease(id)],
      [id, options.expectedVersion === undefined ? '' : String(options.expectedVersion)],
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

  async listAccounts(
    filter?: contract.AccountFilter,
    options?: contract.ListOptions,
  ): Promise<contract.AccountPage> {
    const f = input.normalizeList(filter, options);
    const records: contract.AccountRecord[] = [];
    let after = f.after;
    const batch = Math.max(f.limit + 1, 200);
    for (;;) {
      const ids = await this.#run('listAccounts', () =>
        this.#client.zrangebylex(this.#ids, after === undefined ? '-' : `(${after}`, '+', 'LIMIT', 0, batch),
      );
      if (ids.length === 0) return { records, nextCursor: null };
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
      if (ids.length < batch) return { records, nextCursor: null };
      after = ids[ids.length - 1];
    }
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
    return Number(await this.#script('releaseLease', RELEASE, [this.#lease(id)], [holder])) === 1;
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
