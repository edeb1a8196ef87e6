/**
 * `oauth-mailbox/postgres`: accounts, leases and pending states in PostgreSQL (a `pg` Pool or Client) or
 * PGlite. The driver is yours: this module imports none.
 * @module
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigurationError, MailboxAuthError, StorageError, VersionConflictError } from '../errors.js';
import { Backoff } from '../internal/backoff.js';
import type * as contract from './account-store.js';
import { ACCOUNT_STATUSES } from './account-store.js';
import { KEPT_HOURS } from './mailbox-activity.js';
import type { PutStateOptions, StateStore, StoredState } from './state-store.js';
import { storeInput as input } from './store-input.js';
import { ACTIVITY_HOUR_MS } from './validate.js';

/**
 * What the store needs of a client: `pg`'s Pool and Client and PGlite all fit.
 *
 * @example
 * ```ts
 * const client: Queryable = new pg.Pool({ connectionString }); // or a pg.Client, or new PGlite()
 * ```
 */
export interface Queryable {
  /** Run one parameterized statement (`$1`, `$2`, ...). */
  query(
    text: string,
    params?: unknown[],
  ): Promise<{
    /** The returned rows. */
    rows: unknown[];
    /** Rows affected (`pg`). */
    rowCount?: number | null;
    /** Rows affected (PGlite). */
    affectedRows?: number;
  }>;
}

/** A `pg` Pool: `connect()` lends a client for a transaction. */
interface Pool extends Queryable {
  connect(): Promise<PoolClient>;
}

/** A client lent by a `pg` Pool: an EventEmitter that emits `error` when its connection is lost. */
interface PoolClient extends Queryable {
  release(err?: unknown): void;
  on?(event: 'error', listener: (err: unknown) => void): unknown;
  off?(event: 'error', listener: (err: unknown) => void): unknown;
}

/** What a LISTEN uses of a `pg` Client (or a client lent by a Pool): its events. */
interface Listening extends Queryable {
  on(event: string, listener: (...args: never[]) => void): unknown;
  off?(event: string, listener: (...args: never[]) => void): unknown;
  removeListener?(event: string, listener: (...args: never[]) => void): unknown;
}

/** What a LISTEN uses of PGlite. */
interface PGliteListen {
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
}

/** Largest `pg_notify` payload (PostgreSQL refuses 8000 bytes and more). */
const NOTIFY_LIMIT = 8000;

/** Reconnection of a lost listening connection. */
const RELISTEN = { minDelayMs: 100, maxDelayMs: 30_000 } as const;

/** The record of a written row, as JSON with {@link AccountRecord}'s field names (in SQL, over `w`). */
const RECORD_JSON = `json_build_object('id', w.id, 'provider', w.provider, 'owner', w.owner, 'email', w.email,
  'scopes', w.scopes, 'status', w.status, 'tokenExpiresAt', w.token_expires_at, 'version', w.version,
  'createdAt', w.created_at, 'updatedAt', w.updated_at, 'lastRefreshedAt', w.last_refreshed_at,
  'lastError', w.last_error, 'consecutiveFailures', w.consecutive_failures, 'metadata', w.metadata,
  'secret', w.secret)`;

/**
 * A SQL string literal of a validated id (no control characters, no NUL): `E'…'` with backslashes and quotes
 * doubled, correct whatever `standard_conforming_strings` says.
 */
