/**
 * The node-redis driver of `oauth-mailbox/redis`: the commands of a node-redis (`redis` 5 or 6) client, as
 * the store calls them on an ioredis client. Structural only: this module imports no driver.
 * @module
 */
import { EventEmitter } from 'node:events';
import { ConfigurationError } from '../errors.js';
import type { RedisClient, RedisSubscriber } from './redis.js';

/**
 * What the subscriber of `watchAccounts` uses of the connection a node-redis client's `duplicate()` returns.
 *
 * @example
 * ```ts
 * const subscriber: NodeRedisSubscriber = client.duplicate();
 * await subscriber.connect();
 * ```
 */
export interface NodeRedisSubscriber {
  /** Open the connection. */
  connect(): Promise<unknown>;
  /** `SUBSCRIBE channel`, calling `listener(message, channel)`. */
  subscribe(channel: string, listener: (message: unknown, channel: unknown) => void): Promise<unknown>;
  /** The client's events (`ready`, `end`, `error`). */
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Close the connection now (node-redis 5 and 6). */
  destroy?(): unknown;
  /** Close the connection (older names). */
  disconnect?(): unknown;
}

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
  /** Optional: a new client of the same options (for the subscriber of `watchAccounts`). */
  duplicate?(): NodeRedisSubscriber;
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
  const duplicate =
    typeof client.duplicate === 'function'
      ? () => subscriberOf((client.duplicate as () => NodeRedisSubscriber)())
      : undefined;
  return {
    ...(duplicate === undefined ? {} : { duplicate }),
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

/**
 * A node-redis connection as the ioredis-like {@link RedisSubscriber} of the store: connected on the first
 * `subscribe`, `message` events as (channel, message), `ready` and `close` from the client's own events
 * (node-redis reconnects and subscribes again by itself).
 */
function subscriberOf(sub: NodeRedisSubscriber): RedisSubscriber {
  const events = new EventEmitter();
  let connecting: Promise<unknown> | undefined;
  const channels = new Set<string>();
  sub.on('ready', () => events.emit('ready'));
  sub.on('end', () => events.emit('close'));
  sub.on('reconnecting', () => events.emit('close'));
  sub.on('error', (err) => events.emit('error', err));
  events.on('error', () => {}); // never an unhandled 'error' event
  return {
    async subscribe(channel: string) {
      connecting ??= sub.connect();
      await connecting;
      if (channels.has(channel)) return; // node-redis subscribes again after a reconnect by itself
      channels.add(channel);
      await sub.subscribe(channel, (message, from) => events.emit('message', text(from), text(message)));
    },
    on(event: string, listener: (...args: never[]) => void) {
      events.on(event, listener as (...args: unknown[]) => void);
      return this;
    },
    removeListener(event: string, listener: (...args: unknown[]) => void) {
      events.removeListener(event, listener);
      return this;
    },
    disconnect() {
      events.removeAllListeners();
      events.on('error', () => {});
      if (typeof sub.destroy === 'function') sub.destroy();
      else sub.disconnect?.();
    },
  } as RedisSubscriber;
}
