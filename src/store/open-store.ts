/**
 * Opens the store (src/store/store.ts) a thread uses, on connections of its own: SQLite in
 * GATEWAY_DATA_DIR (one node; the default), or PostgreSQL when GATEWAY_DATABASE_URL is set
 * (docs/design/cluster-store.md §7, step 7). Every opener — each store pool thread, ingest, the
 * main thread at start — has its own pg.Pool, sized by `storeTarget` from the node's
 * GATEWAY_DATABASE_POOL_SIZE (config/load-store.ts has the split).
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/config.js';
import type { Store } from './store.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import { createPgPool, type PgPool } from './postgres/pg-pool.js';
import { PostgresStore } from './postgres/postgres-store.js';

/** PostgreSQL, as one opener uses it. */
export interface DatabaseTarget {
  /** GATEWAY_DATABASE_URL. Holds the password: never log it (redactUrl). */
  readonly url: string;
  /** Connections of this opener's pg.Pool. */
  readonly connections: number;
  /** Waiting for a connection (a free one or a new one) fails after this: GATEWAY_STORE_QUEUE_TIMEOUT_MS. */
  readonly connectionTimeoutMs: number;
  /** Names this node in the rows it writes (outbox writer, lease holder): random per process on PostgreSQL. */
  readonly node: string;
  /** Shown in pg_stat_activity: `uws-gateway store-pool`, `uws-gateway ingest`. */
  readonly applicationName: string;
  /** GATEWAY_OUTBOX_LEASE_MS: how long the writer's relay has its outbox rows to itself. */
  readonly leaseMs: number;
}

export interface StoreTarget {
  /** GATEWAY_DATA_DIR: where gateway.sqlite lives. */
  readonly dataDir: string;
  /** GATEWAY_MAX_JSON_DEPTH, which every event written must pass (channels/outbox-event.ts). */
  readonly maxJsonDepth: number;
  /** Set: PostgreSQL; undefined: SQLite in dataDir. */
  readonly database?: DatabaseTarget;
  /** SQLite: this opener checkpoints the WAL last (ingest; database.ts OpenOptions). */
  readonly checkpointLast?: boolean;
}

/** Who opens the store: the connections each gets (config/load-store.ts). */
export type StoreOpener = 'store-pool' | 'ingest' | 'start';

/** The target of `opener` on this node; `node` is NodeIdentity.nodeId. */
export function storeTarget(config: GatewayConfig, opener: StoreOpener, node: string): StoreTarget {
  const { store } = config;
  const base = { dataDir: config.events.dataDir, maxJsonDepth: config.limits.maxJsonDepth };
  if (store.databaseUrl === undefined) return opener === 'ingest' ? { ...base, checkpointLast: true } : base;
  const connections = opener === 'store-pool' ? store.poolThreadConnections : opener === 'ingest' ? store.ingestConnections : 1;
  return {
    ...base,
    database: {
      url: store.databaseUrl,
      connections,
      connectionTimeoutMs: store.queueTimeoutMs,
      node,
      applicationName: `uws-gateway ${opener}`,
      leaseMs: config.events.outboxLeaseMs,
    },
  };
}

/**
 * What a failed idle connection is logged as: its code and message, never the error object whole
 * (node-postgres hangs the connection parameters on it, the password among them).
 */
export function pgErrorFields(err: unknown): { code?: string; message: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return { ...(typeof code === 'string' ? { code } : {}), message: err instanceof Error ? err.message : String(err) };
}

/** A pg.Pool for `database` with the store's statement bounds (pg-pool.ts); idle failures go to `logger`. */
export function openPgPool(database: DatabaseTarget, logger: Logger | undefined): PgPool {
  return createPgPool(database.url, {
    max: database.connections,
    statementTimeoutMs: 5_000,
    connectionTimeoutMs: database.connectionTimeoutMs,
    applicationName: database.applicationName,
    onIdleError: (err) => logger?.warn({ store: pgErrorFields(err) }, 'an idle PostgreSQL connection failed (the pool drops it and opens another when needed)'),
  });
}

export function openStore(target: StoreTarget, logger?: Logger): Store {
  if (target.database === undefined) return openSqliteStore(target.dataDir, target.maxJsonDepth, { checkpointLast: target.checkpointLast });
  return new PostgresStore(openPgPool(target.database, logger), {
    maxJsonDepth: target.maxJsonDepth,
    node: target.database.node,
    leaseMs: target.database.leaseMs,
  });
}