function literal(value: string): string {
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * Options of {@link postgresStore}.
 *
 * @example
 * ```ts
 * postgresStore({ client: pool, schema: 'mail', tablePrefix: 'om_' });
 * ```
 */
export interface PostgresStoreOptions {
  /** A `pg` Pool or Client, or a PGlite instance. */
  readonly client: Queryable;
  /** Schema of the tables (created by `migrate()` if missing). @default 'public' */
  readonly schema?: string;
  /** Prefix of the table names. @default 'oauth_mailbox_' */
  readonly tablePrefix?: string;
  /** The clock, in epoch milliseconds (leases and state expiry). Keep hosts' clocks in sync. @default Date.now */
  readonly now?: () => number;
  /**
   * Send the store's parameterized statements as named prepared statements (node-postgres's `{ name, text,
   * values }`): each connection parses and plans a statement once, not at every call (the bulk refresh of
   * 10k accounts spends about 40% less time in PostgreSQL). Turn it off behind a pooler that cannot keep
   * prepared statements across transactions (PgBouncer in transaction mode before 1.21, or without
   * `max_prepared_statements`); a statement found gone (26000) also turns it off for the store.
   * `true` with a client that is not node-postgres is a `ConfigurationError`.
   * @default true for a node-postgres Pool or Client, false otherwise (PGlite)
   */
  readonly preparedStatements?: boolean;
}

/** The most statements a store prepares on each connection. */
const MAX_PREPARED = 256;

/** Whether `client` is a node-postgres Pool (pg-pool keeps its `Client` class) or Client (its `connectionParameters`). */
function isNodePostgres(client: Queryable): boolean {
  return typeof (client as { Client?: unknown }).Client === 'function' || isNodePostgresClient(client);
}

/** Whether `client` is a node-postgres Client (not a Pool). */
function isNodePostgresClient(client: Queryable): boolean {
  const parameters = (client as { connectionParameters?: unknown }).connectionParameters;
  return typeof parameters === 'object' && parameters !== null;
}

/** node-postgres's query with a config object (a named statement). */
type NamedQuery = (config: {
  name: string;
  text: string;
  values: unknown[];
}) => ReturnType<Queryable['query']>;

const IDENT = /^[a-z_][a-z0-9_]{0,40}$/;

/**
 * The schema version this module writes.
 *
 * @example
 * ```ts
 * if ((await store.migrate()) !== POSTGRES_SCHEMA_VERSION) throw new Error('unexpected schema');
 * ```
 */
export const POSTGRES_SCHEMA_VERSION = 5;

/**
 * The SQL of each schema version, for hosts that run their own migrations. `{schema}` and `{prefix}` are
 * replaced by the store's options. Apply them in order, then record the version in
 * `{schema}.{prefix}migrations`.
 *
 * @example
 * ```ts
 * import { postgresMigrations } from 'oauth-mailbox/postgres';
 * for (const sql of postgresMigrations({ schema: 'app', tablePrefix: 'om_' })[0].statements) await db.query(sql);
 * ```
 */
export function postgresMigrations(
  options: { readonly schema?: string; readonly tablePrefix?: string } = {},
): {
  /** The schema version these statements create. */
  readonly version: number;
  /** The SQL statements, in order. */
  readonly statements: readonly string[];
}[] {
  const { schema, prefix } = names(options);
  const t = (name: string) => `"${schema}"."${prefix}${name}"`;
  const i = (name: string) => `"${prefix}${name}"`;
  return [
    {
      version: 1,
      statements: [
        `CREATE TABLE IF NOT EXISTS ${t('accounts')} (
          id text PRIMARY KEY,
          provider text NOT NULL,
          owner text NOT NULL,
          email text NOT NULL,
          email_key text NOT NULL,
          scopes jsonb NOT NULL,
          status text NOT NULL CHECK (status IN ('active', 'reauth_required', 'error', 'revoked')),
          token_expires_at bigint,
          version integer NOT NULL,
          created_at bigint NOT NULL,
          updated_at bigint NOT NULL,
          last_refreshed_at bigint,
          last_error jsonb,
          consecutive_failures integer NOT NULL DEFAULT 0,
          metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
          secret text NOT NULL
        )`,
        `CREATE UNIQUE INDEX IF NOT EXISTS ${i('accounts_identity')} ON ${t('accounts')} (provider, owner, email_key)`,
        `CREATE INDEX IF NOT EXISTS ${i('accounts_expiry')} ON ${t('accounts')} (token_expires_at) WHERE status = 'active'`,
        `CREATE INDEX IF NOT EXISTS ${i('accounts_owner')} ON ${t('accounts')} (owner, provider)`,
        `CREATE TABLE IF NOT EXISTS ${t('leases')} (
          account_id text PRIMARY KEY,
          holder text NOT NULL,
          expires_at bigint NOT NULL
        )`,
        `CREATE TABLE IF NOT EXISTS ${t('states')} (
          key text PRIMARY KEY,
          seq bigint GENERATED BY DEFAULT AS IDENTITY,
          owner text NOT NULL,
          provider text NOT NULL,
          payload text NOT NULL,
          created_at bigint NOT NULL,
          expires_at bigint NOT NULL
        )`,
        `CREATE INDEX IF NOT EXISTS ${i('states_owner')} ON ${t('states')} (owner, seq)`,
        `CREATE INDEX IF NOT EXISTS ${i('states_expiry')} ON ${t('states')} (expires_at)`,
      ],
    },
    {
      // Pages are ordered by id in the "C" collation (byte order, the same on every store); the primary key
      // (the database's default collation) cannot serve that order, which made every page a full scan and
      // sort. And the expiry walks (status + token expiry) get an index whatever the status filter.
      version: 2,
      statements: [
        `CREATE INDEX IF NOT EXISTS ${i('accounts_id_c')} ON ${t('accounts')} (id COLLATE "C")`,
        `CREATE INDEX IF NOT EXISTS ${i('accounts_status_expiry')} ON ${t('accounts')} (status, token_expires_at)`,
      ],
    },
    {
      // readAndLease as a function: its two statements keep their plans for the life of the connection
      // (PL/pgSQL caches them), where the same two statements sent as text are parsed and planned on every
      // call (a third of the database's work in a fleet's refresh storm). A VOLATILE function takes a new
      // snapshot for each statement in READ COMMITTED: the read sees what was committed before the lease.
      version: 3,
      statements: [readAndLeaseFunction(t('read_and_lease'), t('accounts'), t('leases'))],
    },
    {
      // Watch positions per account and key (transport and folder), deleted with their account.
      version: 4,
      statements: [
        `CREATE TABLE IF NOT EXISTS ${t('watch_cursors')} (
          account_id text NOT NULL REFERENCES ${t('accounts')} (id) ON DELETE CASCADE,
          key text NOT NULL,
          cursor text NOT NULL,
          updated_at bigint NOT NULL,
          PRIMARY KEY (account_id, key)
        )`,
      ],
    },
    {
      // Mailbox activity per account: counts per hour (the last 25 kept) and the last success and error,
      // written by every instance's watchers and deleted with their account.
      version: 5,
      statements: [
        `CREATE TABLE IF NOT EXISTS ${t('mailbox_activity')} (
          account_id text NOT NULL REFERENCES ${t('accounts')} (id) ON DELETE CASCADE,
          hour bigint NOT NULL,
          processed bigint NOT NULL,
          failed bigint NOT NULL,
          errors bigint NOT NULL,
          handler_ms bigint NOT NULL,
          PRIMARY KEY (account_id, hour)
        )`,
        `CREATE TABLE IF NOT EXISTS ${t('mailbox_last')} (
          account_id text PRIMARY KEY REFERENCES ${t('accounts')} (id) ON DELETE CASCADE,
          last_success_at bigint,
          last_error jsonb
        )`,
      ],
    },
  ];
}

/**
 * The function of schema version 3: read and lease a batch of accounts. For each id of `p_ids` (distinct),
 * take `p_holder`'s lease when its token is due before the matching `p_due` (`NULL`: whatever its expiry)
 * and no other holder has a live one; then read the accounts (after the leases, in a new snapshot). One row
 * per account found: its columns, `due`, and the lease's expiry if it was taken. Leases are taken in byte
 * order of the ids, so that concurrent batches of several processes never deadlock.
 */
function readAndLeaseFunction(name: string, accounts: string, leases: string): string {
  const due = `(r.due_before IS NULL OR (a.token_expires_at IS NOT NULL AND a.token_expires_at <= r.due_before))`;
  return `CREATE OR REPLACE FUNCTION ${name}(p_ids text[], p_due bigint[], p_holder text, p_expires_at bigint, p_now bigint)
  RETURNS TABLE (id text, provider text, owner text, email text, scopes jsonb, status text, token_expires_at bigint,
    version integer, created_at bigint, updated_at bigint, last_refreshed_at bigint, last_error jsonb,
    consecutive_failures integer, metadata jsonb, secret text, due boolean, lease_expires_at bigint)
  LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
  v_ids text[];
  v_expires bigint[];
BEGIN
  WITH taken AS (
    INSERT INTO ${leases} AS l (account_id, holder, expires_at)
      SELECT a.id, p_holder, p_expires_at FROM unnest(p_ids, p_due) AS r(id, due_before)
        JOIN ${accounts} a ON a.id = r.id
      WHERE ${due}
        AND NOT EXISTS (SELECT 1 FROM ${leases} x WHERE x.account_id = a.id AND x.expires_at > p_now AND x.holder <> p_holder)
      ORDER BY a.id COLLATE "C"
    ON CONFLICT (account_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
      WHERE l.expires_at <= p_now OR l.holder = EXCLUDED.holder
    RETURNING l.account_id, l.expires_at
  )
  SELECT array_agg(taken.account_id), array_agg(taken.expires_at) INTO v_ids, v_expires FROM taken;
  RETURN QUERY SELECT a.id, a.provider, a.owner, a.email, a.scopes, a.status, a.token_expires_at, a.version,
    a.created_at, a.updated_at, a.last_refreshed_at, a.last_error, a.consecutive_failures, a.metadata, a.secret,
    ${due}, t.expires_at
  FROM unnest(p_ids, p_due) AS r(id, due_before) JOIN ${accounts} a ON a.id = r.id
    LEFT JOIN unnest(v_ids, v_expires) AS t(id, expires_at) ON t.id = a.id;
  -- An account deleted between the two statements: give back what was taken.
  IF v_ids IS NOT NULL THEN
    DELETE FROM ${leases} x WHERE x.account_id = ANY (v_ids) AND x.holder = p_holder
      AND NOT EXISTS (SELECT 1 FROM ${accounts} a WHERE a.id = x.account_id);
  END IF;
END
$fn$`;
}

function names(options: { readonly schema?: string; readonly tablePrefix?: string }) {
  const schema = options.schema ?? 'public';
  const prefix = options.tablePrefix ?? 'oauth_mailbox_';
  if (!IDENT.test(schema))
    throw new ConfigurationError('postgresStore: schema must match /^[a-z_][a-z0-9_]{0,40}$/');
  if (prefix !== '' && !IDENT.test(prefix)) {
    throw new ConfigurationError('postgresStore: tablePrefix must match /^[a-z_][a-z0-9_]{0,40}$/');
  }
  return { schema, prefix };
}

/** A row of the read-and-lease function or statement: the account, whether it is due, the lease taken. */
type LeasedRow = Row & { due: boolean; lease_expires_at: string | number | null };

function leasedRead(row: LeasedRow | undefined, holder: string): contract.LeasedRead {
  if (row === undefined) return { record: null, lease: null, busy: false };
  const lease = row.lease_expires_at === null ? null : { holder, expiresAt: Number(row.lease_expires_at) };
  return { record: toRecord(row), lease, busy: row.due === true && lease === null };
}

interface Row {
  id: string;
  provider: string;
  owner: string;
  email: string;
  scopes: string[] | string;
  status: contract.AccountRecord['status'];
  token_expires_at: string | number | null;
  version: number;
  created_at: string | number;
  updated_at: string | number;
  last_refreshed_at: string | number | null;
  last_error: contract.AccountRecord['lastError'] | string | null;
  consecutive_failures: number;
  metadata: contract.AccountRecord['metadata'] | string;
  secret: string;
}

const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);
const num = (v: string | number | null): number | null => (v === null ? null : Number(v));

