/**
 * The store contract (store.contract.ts) on the SQLite driver: a fresh data directory per test;
 * another connection is another SqliteStore on the same gateway.sqlite, as a second store pool
 * thread opens it.
 */
import Database from 'better-sqlite3';
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
    failOutboxInserts: async () => {
      const db = new Database(join(dir, 'gateway.sqlite'));
      db.exec("CREATE TRIGGER outbox_fails BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'test: outbox inserts fail'); END");
      return async () => {
        db.exec('DROP TRIGGER outbox_fails');
        db.close();
      };
    },
    dispose: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
