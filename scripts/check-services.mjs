#!/usr/bin/env node
// CI: PostgreSQL and Redis must be reachable, or the run fails here with a clear message.
import Redis from 'ioredis';
import pg from 'pg';

const failures = [];
const { DATABASE_URL, REDIS_URL } = process.env;
if (!DATABASE_URL) failures.push('DATABASE_URL is not set');
if (!REDIS_URL) failures.push('REDIS_URL is not set');
if (DATABASE_URL) {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    const { rows } = await client.query('SHOW server_version');
    console.log(`PostgreSQL ${rows[0].server_version} at ${new URL(DATABASE_URL).host}`);
  } catch (err) {
    failures.push(`PostgreSQL unreachable at ${DATABASE_URL}: ${err.message}`);
  } finally {
    await client.end().catch(() => {});
  }
}
if (REDIS_URL) {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    const info = await client.info('server');
    console.log(`Redis ${/redis_version:(\S+)/.exec(info)?.[1]} at ${new URL(REDIS_URL).host}`);
  } catch (err) {
    failures.push(`Redis unreachable at ${REDIS_URL}: ${err.message}`);
  } finally {
    client.disconnect();
  }
}
if (failures.length > 0) {
  for (const f of failures) console.error(`check-services: ${f}`);
  process.exit(1);
}