/** A row of `getMailboxActivity` (bigint sums come as strings). */
interface ActivityRow {
  account_id: string;
  last_success_at: string | number | null;
  last_error: { code: string; message: string; at: number | string } | null;
  processed: string | number;
  failed: string | number;
  errors: string | number;
  handler_ms: string | number;
}

function toRecord(row: Row): contract.AccountRecord {
  const lastError = json(row.last_error);
  return {
    id: row.id,
    provider: row.provider,
    owner: row.owner,
    email: row.email,
    scopes: json(row.scopes),
    status: row.status,
    tokenExpiresAt: num(row.token_expires_at),
    version: Number(row.version),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    lastRefreshedAt: num(row.last_refreshed_at),
    lastError:
      lastError === null
        ? null
        : { code: lastError.code, message: lastError.message, at: Number(lastError.at) },
    consecutiveFailures: Number(row.consecutive_failures),
    metadata: json(row.metadata),
    secret: row.secret,
  };
}

const COLUMNS =
  'id, provider, owner, email, scopes, status, token_expires_at, version, created_at, updated_at, last_refreshed_at, last_error, consecutive_failures, metadata, secret';

/**
 * The PostgreSQL / PGlite store.
 * Construct with {@link postgresStore}.
 *
 * @example
 * ```ts
 * const store: PostgresStore = postgresStore({ client: pool });
 * await store.migrate();
 * ```
 */
export class PostgresStore implements contract.AccountStore, StateStore {
  readonly #client: Queryable;
  readonly #now: () => number;
  readonly #schema: string;
  readonly #prefix: string;
  readonly #accounts: string;
  /** Whether the engine takes several statements in one query (`undefined`: not tried yet; PGlite does not). */
  #multiStatement: boolean | undefined;
  /** Whether the schema has the read-and-lease function of version 3 (`undefined`: not tried yet). */
  #readAndLeaseFunction: boolean | undefined;
  /** Reads and leases of one turn of the event loop, sent together to the function of version 3. */
  readonly #reads: ReadBatcher;
  readonly #leases: string;
  readonly #states: string;
  readonly #cursors: string;
  readonly #activity: string;
  readonly #last: string;
  readonly #migrations: string;
  /** The notification channel of this schema and prefix (a LISTEN identifier and a pg_notify literal). */
  readonly #channel: string;
  /**
   * Whether parameterized statements are sent as named prepared statements (see the option); turned off for
   * good when a prepared statement is found gone (26000), as a transaction pooler makes them.
   */
  #prepared: boolean;
  /** Statement names by text; emptied (with a new generation in the names) when PostgreSQL refuses a cached plan. */
  readonly #names = new Map<string, string>();
  /** The texts of account writes, by kind and whether they release a lease (see `#writeText`). */
  readonly #writeTexts = new Map<string, string>();
  #generation = 0;

