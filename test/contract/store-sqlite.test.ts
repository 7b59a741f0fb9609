/**
 * The store contract (store.contract.ts) on the SQLite driver: a fresh data directory per test;
 * another connection is another SqliteStore on the same gateway.sqlite, as a second store pool
 * thread opens it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { storeContract } from './store.contract.js';

storeContract('sqlite', async ({ maxJsonDepth }) => {
  const dir = mkdtempSync(join(tmpdir(), 'store-contract-'));
  const store = openSqliteStore(dir, maxJsonDepth);
  return {
    store,
    open: async () => openSqliteStore(dir, maxJsonDepth),
    dispose: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
