/**
 * The store's variables (GATEWAY_DATABASE_*, GATEWAY_STORE_QUEUE*): the backend, the split of the
 * node's PostgreSQL connections between ingest and the store pool threads, and the bounds. A URL
 * that is not postgres:// or postgresql://, or does not parse, is a configuration error (exit 2)
 * whose message never holds the password.
 */
import type { StoreConfig } from './config.js';
import { invalid, spec, type IntReader, type StrReader } from './env-readers.js';
import { redactUrl } from '../log/logger.js';

/** Ingest's own connections (its store: revocations, positions, and the log once it is in the store). */
export const INGEST_CONNECTIONS = 2;

export function loadStore(int: IntReader, str: StrReader): StoreConfig {
  const urlVar = spec('GATEWAY_DATABASE_URL');
  const databaseUrl = str('GATEWAY_DATABASE_URL');
  if (databaseUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(databaseUrl);
    } catch {
      // Not even the scheme is shown: an unparseable URL may still hold a password.
      invalid(urlVar, 'is not a URL such as postgres://user:password@host:5432/database', '[unparseable url]');
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      invalid(urlVar, 'must start with postgres:// or postgresql:// (unset: SQLite in GATEWAY_DATA_DIR)', redactUrl(databaseUrl));
    }
  }
  const poolSize = int('GATEWAY_DATABASE_POOL_SIZE')!;
  const threads = int('GATEWAY_STORE_THREADS')!;
  const poolThreadConnections = Math.floor((poolSize - INGEST_CONNECTIONS) / threads);
  if (databaseUrl !== undefined && poolThreadConnections < 1) {
    invalid(
      spec('GATEWAY_DATABASE_POOL_SIZE'),
      `must be at least GATEWAY_STORE_THREADS + ${INGEST_CONNECTIONS} (${threads + INGEST_CONNECTIONS}): each store pool thread needs a connection, ingest ${INGEST_CONNECTIONS}`,
      String(poolSize),
    );
  }
  return {
    databaseUrl,
    poolSize,
    poolThreadConnections: Math.max(1, poolThreadConnections),
    ingestConnections: INGEST_CONNECTIONS,
    startWaitMs: int('GATEWAY_DATABASE_START_WAIT_MS')!,
    migrate: str('GATEWAY_DATABASE_MIGRATE') as 'auto' | 'off',
    queue: int('GATEWAY_STORE_QUEUE')!,
    queueTimeoutMs: int('GATEWAY_STORE_QUEUE_TIMEOUT_MS')!,
  };
}
