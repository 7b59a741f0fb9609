/**
 * The gateway's SQLite file (better-sqlite3, WAL), `gateway.sqlite` in GATEWAY_DATA_DIR: the
 * one-node store (src/store/sqlite/). Every thread that needs it opens its own connection (a
 * better-sqlite3 handle cannot cross threads).
 *
 *   meta(key, value)                       node_id (names this node's leases), epoch (names this store's log)
 *   sequences(collection, last_id)         per-collection id counter (ids are never reused)
 *   entities(collection, id, data, …)      one row per entity; data is the JSON of its fields
 *   channel_heads(channel, last_offset)    each channel's last offset, taken in the write's transaction
 *   channel_log(channel, offset, at, event) every channel's events, bounded by count and age (trimmed by ingest)
 *   outbox(id, channel, offset, created_at) logged events the broker has not acknowledged yet
 *   dead_letters(id, channel, offset, …)   outbox rows the relay gave up on, with the event, reason and time
 *   equipment(code, kind, active, …)       trucks and excavators (docs/compat/trips.md)
 *   trips(id, state, data, …)              trips (IdMovimiento = id) and their state
 *   trip_events(id, trip_id, event, at)    every trip event written (events per hour)
 *   revocations(jti, expires_at, …)        share links revoked, until they would have expired (written by ingest)
 *   device_positions(device_id, …)         each device's last position, flushed by ingest once a second
 *   nodes(id, version, …, figures)         the node registry (one row: this node), its heartbeat every GATEWAY_NODE_HEARTBEAT_MS
 *   user_presence(node, user_id, …)        the /ws/connect users of this node, synced by ingest once a second
 *   azure_user_groups(hub, user_id, …)     Azure addUserToGroup relations, until removed (written by the store pool)
 *
 * The store pool writes entities, trips and their events. Ingest reaches the file through the
 * Store (src/store/store.ts) on a connection of its own (`context.store`), never on the telemetry
 * path: it reads the log (its history, gap repairs, the head poll) and writes little: outbox deletes
 * in batches, the trim, each bus revocation, purges of old revocations and positions (once a
 * minute) and the last positions at shutdown; it reads the revocations (at start, then every 5 s),
 * the recent positions (at start) and the trip monitor's equipment and trip_events (every 5 s). The
 * positions' batches go through the pool.
 *
 * Before version 2 the log lived in history.sqlite, written by ingest as events came back from the
 * bus; the upgrade (upgradeFromHistoryFile) takes its epoch, heads and events over.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { GatewayError } from '../errors/gateway-error.js';
import { entityEventJson } from '../features/channels/channel-event.js';
import { SqliteLogAppender } from './sqlite/sqlite-log.js';

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
CREATE TABLE IF NOT EXISTS channel_heads (channel TEXT PRIMARY KEY, last_offset INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_log (channel TEXT NOT NULL, offset INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (channel, offset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, offset INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS outbox_position ON outbox (channel, offset);
CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, offset INTEGER NOT NULL DEFAULT 0, payload TEXT NOT NULL, created_at INTEGER NOT NULL, reason TEXT NOT NULL, dead_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS equipment (code TEXT PRIMARY KEY, kind TEXT NOT NULL, active INTEGER NOT NULL, description TEXT, updated_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trips (id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, data TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trip_events (id INTEGER PRIMARY KEY AUTOINCREMENT, trip_id INTEGER NOT NULL, event TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS trip_events_at ON trip_events (at);
CREATE TABLE IF NOT EXISTS revocations (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS revocations_expires_at ON revocations (expires_at);
CREATE INDEX IF NOT EXISTS revocations_revoked_at ON revocations (revoked_at);
CREATE TABLE IF NOT EXISTS device_positions (device_id TEXT PRIMARY KEY, payload TEXT NOT NULL, timestamp TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS device_positions_at ON device_positions (at);
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, version TEXT NOT NULL, started_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL, figures TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_presence (node TEXT NOT NULL, user_id TEXT NOT NULL, connections INTEGER NOT NULL, PRIMARY KEY (node, user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS azure_user_groups (hub TEXT NOT NULL, user_id TEXT NOT NULL, group_name TEXT NOT NULL, added_at INTEGER NOT NULL, PRIMARY KEY (hub, user_id, group_name)) WITHOUT ROWID;`,
  },
} as const;

type DbFile = keyof typeof FILES;

export interface NodeIdentity {
  /** Names this node in the outbox leases it takes, and in its logs. */
  readonly nodeId: string;
  /** Names the store's log; a client holding another epoch cannot be given a replay. */
  readonly epoch: string;
}

/** The layout of gateway.sqlite this code writes (PRAGMA user_version); 0 is a file from before the log moved here. */
const LAYOUT_VERSION = 2;

/**
 * WAL frames past which a committing connection checkpoints the WAL into the file (SQLite's
 * default is 1,000). The checkpoint runs in the commit that crosses it, on that thread, and its
 * two fsyncs are the write path's only ones (synchronous = NORMAL: a commit itself does not wait
 * for the disk); a write touches ~8 pages, so at 1,000 the store pool stalled on one every ~120
 * writes. Fewer, larger checkpoints cost about the same each (the fsyncs dominate; the pages
 * rewritten by every write are copied once).
 */
export const WAL_AUTOCHECKPOINT_FRAMES = 1000;

export interface OpenOptions {
  /**
   * This connection checkpoints only past 4× the frames (ingest: the delivery thread should not
   * stall on the fsyncs): the store pool's commits cross the threshold first whenever the pool
   * writes; ingest's own writes (heartbeats, presence, outbox deletes) still bound the WAL when it does not.
   */
  readonly checkpointLast?: boolean;
}

