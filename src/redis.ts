/**
 * `oauth-mailbox/redis`: the Redis store. Bring your own ioredis client (an optional peer dependency; this
 * entry imports it by type only).
 *
 * @packageDocumentation
 */
export {
  REDIS_SCHEMA_VERSION,
  type RedisClient,
  RedisStore,
  type RedisStoreOptions,
  redisStore,
} from './store/redis.js';