  constructor(options: PostgresStoreOptions) {
    if (typeof options?.client?.query !== 'function') {
      throw new ConfigurationError('postgresStore: client must be a pg Pool or Client, or a PGlite instance');
    }
    const { schema, prefix } = names(options);
    this.#client = options.client;
    this.#now = options.now ?? Date.now;
    if (options.preparedStatements !== undefined && typeof options.preparedStatements !== 'boolean') {
      throw new ConfigurationError('postgresStore: preparedStatements must be a boolean');
    }
    if (options.preparedStatements === true && !isNodePostgres(options.client)) {
      throw new ConfigurationError(
        'postgresStore: preparedStatements needs a node-postgres (pg) Pool or Client',
      );
    }
    this.#prepared = options.preparedStatements ?? isNodePostgres(options.client);
    this.#schema = schema;
    this.#prefix = prefix;
    const t = (name: string) => `"${schema}"."${prefix}${name}"`;
    this.#accounts = t('accounts');
    this.#leases = t('leases');
    const readAndLease = `SELECT * FROM ${t('read_and_lease')}($1::text[], $2::bigint[], $3, $4, $5)`;
    this.#reads = new ReadBatcher(
      (ids, due, holder, expiresAt, now) =>
        this.#run('readAndLease', () => this.#exec(readAndLease, [ids, due, holder, expiresAt, now])),
      this.#now,
    );
    this.#states = t('states');
    this.#cursors = t('watch_cursors');
    this.#activity = t('mailbox_activity');
    this.#last = t('mailbox_last');
    this.#migrations = t('migrations');
    this.#channel = changeChannel(schema, prefix);
  }

  /** `pg_notify` of a written row `w` (in the same statement): the record when it fits, else id and version. */
  #notifyWritten(): string {
    return `pg_notify(${literal(this.#channel)}, CASE WHEN octet_length(n.full) < ${NOTIFY_LIMIT} THEN n.full
      ELSE json_build_object('kind', 'written', 'id', w.id, 'version', w.version)::text END)`;
  }

  /** The `FROM` of a written row with its notification: `w` the row, `n.full` the payload with the record. */
  get #writtenFrom(): string {
    return `w, LATERAL (SELECT json_build_object('kind', 'written', 'id', w.id, 'version', w.version, 'record', ${RECORD_JSON})::text AS full) n`;
  }

  /**
   * Create or upgrade the tables. Idempotent and safe to run from several processes at once (a transaction
   * with an advisory lock on a `pg` Pool). Returns the schema version.
   */
  async migrate(): Promise<number> {
    const pool = this.#client as Partial<Pool>;
    if (typeof pool.connect !== 'function' || 'release' in pool) return this.#migrate(this.#client, false);
    // A node-postgres Client is one connection: the transaction runs on it (its `connect()` opens it, once).
    if (isNodePostgresClient(this.#client)) return this.#migrate(this.#client, true);
    const conn = await this.#run('migrate', () => (pool as Pool).connect());
    // A lent client whose backend is terminated emits `error`; without a listener that is an uncaught
    // exception in the host. Guard it for as long as it is lent, and hand a broken one back as broken.
    let lost: unknown;
    const onError = (err: unknown) => {
      lost ??= err;
    };
    conn.on?.('error', onError);
    let failure: unknown;
    try {
      return await this.#migrate(conn, true);
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      conn.off?.('error', onError);
      // pg destroys a client released with an error instead of lending it again.
      conn.release(lost ?? (failure === undefined ? undefined : true));
    }
  }

  async #migrate(db: Queryable, transactional: boolean): Promise<number> {
    try {
      return await this.#run('migrate', async () => {
        if (transactional) {
          await db.query('BEGIN');
          await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
            `oauth-mailbox:${this.#schema}.${this.#prefix}`,
          ]);
        }
        await db.query(`CREATE SCHEMA IF NOT EXISTS "${this.#schema}"`);
        await db.query(
          `CREATE TABLE IF NOT EXISTS ${this.#migrations} (version integer PRIMARY KEY, applied_at bigint NOT NULL)`,
        );
        const { rows } = await db.query(`SELECT coalesce(max(version), 0) AS v FROM ${this.#migrations}`);
        const current = Number((rows[0] as { v: number | string }).v);
        for (const migration of postgresMigrations({ schema: this.#schema, tablePrefix: this.#prefix })) {
          if (migration.version <= current) continue;
          for (const statement of migration.statements) await db.query(statement);
          await db.query(
            `INSERT INTO ${this.#migrations} (version, applied_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
            [migration.version, Date.now()],
          );
        }
        if (transactional) await db.query('COMMIT');
        return POSTGRES_SCHEMA_VERSION;
      });
    } catch (err) {
      if (transactional) await db.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  async getAccount(id: string): Promise<contract.AccountRecord | null> {
    input.assertId(id);
    const { rows } = await this.#query(
      'getAccount',
      `SELECT ${COLUMNS} FROM ${this.#accounts} WHERE id = $1`,
      [id],
    );
    return rows[0] === undefined ? null : toRecord(rows[0] as Row);
  }

  async findAccountByIdentity(identity: contract.AccountIdentity): Promise<contract.AccountRecord | null> {
    input.assertIdentity(identity);
    const { rows } = await this.#query(
      'findAccountByIdentity',
      `SELECT ${COLUMNS} FROM ${this.#accounts} WHERE provider = $1 AND owner = $2 AND email_key = $3`,
      [identity.provider, identity.owner, identity.email.toLowerCase()],
    );
    return rows[0] === undefined ? null : toRecord(rows[0] as Row);
  }

  async putAccount(record: contract.AccountRecordInput, options: contract.PutAccountOptions) {
    const expectedVersion = input.checkPutAccount(record, options);
    return this.#write('putAccount', record, expectedVersion, undefined);
  }

  /**
   * `putAccount` and the release of `holder`'s lease in one statement (the lease is deleted only with the
   * write, so a failed version check keeps it); the change is notified in the same statement.
   */
  async putAccountAndRelease(
    record: contract.AccountRecordInput,
    options: contract.PutAccountOptions & { readonly holder: string },
  ): Promise<contract.AccountRecord> {
    const expectedVersion = input.checkPutAccount(record, options);
    input.assertId(options.holder, 'holder');
    return this.#write('putAccountAndRelease', record, expectedVersion, options.holder);
  }

  /**
   * The text of an account write (an insert, or an update at an expected version), releasing the writer's
   * lease in the same statement when `releasing`; built once per store (each text is also a prepared
   * statement's name and key).
   */
  #writeText(kind: 'insert' | 'update', releasing: boolean): string {
    const key = `${kind}:${releasing}`;
    let text = this.#writeTexts.get(key);
    if (text !== undefined) return text;
    // The lease delete runs only with the written row (a data-modifying CTE always runs; it sees `w`).
    const release = (n: number) =>
      releasing
        ? `, d AS (DELETE FROM ${this.#leases} WHERE account_id IN (SELECT id FROM w) AND holder = $${n})`
        : '';
    const returning = `SELECT ${COLUMNS.split(', ')
      .map((c) => `w.${c}`)
      .join(', ')}, ${this.#notifyWritten()} AS notified FROM ${this.#writtenFrom}`;
    text =
      kind === 'insert'
        ? `WITH w AS (INSERT INTO ${this.#accounts} (id, provider, owner, email, email_key, scopes, status, token_expires_at, created_at, updated_at, last_refreshed_at, last_error, consecutive_failures, metadata, secret, version)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12::jsonb, $13, $14::jsonb, $15, 1)
           ON CONFLICT DO NOTHING RETURNING ${COLUMNS})${release(16)} ${returning}`
        : `WITH w AS (UPDATE ${this.#accounts} SET provider = $2, owner = $3, email = $4, email_key = $5, scopes = $6::jsonb, status = $7,
             token_expires_at = $8, updated_at = $9, last_refreshed_at = $10, last_error = $11::jsonb,
             consecutive_failures = $12, metadata = $13::jsonb, secret = $14, version = version + 1
           WHERE id = $1 AND version = $15 RETURNING ${COLUMNS})${release(16)} ${returning}`;
    this.#writeTexts.set(key, text);
    return text;
  }

  async #write(
    operation: string,
    record: contract.AccountRecordInput,
    expectedVersion: number | null,
    holder: string | undefined,
  ): Promise<contract.AccountRecord> {
    const values = [
      record.id,
      record.provider,
      record.owner,
      record.email,
      record.email.toLowerCase(),
      JSON.stringify(record.scopes),
      record.status,
      record.tokenExpiresAt,
      record.createdAt,
      this.#now(),
      record.lastRefreshedAt,
      record.lastError === null ? null : JSON.stringify(record.lastError),
      record.consecutiveFailures,
      JSON.stringify(record.metadata),
      record.secret,
    ];
    let rows: unknown[];
    try {
      if (expectedVersion === null) {
        ({ rows } = await this.#exec(
          this.#writeText('insert', holder !== undefined),
          holder === undefined ? values : [...values, holder],
        ));
      } else {
        ({ rows } = await this.#exec(this.#writeText('update', holder !== undefined), [
          ...values.slice(0, 8),
          ...values.slice(9),
          expectedVersion,
          ...(holder === undefined ? [] : [holder]),
        ]));
      }
    } catch (cause) {
      if ((cause as { code?: unknown }).code === '23505') {
        throw new VersionConflictError('Another account already holds this provider, owner and email', {
          accountId: record.id,
          expectedVersion,
          actualVersion: null,
          cause,
        });
      }
      const sqlState = (cause as { code?: unknown } | null)?.code;
      if (sqlState === '42P01' || sqlState === '3F000')
        return this.#run(operation, () => Promise.reject(cause));
      throw new StorageError(`The PostgreSQL store failed (${operation})`, {
        operation,
        accountId: record.id,
        cause,
      });
    }
    if (rows[0] !== undefined) return toRecord(rows[0] as Row);
    const current = await this.getAccount(record.id);
    throw new VersionConflictError(
      expectedVersion === null
        ? current === null
          ? 'Another account already holds this provider, owner and email'
          : 'An account with this id already exists'
        : 'The account changed since it was read (or no longer exists)',
      { accountId: record.id, expectedVersion, actualVersion: current?.version ?? null },
    );
  }

  async deleteAccount(id: string, options: { readonly expectedVersion?: number } = {}): Promise<boolean> {
    input.assertId(id);
    const { expectedVersion } = options;
    // The account, its lease and the notification in one statement.
    const { rows } = await this.#query(
      'deleteAccount',
      `WITH a AS (DELETE FROM ${this.#accounts} WHERE id = $1${expectedVersion === undefined ? '' : ' AND version = $2'} RETURNING id, version),
       l AS (DELETE FROM ${this.#leases} WHERE account_id IN (SELECT id FROM a))
       SELECT a.version, pg_notify(${literal(this.#channel)}, json_build_object('kind', 'deleted', 'id', a.id)::text) AS notified FROM a`,
      expectedVersion === undefined ? [id] : [id, expectedVersion],
    );
    if (rows.length === 0 && expectedVersion !== undefined) {
      const current = await this.getAccount(id);
      throw new VersionConflictError(
        current === null ? 'The account no longer exists' : 'The account changed since it was read',
        {
          accountId: id,
          expectedVersion,
          actualVersion: current?.version ?? null,
        },
      );
    }
    return rows.length > 0;
  }

  async listAccounts(
    filter?: contract.AccountFilter,
    options?: contract.ListOptions,
  ): Promise<contract.AccountPage> {
    const f = input.normalizeList(filter, options);
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (p: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (f.after !== undefined) add((p) => `id COLLATE "C" > ${p}`, f.after);
    if (f.provider !== undefined) add((p) => `provider = ${p}`, f.provider);
    if (f.owner !== undefined) add((p) => `owner = ${p}`, f.owner);
    if (f.expiresBefore !== undefined) add((p) => `token_expires_at < ${p}`, f.expiresBefore);
    // Each key compared as jsonb (1 and 1.0 are equal, as in JavaScript); a missing key is NULL: no match.
    for (const [key, value] of f.metadata ?? []) {
      params.push(key);
      const k = `$${params.length}`;
      add((p) => `metadata -> ${k}::text = ${p}::jsonb`, JSON.stringify(value));
    }
    if (f.statuses !== undefined) {
      const marks = f.statuses.map((s) => {
        params.push(s);
        return `$${params.length}`;
      });
      where.push(marks.length === 0 ? 'false' : `status IN (${marks.join(', ')})`);
    }
    params.push(f.limit + 1);
    const { rows } = await this.#query(
      'listAccounts',
      `SELECT ${COLUMNS} FROM ${this.#accounts} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id COLLATE "C" LIMIT $${params.length}`,
      params,
    );
    const records = (rows as Row[]).slice(0, f.limit).map(toRecord);
    const last = records[records.length - 1];
    return {
      records,
      nextCursor: rows.length > f.limit && last !== undefined ? input.encodeCursor(last.id) : null,
    };
  }

  /**
   * The figures of `health()` in one aggregate query (one pass over the table inside the server; no record
   * leaves it).
   */
  async countAccounts(query: contract.AccountCountQuery): Promise<contract.AccountCounts> {
    const { now, expiringBefore, failedSince } = input.checkCountQuery(query);
    const { rows } = await this.#query(
      'countAccounts',
      `SELECT status,
         count(*)::int AS n,
         (count(*) FILTER (WHERE status = 'active' AND token_expires_at <= $1))::int AS expired,
         (count(*) FILTER (WHERE status = 'active' AND token_expires_at > $1 AND token_expires_at < $2))::int AS expiring,
         (count(*) FILTER (WHERE (last_error->>'at')::bigint >= $3))::int AS failed,
         (count(*) FILTER (WHERE consecutive_failures > 0))::int AS failing
       FROM ${this.#accounts} GROUP BY status`,
      [now, expiringBefore, failedSince],
    );
    const byStatus = Object.fromEntries(ACCOUNT_STATUSES.map((s) => [s, 0])) as Record<
      contract.AccountStatus,
      number
    >;
    let total = 0;
    let activeExpired = 0;
    let activeExpiring = 0;
    let failed = 0;
    let failing = 0;
    for (const row of rows as {
      status: contract.AccountStatus;
      n: number;
      expired: number;
      expiring: number;
      failed: number;
      failing: number;
    }[]) {
      byStatus[row.status] = row.n;
      total += row.n;
      activeExpired += row.expired;
      activeExpiring += row.expiring;
      failed += row.failed;
      failing += row.failing;
    }
    return { total, byStatus, activeExpired, activeExpiring, failedSince: failed, failing };
  }

  /**
   * The record and, when due, the lease, in one statement: the lease upsert runs only when the account
   * exists and is due, and takes the lease only when it is free, lapsed or already `holder`'s.
   */
  async readAndLease(
    id: string,
    holder: string,
    ttlMs: number,
    options: contract.ReadAndLeaseOptions,
  ): Promise<contract.LeasedRead> {
    const dueBefore = input.checkReadAndLease(id, holder, ttlMs, options);
    const now = this.#now();
    if (this.#readAndLeaseFunction !== false) {
      try {
        const read = await this.#reads.read(id, holder, ttlMs, dueBefore);
        this.#readAndLeaseFunction = true;
        return read;
      } catch (err) {
        // 42883 undefined_function: a schema at version 2 (migrate() not run since the upgrade). The
        // statements below do the same, one account per call, parsed on every call.
        const sqlState = (err as { cause?: { code?: unknown } }).cause?.code;
        if (this.#readAndLeaseFunction === true || sqlState !== '42883') throw err;
        this.#readAndLeaseFunction = false;
      }
    }
    if (this.#multiStatement !== false) {
      // Two statements in one round trip (and one transaction), the read AFTER the lease: in READ COMMITTED
      // each statement takes its own snapshot, so a lease freed by a holder's write-and-release is taken only
      // with that write visible to the read. (In one statement the read's snapshot could predate the write
      // whose release let the lease through: a stale refresh token, refreshed again, is invalid_grant.)
      // A lease another holder has is skipped before the upsert (`NOT EXISTS`): a waiter's call then writes
      // nothing (no row lock, no WAL, no commit flush); the ON CONFLICT condition still decides a race.

      const dueSql = (alias: string) =>
        dueBefore === null
          ? 'true'
          : `(${alias}.token_expires_at IS NOT NULL AND ${alias}.token_expires_at <= ${dueBefore})`;
      try {
        const results = (await this.#run('readAndLease', () =>
          this.#client.query(
            `INSERT INTO ${this.#leases} (account_id, holder, expires_at)
             SELECT a.id, ${literal(holder)}, ${now + ttlMs} FROM ${this.#accounts} a WHERE a.id = ${literal(id)} AND ${dueSql('a')}
               AND NOT EXISTS (SELECT 1 FROM ${this.#leases} l WHERE l.account_id = a.id AND l.expires_at > ${now} AND l.holder <> ${literal(holder)})
             ON CONFLICT (account_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
             WHERE ${this.#leases}.expires_at <= ${now} OR ${this.#leases}.holder = EXCLUDED.holder
             RETURNING expires_at;
             SELECT ${COLUMNS}, ${dueSql(this.#accounts)} AS due FROM ${this.#accounts} WHERE id = ${literal(id)}`,
          ),
        )) as unknown as { rows: unknown[] }[];
        this.#multiStatement = true;
        const leased = results[0]?.rows[0] as { expires_at: string | number } | undefined;
        const row = results[1]?.rows[0] as (Row & { due: boolean }) | undefined;
        // The account was deleted between the statements: give back what was taken.
        if (row === undefined) {
          if (leased !== undefined) await this.releaseLease(id, holder);
          return { record: null, lease: null, busy: false };
        }
        const lease = leased === undefined ? null : { holder, expiresAt: Number(leased.expires_at) };
        return { record: toRecord(row), lease, busy: row.due === true && lease === null };
      } catch (err) {
        // 42601: "cannot insert multiple commands into a prepared statement" (PGlite's query()).
        const sqlState = (err as { cause?: { code?: unknown } }).cause?.code;
        if (this.#multiStatement === true || sqlState !== '42601') throw err;
        this.#multiStatement = false;
      }
    }
    // One statement (PGlite: one connection, statements never interleave, so no write can land between).
    const due = `($5::bigint IS NULL OR (a.token_expires_at IS NOT NULL AND a.token_expires_at <= $5::bigint))`;
    const { rows } = await this.#query(
      'readAndLease',
      `WITH a AS (SELECT ${COLUMNS} FROM ${this.#accounts} WHERE id = $1),
       l AS (
         INSERT INTO ${this.#leases} (account_id, holder, expires_at)
         SELECT a.id, $2::text, $3::bigint FROM a WHERE ${due}
         ON CONFLICT (account_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
         WHERE ${this.#leases}.expires_at <= $4 OR ${this.#leases}.holder = EXCLUDED.holder
         RETURNING expires_at
       )
       SELECT a.*, ${due} AS due, (SELECT expires_at FROM l) AS lease_expires_at FROM a`,
      [id, holder, now + ttlMs, now, dueBefore],
    );
    return leasedRead(rows[0] as LeasedRow | undefined, holder);
  }

  async getWatchCursor(accountId: string, key: string): Promise<string | null> {
    input.assertWatchCursorKey(accountId, key);
    const { rows } = await this.#query(
      'getWatchCursor',
      `SELECT cursor FROM ${this.#cursors} WHERE account_id = $1 AND key = $2`,
      [accountId, key],
    );
    return (rows[0] as { cursor: string } | undefined)?.cursor ?? null;
  }

  async putWatchCursor(accountId: string, key: string, cursor: string): Promise<boolean> {
    input.assertWatchCursor(accountId, key, cursor);
    try {
      const { rows } = await this.#exec(
        `INSERT INTO ${this.#cursors} (account_id, key, cursor, updated_at)
         SELECT id, $2, $3, $4 FROM ${this.#accounts} WHERE id = $1
         ON CONFLICT (account_id, key) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at
         RETURNING 1 AS saved`,
        [accountId, key, cursor, this.#now()],
      );
      return rows.length > 0;
    } catch (cause) {
      // 23503 foreign_key_violation: the account was deleted while the position was being saved.
      if ((cause as { code?: unknown } | null)?.code === '23503') return false;
      return this.#run('putWatchCursor', () => Promise.reject(cause));
    }
  }

  async addMailboxActivity(accountId: string, activity: contract.MailboxActivity): Promise<boolean> {
    input.assertMailboxActivity(accountId, activity);
    const a = activity;
    try {
      // One statement: the hour's counts added, the last success and error kept when later, the hours
      // older than 25 before this one dropped; nothing when the account does not exist.
      const { rows } = await this.#exec(
        `WITH acc AS (SELECT id FROM ${this.#accounts} WHERE id = $1),
         hour AS (
           INSERT INTO ${this.#activity} AS h (account_id, hour, processed, failed, errors, handler_ms)
           SELECT id, $2, $3, $4, $5, $6 FROM acc
           ON CONFLICT (account_id, hour) DO UPDATE SET processed = h.processed + EXCLUDED.processed,
             failed = h.failed + EXCLUDED.failed, errors = h.errors + EXCLUDED.errors,
             handler_ms = h.handler_ms + EXCLUDED.handler_ms
           RETURNING 1),
         last AS (
           INSERT INTO ${this.#last} AS l (account_id, last_success_at, last_error)
           SELECT id, $7, $8::jsonb FROM acc
           ON CONFLICT (account_id) DO UPDATE SET
             last_success_at = GREATEST(l.last_success_at, EXCLUDED.last_success_at),
             last_error = CASE WHEN EXCLUDED.last_error IS NOT NULL AND (l.last_error IS NULL
               OR (EXCLUDED.last_error->>'at')::bigint > (l.last_error->>'at')::bigint)
               THEN EXCLUDED.last_error ELSE l.last_error END
           RETURNING 1),
         old AS (DELETE FROM ${this.#activity} WHERE account_id = $1 AND hour < $9 RETURNING 1)
         SELECT count(*)::int AS found FROM acc`,
        [
          accountId,
          a.hour,
          a.processed,
          a.failed,
          a.errors,
          a.handlerMs,
          a.lastSuccessAt,
          a.lastError === null ? null : JSON.stringify(a.lastError),
          a.hour - KEPT_HOURS * ACTIVITY_HOUR_MS,
        ],
      );
      return (rows[0] as { found: number }).found > 0;
    } catch (cause) {
      // 23503 foreign_key_violation: the account was deleted while its activity was being written.
      if ((cause as { code?: unknown } | null)?.code === '23503') return false;
      return this.#run('addMailboxActivity', () => Promise.reject(cause));
    }
  }

  async getMailboxActivity(
    accountIds: readonly string[],
    sinceHour: number,
  ): Promise<contract.MailboxActivityTotals[]> {
    input.assertMailboxActivityQuery(accountIds, sinceHour);
    const { rows } = await this.#query(
      'getMailboxActivity',
      `SELECT l.account_id, l.last_success_at, l.last_error,
         coalesce(sum(h.processed), 0)::bigint AS processed, coalesce(sum(h.failed), 0)::bigint AS failed,
         coalesce(sum(h.errors), 0)::bigint AS errors, coalesce(sum(h.handler_ms), 0)::bigint AS handler_ms
       FROM ${this.#last} l
       LEFT JOIN ${this.#activity} h ON h.account_id = l.account_id AND h.hour >= $2
       WHERE l.account_id = ANY($1::text[])
       GROUP BY l.account_id`,
      [accountIds, sinceHour],
    );
    return (rows as ActivityRow[]).map((row) => ({
      accountId: row.account_id,
      processed: Number(row.processed),
      failed: Number(row.failed),
      errors: Number(row.errors),
      handlerMs: Number(row.handler_ms),
      lastSuccessAt: num(row.last_success_at),
      lastError:
        row.last_error === null
          ? null
          : { code: row.last_error.code, message: row.last_error.message, at: Number(row.last_error.at) },
    }));
  }

  async acquireLease(id: string, holder: string, ttlMs: number): Promise<contract.Lease | null> {
    input.assertId(id);
    input.assertId(holder, 'holder');
    input.assertTtl(ttlMs);
    const now = this.#now();
    const { rows } = await this.#query(
      'acquireLease',
      `INSERT INTO ${this.#leases} (account_id, holder, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (account_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
       WHERE ${this.#leases}.expires_at <= $4 OR ${this.#leases}.holder = EXCLUDED.holder
       RETURNING holder, expires_at`,
      [id, holder, now + ttlMs, now],
    );
    const row = rows[0] as { holder: string; expires_at: string | number } | undefined;
    return row === undefined ? null : { holder: row.holder, expiresAt: Number(row.expires_at) };
  }

  /**
   * Release without waiting for the disk: the release is committed with `synchronous_commit` off for its own
   * transaction (one simple query; the values are literals of validated ids). A release lost in a database
   * crash only leaves the lease to lapse at its TTL, so nothing is lost by not waiting; acquisitions and
   * account writes still wait for the disk. An engine that refuses several statements in one query (PGlite)
   * gets the plain parameterized `DELETE`.
   */
  async releaseLease(id: string, holder: string): Promise<boolean> {
    input.assertId(id);
    input.assertId(holder, 'holder');
    const where = `account_id = ${literal(id)} AND holder = ${literal(holder)}`;
    const now = this.#now();
    // The notification rides on the same statement, only when a live lease was released.
    const notify = (nowSql: string, channelSql: string) =>
      `CASE WHEN d.expires_at > ${nowSql} THEN pg_notify(${channelSql}, json_build_object('kind', 'released', 'id', d.account_id)::text) END AS notified`;
    let row: { expires_at: string | number } | undefined;
    if (this.#multiStatement !== false) {
      try {
        const results = (await this.#run('releaseLease', () =>
          this.#client.query(
            `SET LOCAL synchronous_commit TO OFF; WITH d AS (DELETE FROM ${this.#leases} WHERE ${where} RETURNING account_id, expires_at) SELECT d.expires_at, ${notify(String(now), literal(this.#channel))} FROM d`,
          ),
        )) as unknown as { rows: unknown[] }[] | { rows: unknown[] };
        this.#multiStatement = true;
        const deleted = Array.isArray(results) ? results[results.length - 1] : results;
        row = deleted?.rows[0] as typeof row;
        return row !== undefined && Number(row.expires_at) > now;
      } catch (err) {
        // 42601: "cannot insert multiple commands into a prepared statement" (PGlite's query()).
        const sqlState = (err as { cause?: { code?: unknown } }).cause?.code;
        if (this.#multiStatement === true || sqlState !== '42601') throw err;
        this.#multiStatement = false;
      }
    }
    const { rows } = await this.#query(
      'releaseLease',
      `WITH d AS (DELETE FROM ${this.#leases} WHERE account_id = $1 AND holder = $2 RETURNING account_id, expires_at)
       SELECT d.expires_at, ${notify('$3::bigint', '$4::text')} FROM d`,
      [id, holder, now, this.#channel],
    );
    row = rows[0] as typeof row;
    return row !== undefined && Number(row.expires_at) > now;
  }

  /**
   * Every committed change of this schema's accounts, from every process (`LISTEN` on the store's channel;
   * each write notifies in its own statement). On a `pg` Pool, the watch opens a connection of its own with the
   * pool's settings, outside the pool (it takes none of the pool's clients, `pool.end()` does not wait for it,
   * it does not keep the process alive, and it is closed once the pool is ended), opened again with backoff
   * when it is lost (then `reset` is reported); on a single
   * `pg` Client, the LISTEN runs on that client (not re-established: the client is the host's); on PGlite,
   * `db.listen`. A record too large for a notification (8000 bytes) comes as `written` without `record`.
   */
  async watchAccounts(listener: (change: contract.AccountChange) => void): Promise<contract.AccountWatch> {
    if (typeof listener !== 'function')
      throw new ConfigurationError('watchAccounts: listener must be a function');
    const deliver = (payload: string) => {
      const change = parseChange(payload);
      if (change === null) return;
      try {
        listener(change);
      } catch {
        // The listener's own failure; the watch goes on.
      }
    };
    const client = this.#client as Partial<Pool & Listening & PGliteListen> & { totalCount?: unknown };
    const channel = this.#channel;
    if (typeof client.listen === 'function') {
      const unlisten = await this.#run('watchAccounts', () =>
        (client as PGliteListen).listen(channel, deliver),
      );
      let closed: Promise<void> | undefined;
      return { close: () => (closed ??= unlisten().catch(() => {})) };
    }
    if (typeof client.connect === 'function' && typeof client.totalCount === 'number') {
      return PoolWatch.start(
        client as Pool,
        channel,
        deliver,
        (change) => {
          try {
            listener(change);
          } catch {
            // as above
          }
        },
        (operation, fn) => this.#run(operation, fn),
      );
    }
    if (typeof client.on !== 'function') {
      throw new ConfigurationError('watchAccounts needs a pg Pool, a pg Client or PGlite (notifications)');
    }
    const single = client as Listening;
    const onNotification = (message: { channel: string; payload?: string }) => {
      if (message.channel === channel) deliver(message.payload ?? '');
    };
    single.on('notification', onNotification as never);
    try {
      await this.#run('watchAccounts', () => single.query(`LISTEN "${channel}"`));
    } catch (err) {
      off(single, 'notification', onNotification);
      throw err;
    }
    let closed: Promise<void> | undefined;
    return {
      close: () =>
        (closed ??= (async () => {
          off(single, 'notification', onNotification);
          await single.query(`UNLISTEN "${channel}"`).catch(() => {});
        })()),
    };
  }

  async putState(key: string, state: StoredState, options: PutStateOptions): Promise<void> {
    input.assertState(key, state, options?.maxPerOwner, options?.maxTotal);
    const now = this.#now();
    await this.#query(
      'putState',
      `INSERT INTO ${this.#states} (key, owner, provider, payload, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, provider = EXCLUDED.provider, payload = EXCLUDED.payload,
         created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`,
      [key, state.owner, state.provider, state.payload, state.createdAt, state.expiresAt],
    );
    // Keep this owner's newest `maxPerOwner`, and sweep a bounded batch of expired states of anyone.
    await this.#query(
      'putState',
      `DELETE FROM ${this.#states} WHERE key IN (
         SELECT key FROM ${this.#states} WHERE owner = $1 AND expires_at > $2 ORDER BY seq DESC OFFSET $3
       ) OR key IN (SELECT key FROM ${this.#states} WHERE expires_at <= $2 LIMIT 100)`,
      [state.owner, now, options.maxPerOwner],
    );
    if (options.maxTotal !== undefined) {
      // Every state lives as long: the latest expiries are the newest states (served by the expiry index).
      await this.#query(
        'putState',
        `DELETE FROM ${this.#states} WHERE key IN (
           SELECT key FROM ${this.#states} WHERE expires_at > $1 ORDER BY expires_at DESC, seq DESC OFFSET $2
         )`,
        [now, options.maxTotal],
      );
    }
  }

  async takeState(key: string): Promise<StoredState | null> {
    input.assertId(key, 'state key');
    const { rows } = await this.#query(
      'takeState',
      `DELETE FROM ${this.#states} WHERE key = $1 RETURNING owner, provider, payload, created_at, expires_at`,
      [key],
    );
    const row = rows[0] as
      | {
          owner: string;
          provider: string;
          payload: string;
          created_at: string | number;
          expires_at: string | number;
        }
      | undefined;
    if (row === undefined || Number(row.expires_at) <= this.#now()) return null;
    return {
      owner: row.owner,
      provider: row.provider,
      payload: row.payload,
      createdAt: Number(row.created_at),
      expiresAt: Number(row.expires_at),
    };
  }

  /** Delete every expired pending state; returns how many. (Puts already sweep in bounded batches.) */
  async sweepStates(): Promise<number> {
    const { rows } = await this.#query(
      'sweepStates',
      `DELETE FROM ${this.#states} WHERE expires_at <= $1 RETURNING key`,
      [this.#now()],
    );
    return rows.length;
  }

  async #query(operation: string, text: string, params: unknown[]) {
    return this.#run(operation, () => this.#exec(text, params));
  }

  /**
   * One parameterized statement, named (prepared once per connection) when the store prepares statements.
   * A plan PostgreSQL refuses to reuse (0A000: a table changed under it, as a migration by another process
   * does) is sent once more unnamed, and the names change so the next calls prepare it again. A statement
   * found gone (26000: a transaction pooler, which lends another server connection each time, or a
   * `DISCARD ALL`) is sent once more unnamed, and the store prepares nothing from then on: a pooler would
   * make every call fail once before it succeeds.
   */
  async #exec(text: string, params: unknown[]): ReturnType<Queryable['query']> {
    if (!this.#prepared) return this.#client.query(text, params);
    let name = this.#names.get(text);
    if (name === undefined) {
      // Texts are a bounded set (the filter shapes of a listing vary); past the bound, stay unnamed rather
      // than prepare without end on every connection.
      if (this.#names.size >= MAX_PREPARED) return this.#client.query(text, params);
      name = `om_${createHash('sha256').update(text).digest('hex').slice(0, 24)}_${this.#generation}`;
      this.#names.set(text, name);
    }
    try {
      return await (this.#client.query as unknown as NamedQuery).call(this.#client, {
        name,
        text,
        values: params,
      });
    } catch (cause) {
      const sqlState = (cause as { code?: unknown } | null)?.code;
      if (sqlState === '26000') this.#prepared = false;
      else if (sqlState === '0A000') this.#generation++;
      else throw cause;
      this.#names.clear();
      return this.#client.query(text, params);
    }
  }

  async #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      if (cause instanceof MailboxAuthError) throw cause;
      // 42P01 undefined_table, 3F000 invalid_schema_name: the schema was never migrated. Retrying cannot help.
      const sqlState = (cause as { code?: unknown } | null)?.code;
      if (sqlState === '42P01' || sqlState === '3F000') {
        throw new ConfigurationError(
          `The PostgreSQL store's tables are missing (${operation}): call store.migrate() once at start-up`,
          { cause },
        );
      }
      throw new StorageError(`The PostgreSQL store failed (${operation})`, { operation, cause });
    }
  }

  /** @internal */
  [inspect.custom](): string {
    return `PostgresStore { schema: '${this.#schema}', tablePrefix: '${this.#prefix}' }`;
  }
}

