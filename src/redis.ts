/**
 * `oauth-mailbox/redis`: the Redis store. Bring your own client, ioredis or node-redis (`redis`, through
 * {@link nodeRedisClient}): both are optional peer dependencies, and this entry imports neither.
 *
 * @packageDocumentation
 */
export {
  REDIS_SCHEMA_VERSION,
  type RedisClient,
  RedisStore,
  type RedisStoreOptions,
  type RedisSubscriber,
  redisStore,
} from './store/redis.js';
export { type NodeRedisClient, type NodeRedisSubscriber, nodeRedisClient } from './store/redis-driver.js';
