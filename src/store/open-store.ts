/**
 * Opens the store (src/store/store.ts) a thread uses, on connections of its own: SQLite in
 * GATEWAY_DATA_DIR (one node; the default), or PostgreSQL when GATEWAY_DATABASE_URL is set
 * (docs/design/cluster-store.md §7, step 7: not read yet, so always SQLite for now).
 */
import type { Store } from './store.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';

export interface StoreTarget {
  /** GATEWAY_DATA_DIR: where gateway.sqlite lives. */
  readonly dataDir: string;
  /** GATEWAY_MAX_JSON_DEPTH, which every event written must pass (channels/outbox-event.ts). */
  readonly maxJsonDepth: number;
}

export function openStore(target: StoreTarget): Store {
  return openSqliteStore(target.dataDir, target.maxJsonDepth);
}