/** The notification channel of a schema and table prefix: readable when it fits in 63 bytes, else hashed. */
function changeChannel(schema: string, prefix: string): string {
  const readable = `${schema}_${prefix}changes`;
  if (readable.length <= 63) return readable;
  return `oauth_mailbox_changes_${createHash('sha256').update(`${schema}.${prefix}`).digest('hex').slice(0, 40)}`;
}

function off(emitter: Listening, event: string, listener: (...args: never[]) => void): void {
  if (typeof emitter.off === 'function') emitter.off(event, listener);
  else emitter.removeListener?.(event, listener);
}

/** A notification payload as a change; `null` when it is not one of ours. */
function parseChange(payload: string): contract.AccountChange | null {
  let parsed: { kind?: unknown; id?: unknown; version?: unknown; record?: unknown };
  try {
    parsed = JSON.parse(payload) as typeof parsed;
  } catch {
    return null;
  }
  const { kind, id, version, record } = parsed ?? {};
  if (typeof id !== 'string' || (kind !== 'written' && kind !== 'released' && kind !== 'deleted'))
    return null;
  if (kind !== 'written') return { kind, id };
  const change = { kind: 'written' as const, id, version: Number(version) };
  if (typeof record !== 'object' || record === null) return change;
  const r = record as contract.AccountRecord & { lastError: contract.AccountErrorInfo | null };
  return {
    ...change,
    record: {
      ...r,
      lastError:
        r.lastError === null
          ? null
          : { code: r.lastError.code, message: r.lastError.message, at: Number(r.lastError.at) },
    },
  };
}

