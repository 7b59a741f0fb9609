/**
 * The gateway's SQLite files (better-sqlite3, WAL), in GATEWAY_DATA_DIR. Every thread that needs
 * one opens its own connection (a better-sqlite3 handle cannot cross threads).
 *
 * Two files, so that their writers never wait for each other (profiled: with one file, the store
 * pool's write transactions and ingest's history commits queued on SQLite's write lock, whose busy
 * handler sleeps for milliseconds; REST writes then took 5 ms at p50):
 *
 *   gateway.sqlite   written by the store pool
 *     meta(key, value)                       node_id (origin of this node's events on the bus)
 *     sequences(collection, last_id)         per-collection id counter (ids are never reused)
 *     entities(collection, id, data, …)      one row per entity; data is the JSON of its fields
 *     outbox(id, channel, payload, created)  events written with their entity, not yet seen back
 *     dead_letters(id, channel, payload, …)  outbox rows the relay gave up on, with reason and time
 *     equipment(code, kind, active, …)       trucks and excavators (docs/compat/trips.md)
 *     trips(id, state, data, …)              trips (IdMovimiento = id) and their state
 *     trip_events(id, trip_id, event, at)    every trip event written (events per hour)
 *     revocations(jti, expires_at, …)        share links revoked, until they would have expired (written by ingest)
 *     device_positions(device_id, …)         each device's last position: ingest's batches, written by the pool
 *   history.sqlite   written by the ingest thread
 *     meta(key, value)                       epoch (a new history file is a new epoch)
 *     channel_heads(channel, last_offset)    the last offset given on each channel
 *     history(channel, offset, at, event)    recent events per channel, bounded by count and age
 *     origins(node, last_seq)                the last outbox id taken from each node (duplicate filter)
 *
 * revocations and device_positions are in the store's file, as the shared store holds them
 * (docs/design/cluster-store.md §4). Ingest reaches them through the Store (src/store/store.ts) on a
 * connection of its own (`context.store`), never on the telemetry path: it writes each bus
 * revocation, reads the revocations (at start, then every 5 s), the recent positions (at start) and
 * the trip monitor's equipment and trip_events (every 5 s), purges old revocations and positions
 * (once a minute) and writes the last positions at shutdown; the positions' batches go through the
 * pool. A revocation now and then and a purge a minute are no queue in front of the pool's write lock.
 *
 * The outbox rows this node has seen come back are deleted by ingest, lazily: origins(this node)
 * is the truth, the rows at or below it are only garbage.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { GatewayError } from '../errors/gateway-error.js';

export type Db = Database.Database;

const FILES = {
  store: {
    name: 'gateway.sqlite',
    schema: `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sequences (collection TEXT PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entities (
  collection TEXT NOT NULL, id INTEGER NOT NULL, data TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL, reason TEXT NOT NULL, dead_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS equipment (code TEXT PRIMARY KEY, kind TEXT NOT NULL, active INTEGER NOT NULL, description TEXT, updated_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trips (id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, data TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trip_events (id INTEGER PRIMARY KEY AUTOINCREMENT, trip_id INTEGER NOT NULL, event TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS trip_events_at ON trip_events (at);
CREATE TABLE IF NOT EXISTS revocations (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS revocations_expires_at ON revocations (expires_at);
CREATE INDEX IF NOT EXISTS revocations_revoked_at ON revocations (revoked_at);
CREATE TABLE IF NOT EXISTS device_positions (device_id TEXT PRIMARY KEY, payload TEXT NOT NULL, timestamp TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS device_positions_at ON device_positions (at);`,
  },
  history: {
    name: 'history.sqlite',
    schema: `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_heads (channel TEXT PRIMARY KEY, last_offset INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (channel TEXT NOT NULL, offset INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (channel, offset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS origins (node TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;`,
  },
} as const;

type DbFile = keyof typeof FILES;

export interface NodeIdentity {
  /** Names this node's events on the bus, so every node can drop duplicates. */
  readonly nodeId: string;
  /** Names this node's history; a client holding another epoch cannot be given a replay. */
  readonly epoch: string;
}

/** Opens one of the files (creating the directory, file and tables if needed) with the pragmas every thread uses. */
export function openDatabase(dataDir: string, file: DbFile = 'store'): Db {
  let db: Db;
  try {
    mkdirSync(dataDir, { recursive: true });
    db = new Database(join(dataDir, FILES[file].name));
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `GATEWAY_DATA_DIR ${JSON.stringify(dataDir)} cannot hold the database (${(err as Error).message})`);
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(FILES[file].schema);
  return db;
}

function metaValue(db: Db, key: string): string {
  db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(key, randomBytes(6).toString('hex'));
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string }).value;
}

/** This node's identity, created on first start: the node id lives with the outbox, the epoch with the history. */
export function nodeIdentity(store: Db, history: Db): NodeIdentity {
  return { nodeId: metaValue(store, 'node_id'), epoch: metaValue(history, 'epoch') };
}
