/**
 * `oauth-mailbox/redis`: the Redis store. Bring your own ioredis client (an optional peer dependency; this
 * entry imports it by type only).
 *
 * @packageDocumentation
 */
export { type RedisClient, RedisStore, type RedisStoreOptions, redisStore } from './store/redis.js';
