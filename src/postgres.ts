/**
 * `oauth-mailbox/postgres`: the PostgreSQL / PGlite store. Bring your own `pg` Pool or Client, or a PGlite
 * instance (both optional peer dependencies; this entry imports neither).
 *
 * @packageDocumentation
 */
export {
  POSTGRES_SCHEMA_VERSION,
  PostgresStore,
  type PostgresStoreOptions,
  postgresMigrations,
  postgresStore,
  type Queryable,
} from './store/postgres.js';
