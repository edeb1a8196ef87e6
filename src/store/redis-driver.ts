/**
 * The node-redis driver of `oauth-mailbox/redis`: the commands of a node-redis (`redis` 5 or 6) client, as
 * the store calls them on an ioredis client. Structural only: this module imports no driver.
 * @module
 */
import { ConfigurationError } from '../errors.js';
import type { RedisClient } from './redis.js';

/**
 * What {@link nodeRedisClient} uses of a node-redis client: a `RedisClientType` of `redis` 5 or 6 (from
 * `createClient()`, connected). RESP2 and RESP3 (the default of node-redis 6) both work, and so does a type
 * mapping of blob strings to `Buffer` (read back as UTF-8 text).
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * const client: NodeRedisClient = await createClient({ url: process.env.REDIS_URL }).connect();
 * ```
 */
export interface NodeRedisClient {
  /** `GET key`. */
  get(key: string): Promise<unknown>;
  /** `SET key value`. */
  set(key: string, value: string): Promise<unknown>;
  /** `GETDEL key`. */
  getDel(key: string): Promise<unknown>;
  /** `HGET key field`. */
  hGet(key: string, field: string): Promise<unknown>;
  /** `EVALSHA sha numKeys ...keys ...arguments`. */
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  /** `EVAL script numKeys ...keys ...arguments`. */
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  /** `ZRANGEBYLEX key min max LIMIT offset count`. */
  zRangeByLex(
    key: string,
    min: string,
    max: string,
    options: { LIMIT: { offset: number; count: number } },
  ): Promise<unknown>;
}

/** A reply as ioredis gives it: `Buffer` as a UTF-8 string, arrays element by element. */
function reply(value: unknown): unknown {
  if (value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value)) return value.map(reply);
  return value;
}

const text = (value: unknown): string | null => {
  const r = reply(value);
  return r === null ? null : String(r);
};

/** `numKeys, ...keys, ...args` (ioredis) as `{ keys, arguments }` (node-redis, strings only). */
function evalOptions(numKeys: number, keysAndArgs: (string | number)[]) {
  const all = keysAndArgs.map(String);
  return { keys: all.slice(0, numKeys), arguments: all.slice(numKeys) };
}

/**
 * A node-redis client (`redis` 5 or 6) as the {@link RedisClient} of {@link redisStore}: the store then behaves
 * as on ioredis, with the same keys, scripts and errors (a failed command is a `StorageError` with the
 * driver's error as `cause`; a script missing from the server's cache, after `SCRIPT FLUSH` or a restart, is
 * loaded again). Connect the client yourself, and close it yourself: the adapter only sends commands.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * import { nodeRedisClient, redisStore } from 'oauth-mailbox/redis';
 * const redis = await createClient({ url: process.env.REDIS_URL }).connect();
 * const store = redisStore({ client: nodeRedisClient(redis), prefix: 'myapp:mail:' });
 * ```
 */
export function nodeRedisClient(client: NodeRedisClient): RedisClient {
  if (typeof client?.evalSha !== 'function' || typeof client.hGet !== 'function') {
    throw new ConfigurationError(
      'nodeRedisClient: client must be a node-redis client (createClient() of redis 5 or 6)',
    );
  }
  return {
    get: async (key) => text(await client.get(key)),
    set: (key, value) => client.set(key, value),
    getdel: async (key) => text(await client.getDel(key)),
    hget: async (key, field) => text(await client.hGet(key, field)),
    evalsha: async (sha, numKeys, ...keysAndArgs) =>
      reply(await client.evalSha(sha, evalOptions(numKeys, keysAndArgs))),
    eval: async (script, numKeys, ...keysAndArgs) =>
      reply(await client.eval(script, evalOptions(numKeys, keysAndArgs))),
    zrangebylex: async (key, min, max, _limit, offset, count) =>
      ((await client.zRangeByLex(key, min, max, { LIMIT: { offset, count } })) as unknown[]).map(String),
    pipeline: () => {
      const queued: (() => Promise<unknown>)[] = [];
      const pipeline = {
        hget(key: string, field: string) {
          queued.push(async () => text(await client.hGet(key, field)));
          return pipeline;
        },
        // Sent in the same tick, node-redis writes the commands together (its own pipelining).
        exec: () =>
          Promise.all(
            queued.splice(0).map((command) =>
              command().then(
                (value): [Error | null, unknown] => [null, value],
                (err: unknown): [Error | null, unknown] => [
                  err instanceof Error ? err : new Error(String(err)),
                  null,
                ],
              ),
            ),
          ),
      };
      return pipeline;
    },
  };
}
