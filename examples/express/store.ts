/** Where the examples keep accounts (the Express and NestJS examples share it). */
import { type AccountStore, memoryStore, type StateStore } from 'oauth-mailbox';

/** The account store: PostgreSQL when a URL is given (tables created on start), else memory. */
export async function openStore(
  databaseUrl: string | undefined,
): Promise<{ store: AccountStore & StateStore; close: () => Promise<void> }> {
  if (databaseUrl === undefined) return { store: memoryStore(), close: async () => {} };
  // Imported only when used, so the in-memory setup needs neither `pg` nor the postgres entry point.
  const [{ default: pg }, { postgresStore }] = await Promise.all([
    import('pg'),
    import('oauth-mailbox/postgres'),
  ]);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 5 });
  const store = postgresStore({ client: pool });
  try {
    await store.migrate(); // idempotent
  } catch (error) {
    await pool.end();
    throw error;
  }
  return { store, close: () => pool.end() };
}
