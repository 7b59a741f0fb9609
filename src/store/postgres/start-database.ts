/**
 * The PostgreSQL store at start, on the main thread before any other thread opens it
 * (docs/design/cluster-store.md §5.1–5.2): wait for the database, then bring its schema to this
 * build's version (or, with GATEWAY_DATABASE_MIGRATE=off, check that it is there).
 *
 * The wait is bounded (GATEWAY_DATABASE_START_WAIT_MS), with exponential backoff and jitter, and
 * ends in GW_ERR_STORE_UNAVAILABLE naming GATEWAY_DATABASE_URL (password redacted) and the last
 * error: the process exits 1 and its supervisor restarts it. What waiting cannot cure is not
 * retried: a wrong password or a refused role (SQLSTATE 28P01, 28000) and a database that does
 * not exist (3D000) fail at once. Why exit rather than wait with readiness 503: nothing can start
 * without the store, and a wrong URL would look like a slow database forever.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayError } from '../../errors/gateway-error.js';
import { redactUrl } from '../../log/logger.js';
import { MIGRATIONS, migrate, schemaVersion, type MigrationReport } from './migrations.js';
import type { PgPool } from './pg-pool.js';

/** SQLSTATEs a retry cannot cure, and what to tell the operator. */
const FINAL: Readonly<Record<string, string>> = {
  '28P01': 'the password was refused (check the user and password in GATEWAY_DATABASE_URL)',
  '28000': 'the server refused this role or host (pg_hba.conf)',
  '3D000': 'the database does not exist (create it, or fix its name in GATEWAY_DATABASE_URL)',
};

export interface StartWait {
  /** GATEWAY_DATABASE_START_WAIT_MS. */
  readonly waitMs: number;
  /** First retry delay (default 100 ms), doubled up to `maxDelayMs` (default 2,000 ms). */
  readonly firstDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Each failed attempt, for the log. */
  readonly onRetry?: (attempt: number, error: string, nextInMs: number) => void;
}

/** The failure as one line: the SQLSTATE or socket code and the message (never the error object: it holds the connection parameters). */
function describe(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  // Node's dual-stack connect fails with an AggregateError whose own message is empty.
  const inner: unknown = err instanceof AggregateError ? (err.errors as unknown[])[0] : undefined;
  const message = (err instanceof Error && err.message) || (inner instanceof Error ? inner.message : String(err));
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

/** Resolves once `SELECT 1` succeeds on `pool`; see the file comment for when it gives up. */
export async function waitForDatabase(pool: PgPool, url: string, wait: StartWait): Promise<void> {
  const deadline = Date.now() + wait.waitMs;
  const maxDelayMs = wait.maxDelayMs ?? 2_000;
  let delay = wait.firstDelayMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query('SELECT 1');
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const last = describe(err);
      if (typeof code === 'string' && FINAL[code] !== undefined) {
        throw new GatewayError('GW_ERR_STORE_UNAVAILABLE', `GATEWAY_DATABASE_URL ${redactUrl(url)}: ${FINAL[code]} (${last}); not retried`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new GatewayError(
          'GW_ERR_STORE_UNAVAILABLE',
          `GATEWAY_DATABASE_URL ${redactUrl(url)}: the database could not be reached within GATEWAY_DATABASE_START_WAIT_MS (${wait.waitMs} ms, ${attempt} attempts); last error: ${last}`,
        );
      }
      const next = Math.min(left, Math.round(delay * (0.5 + Math.random() / 2)));
      wait.onRetry?.(attempt, last, next);
      await sleep(next);
      delay = Math.min(maxDelayMs, delay * 2);
    }
  }
}

/**
 * `auto`: applies the pending migrations (migrations.ts: under an advisory lock, so nodes starting
 * together apply each once). `off`: applies nothing, and a database behind this build stops the
 * start, naming the command that migrates it. A database ahead of this build stops it either way.
 */
export async function prepareSchema(pool: PgPool, mode: 'auto' | 'off'): Promise<MigrationReport> {
  if (mode === 'auto') return migrate(pool);
  const version = await schemaVersion(pool);
  const latest = MIGRATIONS.length;
  if (version > latest) {
    throw new GatewayError(
      'GW_ERR_CONFIG_INVALID',
      `the database of GATEWAY_DATABASE_URL has schema version ${version}, newer than this gateway build knows (${latest}): run that version (or newer), never an older one, on this database`,
    );
  }
  if (version < latest) {
    throw new GatewayError(
      'GW_ERR_CONFIG_INVALID',
      `the database of GATEWAY_DATABASE_URL has schema version ${version}, this build needs ${latest}, and GATEWAY_DATABASE_MIGRATE=off: run \`npm run migrate\` with GATEWAY_DATABASE_URL set (a role allowed to create tables), or set GATEWAY_DATABASE_MIGRATE=auto`,
    );
  }
  return { before: version, after: version, applied: [] };
}