/** Opens one of the files (creating the directory, file and tables if needed) with the pragmas every thread uses. */
export function openDatabase(dataDir: string, file: DbFile = 'store', options: OpenOptions = {}): Db {
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
  db.pragma(`wal_autocheckpoint = ${options.checkpointLast === true ? 4 * WAL_AUTOCHECKPOINT_FRAMES : WAL_AUTOCHECKPOINT_FRAMES}`);
  if ((db.pragma('user_version', { simple: true }) as number) < LAYOUT_VERSION) {
    db.transaction(() => {
      upgradeOutbox(db);
      db.exec(FILES[file].schema);
      upgradeFromHistoryFile(db, join(dataDir, 'history.sqlite'));
      db.pragma(`user_version = ${LAYOUT_VERSION}`);
    }).immediate();
  } else {
    db.exec(FILES[file].schema);
  }
  return db;
}

const columnsOf = (db: Db, table: string) => (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);

/** A version-1 outbox held the event text (`payload`); its rows become log rows in upgradeFromHistoryFile. */
function upgradeOutbox(db: Db): void {
  if (columnsOf(db, 'outbox').includes('payload')) db.exec('ALTER TABLE outbox RENAME TO outbox_v1');
  const dead = columnsOf(db, 'dead_letters');
  if (dead.length > 0 && !dead.includes('offset')) db.exec('ALTER TABLE dead_letters ADD COLUMN offset INTEGER NOT NULL DEFAULT 0');
}

/**
 * A data directory of version 1 kept the log in history.sqlite: its epoch (so clients of the
 * upgraded node still recover), its heads and its events move here; the outbox rows this node had
 * not yet seen back from the bus (id above its `origins` row) get the next offsets of their channels,
 * in id order. history.sqlite is then left in place, unused (deleting an operator's files is theirs to do).
 *
 * The old file is read on a connection of its own, not ATTACHed: this runs in the upgrade's
 * transaction, where SQLite refuses to DETACH a database the transaction read ("database is
 * locked"), which failed every start on a version-1 directory. Its events were ingest's parse of
 * the envelope (a ChannelEvent's JSON); the log holds envelopes, so each is written back as one.
 */
function upgradeFromHistoryFile(db: Db, historyPath: string): void {
  const setMeta = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
  let seen = 0;
  if (existsSync(historyPath)) {
    const old = new Database(historyPath, { fileMustExist: true });
    try {
      const tables = new Set((old.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name));
      const epoch = tables.has('meta') ? (old.prepare("SELECT value FROM meta WHERE key = 'epoch'").get() as { value: string } | undefined) : undefined;
      if (epoch !== undefined) setMeta.run('epoch', epoch.value);
      if (tables.has('channel_heads')) {
        const head = db.prepare('INSERT OR REPLACE INTO channel_heads (channel, last_offset) VALUES (?, ?)');
        for (const r of old.prepare('SELECT channel, last_offset FROM channel_heads').iterate() as Iterable<{ channel: string; last_offset: number }>) {
          head.run(r.channel, r.last_offset);
        }
      }
      if (tables.has('history')) {
        const row = db.prepare('INSERT OR REPLACE INTO channel_log (channel, offset, at, event) VALUES (?, ?, ?, ?)');
        for (const r of old.prepare('SELECT channel, offset, at, event FROM history').iterate() as Iterable<{
          channel: string;
          offset: number;
          at: number;
          event: string;
        }>) {
          row.run(r.channel, r.offset, r.at, envelopeOfV1(String(r.event)));
        }
      }
      const node = db.prepare("SELECT value FROM meta WHERE key = 'node_id'").get() as { value: string } | undefined;
      if (tables.has('origins') && node !== undefined) {
        seen = (old.prepare('SELECT last_seq FROM origins WHERE node = ?').get(node.value) as { last_seq: number } | undefined)?.last_seq ?? 0;
      }
    } finally {
      old.close();
    }
  }
  if (columnsOf(db, 'outbox_v1').length > 0) {
    const append = new SqliteLogAppender(db);
    // All read first: better-sqlite3 refuses a write on a connection while one of its reads iterates.
    for (const row of db.prepare('SELECT id, channel, payload, created_at FROM outbox_v1 WHERE id > ? ORDER BY id').all(seen) as Iterable<{
      channel: string;
      payload: string;
      created_at: number;
    }>) {
      append.append(row.channel, String(row.payload), row.created_at);
    }
    db.exec('DROP TABLE outbox_v1');
  }
}

/**
 * A version-1 history event (ChannelEvent's JSON: kind, entityType, … ) as the envelope it was
 * parsed from; anything else (not JSON, another shape) as it is, for the pipeline to pass over and count.
 */
function envelopeOfV1(text: string): string {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return text;
  }
  if (e === null || typeof e !== 'object') return text;
  if (e.kind === 'entity') {
    return entityEventJson({
      entityType: e.entityType as string,
      action: e.action as string,
      entityId: (e.entityId ?? null) as string | number | null,
      data: e.data as Record<string, unknown>,
      metadata: (e.metadata ?? null) as Record<string, unknown> | null,
      timestamp: e.timestamp as string,
    });
  }
  if (e.kind === 'notification') {
    return JSON.stringify({
      type: 'notification',
      notification_type: e.notificationType,
      user_id: e.userId ?? undefined,
      data: e.data,
      timestamp: e.timestamp,
    });
  }
  return text;
}

function metaValue(db: Db, key: string): string {
  db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(key, randomBytes(6).toString('hex'));
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string }).value;
}

/** This node's identity and the store's epoch, created on first start. */
export function nodeIdentity(store: Db): NodeIdentity {
  return { nodeId: metaValue(store, 'node_id'), epoch: storeEpoch(store) };
}

/** The store's epoch, made on first use. */
export function storeEpoch(store: Db): string {
  return metaValue(store, 'epoch');
}
