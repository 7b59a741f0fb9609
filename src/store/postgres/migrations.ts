/**
 * Versioned migrations of the PostgreSQL store (issue 16 "Migrations"): an ordered list, each
 * applied in its own transaction together with its row in `schema_migrations`, so a migration is
 * either wholly applied and recorded or not at all.
 *
 * Several nodes may start at once: each takes the same session-level advisory lock (one per
 * database) before it reads the version, so exactly one applies the pending migrations and the
 * others, once they get the lock, find nothing left to do. A database whose version is newer than
 * this build knows (a newer gateway migrated it) is refused: an older build must not write to a
 * schema it does not understand.
 *
 * The gateway runs it at start (store/postgres/start-database.ts, unless GATEWAY_DATABASE_MIGRATE=off);
 * `npm run migrate` runs it by hand.
 */
import type pg from 'pg';
import { GatewayError } from '../../errors/gateway-error.js';
import { SHARED_STORE_V1 } from './migration-1-shared-store.js';

export interface Migration {
  /** 1, 2, 3…: the list has every version, in order. */
  readonly version: number;
  readonly name: string;
  /** One or more statements, run as one transaction. */
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [{ version: 1, name: 'shared store (issue 16 draft)', sql: SHARED_STORE_V1 }];

/** Arbitrary but fixed: the advisory lock key of the migration runner ('gwmigr' in ASCII). */
export const MIGRATION_LOCK_KEY = 0x67776d696772n;

export interface MigrateOptions {
  /** The list to apply (tests give their own); default MIGRATIONS. */
  readonly migrations?: readonly Migration[];
  /** How long to wait for another node's migration to finish (default 60,000 ms). */
  readonly lockTimeoutMs?: number;
}

export interface MigrationReport {
  /** The version before (0: an empty database) and after. */
  readonly before: number;
  readonly after: number;
  /** What this call applied (empty when another node had, or nothing was pending). */
  readonly applied: readonly Pick<Migration, 'version' | 'name'>[];
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/** The newest version applied to the database (0 when it has no schema_migrations table). */
export async function schemaVersion(db: pg.Pool | pg.ClientBase): Promise<number> {
  const { rows } = await db.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  return rows[0].present ? currentVersion(db) : 0;
}

async function currentVersion(db: pg.Pool | pg.ClientBase): Promise<number> {
  const { rows } = await db.query<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM schema_migrations');
  return rows[0].version;
}

function checkList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list out of order: position ${i + 1} holds version ${m.version}`);
    if (!m.name.trim() || !m.sql.trim()) throw new Error(`migration ${m.version} has no name or no SQL`);
  });
}

/** Brings the database to the newest version this build knows; see the file comment. */
export async function migrate(pool: pg.Pool, options: MigrateOptions = {}): Promise<MigrationReport> {
  const migrations = options.migrations ?? MIGRATIONS;
  checkList(migrations);
  const latest = migrations.length;
  const lockTimeoutMs = options.lockTimeoutMs ?? 60_000;
  const client = await pool.connect();
  // The session's settings and lock die with the connection, which is closed at the end rather than
  // returned to the pool: nothing of this leaks to the pool's other users, even after an error.
  try {
    // No statement timeout from the pool for a migration (an index on a big table takes long);
    // the wait for the lock has its own bound.
    await client.query(`SET statement_timeout = 0; SET lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    } catch (err) {
      if ((err as { code?: string }).code === '55P03') {
        throw new Error(
          `another gateway has been migrating this database for more than ${lockTimeoutMs} ms (advisory lock ${MIGRATION_LOCK_KEY} is held); wait for it, or look for a stuck migration in pg_stat_activity`,
        );
      }
      throw err;
    }
    await client.query('SET lock_timeout = 0');
    await client.query(CREATE_TABLE);
    const before = await currentVersion(client);
    if (before > latest) {
      throw new GatewayError(
        'GW_ERR_CONFIG_INVALID',
        `the database of GATEWAY_DATABASE_URL has schema version ${before}, newer than this gateway build knows (${latest}): a newer gateway has migrated it; run that version (or newer), never an older one, on this database`,
      );
    }
    const applied: Pick<Migration, 'version' | 'name'>[] = [];
    for (const m of migrations.slice(before)) {
      try {
        await client.query('BEGIN');
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await client.query('COMMIT');
      } catch (err) {
        // Closing the connection (finally, below) ends the failed transaction: nothing of it stays.
        throw new Error(`migration ${m.version} (${m.name}) failed and was rolled back: ${(err as Error).message}`, { cause: err });
      }
      applied.push({ version: m.version, name: m.name });
    }
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    return { before, after: Math.max(before, latest), applied };
  } finally {
    client.release(true);
  }
}
