/**
 * A `pg.Pool` for the PostgreSQL store (issue 16), from a postgres:// URL, with the bounds every
 * caller should have: a fixed number of connections, a wait for a free one that ends (so an
 * exhausted pool is an error the caller can answer with 503, not a queue that grows), and a
 * per-statement timeout set on each connection by the server (`statement_timeout`, `lock_timeout`,
 * `idle_in_transaction_session_timeout`) and one on the client (`query_timeout`) for a server that
 * does not answer at all.
 *
 * The gateway's openers (src/store/open-store.ts), its start (gateway.ts) and scripts/migrate.ts use it.
 */
import pg from 'pg';

export interface PgPoolOptions {
  /** Connections at most (default 10). */
  readonly max?: number;
  /** A statement running longer is cancelled by the server (default 10,000 ms; 0: no limit). */
  readonly statementTimeoutMs?: number;
  /**
   * The client gives up on a statement whose answer has not come after this (default: the statement
   * timeout + 2,000 ms; 0: never). The server's statement_timeout cannot end a wait for a server that
   * is frozen or cut off; this can, and a store call then never hangs.
   */
  readonly queryTimeoutMs?: number;
  /** A statement waiting longer for a row lock is cancelled by the server (default 2,000 ms; 0: no limit). */
  readonly lockTimeoutMs?: number;
  /** The server ends a session left idle inside a transaction longer than this (default 10,000 ms). */
  readonly idleInTransactionTimeoutMs?: number;
  /** Waiting for a connection (a new one, or a free one of a full pool) fails after this (default 5,000 ms). */
  readonly connectionTimeoutMs?: number;
  /** An idle connection is closed after this (default 30,000 ms). */
  readonly idleTimeoutMs?: number;
  /** Shown in pg_stat_activity (default "uws-gateway"). */
  readonly applicationName?: string;
  /**
   * An idle connection that failed (the server restarted or closed it). The pool has already
   * dropped it; without a listener the error would end the process.
   */
  readonly onIdleError: (err: Error) => void;
}

export type PgPool = pg.Pool;

export function createPgPool(url: string, options: PgPoolOptions): PgPool {
  const max = options.max ?? 10;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`PgPoolOptions.max must be a whole number ≥ 1, not ${max}`);
  const statementTimeoutMs = options.statementTimeoutMs ?? 10_000;
  if (!Number.isInteger(statementTimeoutMs) || statementTimeoutMs < 0) {
    throw new RangeError(`PgPoolOptions.statementTimeoutMs must be a whole number ≥ 0, not ${statementTimeoutMs}`);
  }
  const wholeMs = (name: string, value: number) => {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`PgPoolOptions.${name} must be a whole number ≥ 0, not ${value}`);
    return value;
  };
  const queryTimeoutMs = wholeMs('queryTimeoutMs', options.queryTimeoutMs ?? (statementTimeoutMs === 0 ? 0 : statementTimeoutMs + 2_000));
  const pool = new pg.Pool({
    connectionString: url,
    max,
    statement_timeout: statementTimeoutMs,
    // pg sends a setting only when it is not 0; 0 means "the server's default", which is no limit.
    lock_timeout: wholeMs('lockTimeoutMs', options.lockTimeoutMs ?? 2_000),
    idle_in_transaction_session_timeout: wholeMs('idleInTransactionTimeoutMs', options.idleInTransactionTimeoutMs ?? 10_000),
    ...(queryTimeoutMs > 0 ? { query_timeout: queryTimeoutMs } : {}),
    // A dead peer (a cut network) is noticed on an idle connection too, not only on the next query.
    keepAlive: true,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    application_name: options.applicationName ?? 'uws-gateway',
  });
  pool.on('error', options.onIdleError);
  return pool;
}