/** The most accounts one call of the read-and-lease function reads. */
const READ_BATCH = 500;

interface PendingRead {
  readonly id: string;
  readonly dueBefore: number | null;
  resolve(read: contract.LeasedRead): void;
  reject(err: unknown): void;
}

/**
 * Read-and-lease calls made in one turn of the event loop go to the database together: one statement for a
 * refresh storm's hundreds of accounts instead of one round trip each (each caller still gets its own
 * outcome). Calls of different holders or lease lengths, and a second call for an id already in the batch,
 * go in separate statements.
 */
class ReadBatcher {
  #groups = new Map<string, { reads: PendingRead[]; ids: Set<string> }[]>();
  #scheduled = false;

  constructor(
    private readonly send: (
      ids: string[],
      due: (number | null)[],
      holder: string,
      expiresAt: number,
      now: number,
    ) => Promise<{ rows: unknown[] }>,
    private readonly now: () => number,
  ) {}

  read(id: string, holder: string, ttlMs: number, dueBefore: number | null): Promise<contract.LeasedRead> {
    return new Promise((resolve, reject) => {
      const key = `${holder}\u0000${ttlMs}`;
      let batches = this.#groups.get(key);
      if (batches === undefined) {
        batches = [];
        this.#groups.set(key, batches);
      }
      let batch = batches.find((b) => b.reads.length < READ_BATCH && !b.ids.has(id));
      if (batch === undefined) {
        batch = { reads: [], ids: new Set() };
        batches.push(batch);
      }
      batch.ids.add(id);
      batch.reads.push({ id, dueBefore, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const groups = this.#groups;
    this.#groups = new Map();
    for (const [key, batches] of groups) {
      const holder = key.slice(0, key.indexOf('\u0000'));
      const ttlMs = Number(key.slice(key.indexOf('\u0000') + 1));
      // One after another: a later batch may hold a second call for an id of an earlier one.
      void batches.reduce(
        (previous, batch) => previous.then(() => this.#send(batch.reads, holder, ttlMs)),
        Promise.resolve(),
      );
    }
  }

  async #send(reads: readonly PendingRead[], holder: string, ttlMs: number): Promise<void> {
    const now = this.now();
    let rows: unknown[];
    try {
      ({ rows } = await this.send(
        reads.map((r) => r.id),
        reads.map((r) => r.dueBefore),
        holder,
        now + ttlMs,
        now,
      ));
    } catch (err) {
      for (const read of reads) read.reject(err);
      return;
    }
    const byId = new Map((rows as LeasedRow[]).map((row) => [row.id, row]));
    for (const read of reads) read.resolve(leasedRead(byId.get(read.id), holder));
  }
}

/** What a `pg` Pool exposes to open a connection of its own, outside its count (pg-pool's `Client` and `options`). */
interface PoolConstructor {
  readonly Client?: new (
    options: unknown,
  ) => Listening & { connect(): Promise<unknown>; end(): Promise<void> };
  readonly options?: unknown;
  readonly ending?: boolean;
}

/** How often a watch looks whether its pool was ended (then it closes its connection). */
const POOL_ENDED_CHECK_MS = 1000;

/**
 * A LISTEN on a connection of its own, opened with the pool's settings but outside the pool: it never takes
 * one of the pool's clients (a small pool is not starved by it), `pool.end()` does not wait for it, and it
 * does not keep the process alive; when the pool is ended the watch closes its connection. When the
 * connection is lost, another is opened (with backoff) until it listens again, then `reset` is reported. A
 * pool-like object without pg-pool's `Client` and `options` lends a client for the watch instead.
 */
class PoolWatch implements contract.AccountWatch {
  #client: Listening | undefined;
  #free: ((err: unknown) => void) | undefined;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #ended: ReturnType<typeof setInterval>;
  readonly #backoff = new Backoff(RELISTEN);
  #onNotification: ((message: { channel: string; payload?: string }) => void) | undefined;
  #onLost: ((err?: unknown) => void) | undefined;

  private constructor(
    private readonly pool: Pool & PoolConstructor,
    private readonly channel: string,
    private readonly deliver: (payload: string) => void,
    private readonly report: (change: contract.AccountChange) => void,
  ) {
    this.#ended = setInterval(() => {
      if (this.pool.ending === true) void this.close();
    }, POOL_ENDED_CHECK_MS);
    this.#ended.unref?.();
  }

  static async start(
    pool: Pool,
    channel: string,
    deliver: (payload: string) => void,
    report: (change: contract.AccountChange) => void,
    run: <T>(operation: string, fn: () => Promise<T>) => Promise<T>,
  ): Promise<PoolWatch> {
    const watch = new PoolWatch(pool, channel, deliver, report);
    try {
      await run('watchAccounts', () => watch.#listen());
    } catch (err) {
      await watch.close();
      throw err;
    }
    return watch;
  }

  /** A connection for the LISTEN, and how to let it go (a lost or unwanted one is closed, never reused). */
  async #open(): Promise<{ client: Listening; free: (err: unknown) => void; own: boolean }> {
    const { Client, options } = this.pool;
    if (typeof Client !== 'function' || options === undefined) {
      const lent = (await this.pool.connect()) as Listening & PoolClient;
      // Released as broken: pg destroys it instead of lending it again (it would still LISTEN otherwise).
      return { client: lent, free: (err) => lent.release(err ?? true), own: false };
    }
    const client = new Client(options);
    // An error after the connection is let go must not be an uncaught exception in the host.
    const quiet = () => {};
    client.on('error', quiet);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return { client, free: () => void client.end().catch(() => {}), own: true };
  }

  async #listen(): Promise<void> {
    const { client, free, own } = await this.#open();
    const onNotification = (message: { channel: string; payload?: string }) => {
      if (message.channel === this.channel) this.deliver(message.payload ?? '');
    };
    let lost = false;
    const onLost = (err?: unknown) => {
      if (lost) return;
      lost = true;
      this.#drop(client, err ?? new Error('the listening connection ended'));
      this.#schedule();
    };
    client.on('notification', onNotification as never);
    client.on('error', onLost as never);
    client.on('end', onLost as never);
    try {
      await client.query(`LISTEN "${this.channel}"`);
    } catch (err) {
      lost = true;
      this.#detach(client, onNotification, onLost);
      free(err);
      throw err;
    }
    if (this.#closed) {
      lost = true;
      this.#detach(client, onNotification, onLost);
      free(true);
      return;
    }
    // Listening: the connection no longer keeps the process alive (a connection being opened or a LISTEN
    // being answered still does).
    if (own) (client as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
    this.#client = client;
    this.#free = free;
    this.#onNotification = onNotification;
    this.#onLost = onLost;
  }

  #detach(
    client: Listening,
    onNotification: (message: { channel: string; payload?: string }) => void,
    onLost: (err?: unknown) => void,
  ): void {
    off(client, 'notification', onNotification as never);
    off(client, 'error', onLost as never);
    off(client, 'end', onLost as never);
  }

  #drop(client: Listening, err: unknown): void {
    if (this.#client !== client) return;
    this.#detach(client, this.#onNotification as never, this.#onLost as never);
    // A client that errors again after it is let go must not be an uncaught exception.
    client.on('error', () => {});
    this.#client = undefined;
    const free = this.#free;
    this.#free = undefined;
    free?.(err);
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.pool.ending === true) {
        void this.close();
        return;
      }
      this.#listen().then(
        () => {
          if (this.#closed) return;
          this.#backoff.reset();
          this.report({ kind: 'reset', id: '' });
        },
        () => this.#schedule(),
      );
    }, this.#backoff.next());
    this.#timer.unref?.();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ended);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    if (client !== undefined) this.#drop(client, true);
  }
}

/**
 * Accounts, refresh leases and pending authorizations in PostgreSQL or PGlite. Call `migrate()` once at
 * start-up (idempotent), or apply {@link postgresMigrations} with your own migration tool.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { postgresStore } from 'oauth-mailbox/postgres';
 * const store = postgresStore({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * await store.migrate();
 *
 * // Embedded, no server: PGlite in a data folder.
 * import { PGlite } from '@electric-sql/pglite';
 * const local = postgresStore({ client: new PGlite('./data/mailboxes') });
 * ```
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options);
}
