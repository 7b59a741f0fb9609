/**
 * The gateway's SQLite file (better-sqlite3, WAL): entities, the outbox, the per-channel event
 * history and this node's identity. Every thread that needs it opens its own connection (a
 * better-sqlite3 handle cannot cross threads); WAL lets readers run beside the one writer, and
 * busy_timeout makes concurrent writers (store pool, ingest) wait for each other instead of failing.
 *
 *   meta(key, value)                       node_id (origin of this node's events), epoch
 *   sequences(collection, last_id)         per-collection id counter (ids are never reused)
 *   entities(collection, id, data, …)      one row per entity; data is the JSON of its fields
 *   outbox(id, channel, payload, created)  events written with their entity, not yet seen back from the bus
 *   channel_heads(channel, last_offset)    the last offset given on each channel
 *   history(channel, offset, at, event)    recent events per channel, bounded by count and age
 *   origins(node, last_seq)                the last outbox id taken from each node (duplicate filter)
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { GatewayError } from '../errors/gateway-error.js';

export type Db = Database.Database;

export const DB_FILE = 'gateway.sqlite';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sequences (collection TEXT PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entities (
  collection TEXT NOT NULL, id INTEGER NOT NULL, data TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channel_heads (channel TEXT PRIMARY KEY, last_offset INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (channel TEXT NOT NULL, offset INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (channel, offset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS origins (node TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
`;

export interface NodeIdentity {
  /** Names this node's events on the bus, so every node can drop duplicates. */
  readonly nodeId: string;
  /** Names this node's history; a client holding another epoch cannot be given a replay. */
  readonly epoch: string;
}

/** Opens (creating the directory, file and tables if needed) with the pragmas every thread uses. */
export function openDatabase(dataDir: string): Db {
  let db: Db;
  try {
    mkdirSync(dataDir, { recursive: true });
    db = new Database(join(dataDir, DB_FILE));
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `GATEWAY_DATA_DIR ${JSON.stringify(dataDir)} cannot hold the database (${(err as Error).message})`);
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  return db;
}

/** This node's identity, created on first start and kept in the file (a new file is a new epoch). */
export function nodeIdentity(db: Db): NodeIdentity {
  const read = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const write = db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)');
  return db.transaction(() => {
    write.run('node_id', randomBytes(6).toString('hex'));
    write.run('epoch', randomBytes(6).toString('hex'));
    return { nodeId: read.get('node_id')!.value, epoch: read.get('epoch')!.value };
  })();
}
