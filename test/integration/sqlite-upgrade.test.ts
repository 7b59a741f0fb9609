/**
 * A version-1 data directory (before issue 16 moved the channel log into gateway.sqlite) upgraded
 * by openDatabase (src/store/database.ts upgradeFromHistoryFile), built here by hand in the old
 * layout (its schema as the v1 code created it):
 *
 *   gateway.sqlite   meta node_id, outbox(id, channel, payload, created_at) holding the event text,
 *                    dead_letters without an offset, PRAGMA user_version 0
 *   history.sqlite   meta epoch, channel_heads, history(channel, offset, at, event) holding the
 *                    event as ingest parsed it (a ChannelEvent's JSON, not the envelope),
 *                    origins(node, last_seq): the last outbox id each node's events came back with
 *
 * The epoch is kept (a client of the old node still recovers), the heads and events move to
 * channel_log, the outbox rows above origins(this node) get the next offsets in id order and stay
 * in the new outbox (they were never seen back from the bus), those at or below it are done; dead
 * letters are kept. Then a gateway started on such a directory replays the old events to a client
 * with since/epoch and publishes the pending rows.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseChannelEvent, entityEventJson } from '../../src/features/channels/channel-event.js';
import { openDatabase } from '../../src/store/database.js';
import { channelEnv, connectChannel, isEvent } from '../helpers/channels.js';
import { eventually, startGateway, tempDataDir } from '../helpers/gateway-process.js';

const EPOCH = '0a1b2c3d4e5f';
const NODE = 'oldnode00001';

const V1_STORE = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE sequences (collection TEXT PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE entities (
  collection TEXT NOT NULL, id INTEGER NOT NULL, data TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID;
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL, reason TEXT NOT NULL, dead_at INTEGER NOT NULL);`;

const V1_HISTORY = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE channel_heads (channel TEXT PRIMARY KEY, last_offset INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE history (channel TEXT NOT NULL, offset INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (channel, offset)) WITHOUT ROWID;
CREATE TABLE origins (node TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;`;

/** The envelope a v1 CRUD write put in its outbox row (the same builder as today's). */
const envelope = (entityType: string, id: number, tipo: string) =>
  entityEventJson({ entityType, action: 'created', entityId: id, data: { id, tipo }, metadata: null, timestamp: '2026-01-01T00:00:00.000Z' });

/**
 * sensors: offsets 1-3 in the history (outbox ids 1, 2, 4 seen back), readings: 1-2 (ids 3, 5);
 * ids 6 (sensors), 7 (readings), 8 (sensors) never came back: they become sensors 4, readings 3, sensors 5.
 */
function buildV1(dir: string): void {
  const now = Date.now() - 60_000;
  const store = new Database(join(dir, 'gateway.sqlite'));
  store.exec(V1_STORE);
  store.prepare("INSERT INTO meta VALUES ('node_id', ?)").run(NODE);
  const rows: [string, string, number, string][] = [
    ['sensors', 'sensor', 1, 's1'],
    ['sensors', 'sensor', 2, 's2'],
    ['readings', 'reading', 1, 'r1'],
    ['sensors', 'sensor', 3, 's3'],
    ['readings', 'reading', 2, 'r2'],
    ['sensors', 'sensor', 4, 's4'],
    ['readings', 'reading', 3, 'r3'],
    ['sensors', 'sensor', 5, 's5'],
  ];
  const outbox = store.prepare('INSERT INTO outbox (channel, payload, created_at) VALUES (?, ?, ?)');
  for (const [i, [channel, type, id, tipo]] of rows.entries()) outbox.run(channel, envelope(type, id, tipo), now + i);
  store
    .prepare('INSERT INTO dead_letters VALUES (1, ?, ?, ?, ?, ?)')
    .run('sensors', envelope('sensor', 99, 'dead'), now - 5_000, 'refused: too many misses', now - 4_000);
  store.pragma('journal_mode = WAL');
  store.close();

  const history = new Database(join(dir, 'history.sqlite'));
  history.exec(V1_HISTORY);
  history.prepare("INSERT INTO meta VALUES ('epoch', ?)").run(EPOCH);
  history.prepare('INSERT INTO channel_heads VALUES (?, ?), (?, ?)').run('sensors', 3, 'readings', 2);
  // As v1's ingest kept an event: JSON.stringify(parseChannelEvent(what came from the bus)).
  const kept = history.prepare('INSERT INTO history VALUES (?, ?, ?, ?)');
  for (const [i, [channel, type, id, tipo]] of rows.slice(0, 5).entries()) {
    kept.run(channel, id, now + i, JSON.stringify(parseChannelEvent(JSON.parse(envelope(type, id, tipo)))));
  }
  history.prepare('INSERT INTO origins VALUES (?, ?), (?, ?)').run(NODE, 5, 'othernode001', 40);
  history.pragma('journal_mode = WAL');
  history.close();
}

describe('a version-1 data directory', () => {
  it('is upgraded by openDatabase: the epoch kept, the history in channel_log, the unseen outbox rows logged at the next offsets, dead letters kept', () => {
    const dir = tempDataDir();
    buildV1(dir);
    const db = openDatabase(dir);
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(2);
      expect(db.prepare("SELECT value FROM meta WHERE key = 'epoch'").get()).toEqual({ value: EPOCH });
      expect(db.prepare("SELECT value FROM meta WHERE key = 'node_id'").get()).toEqual({ value: NODE });
      expect(db.prepare('SELECT channel, last_offset FROM channel_heads ORDER BY channel').all()).toEqual([
        { channel: 'readings', last_offset: 3 },
        { channel: 'sensors', last_offset: 5 },
      ]);
      const log = db.prepare('SELECT channel, offset, event FROM channel_log ORDER BY channel, offset').all() as {
        channel: string;
        offset: number;
        event: string;
      }[];
      expect(log.map((r) => [r.channel, r.offset, (parseChannelEvent(JSON.parse(r.event)).data as { tipo: string }).tipo])).toEqual([
        ['readings', 1, 'r1'],
        ['readings', 2, 'r2'],
        ['readings', 3, 'r3'],
        ['sensors', 1, 's1'],
        ['sensors', 2, 's2'],
        ['sensors', 3, 's3'],
        ['sensors', 4, 's4'],
        ['sensors', 5, 's5'],
      ]);
      // Every logged event is an envelope, as today's writes log them (the history's were ingest's parse).
      for (const r of log) expect(JSON.parse(r.event), `${r.channel} ${r.offset}`).toMatchObject({ type: 'entity_event', entity_type: expect.any(String) });
      expect(db.prepare('SELECT channel, offset FROM outbox ORDER BY id').all()).toEqual([
        { channel: 'sensors', offset: 4 },
        { channel: 'readings', offset: 3 },
        { channel: 'sensors', offset: 5 },
      ]);
      expect(db.prepare('SELECT id, channel, offset, reason FROM dead_letters').all()).toEqual([
        { id: 1, channel: 'sensors', offset: 0, reason: 'refused: too many misses' },
      ]);
      expect(JSON.parse((db.prepare('SELECT payload FROM dead_letters').get() as { payload: string }).payload)).toMatchObject({ entity_id: 99 });
      expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'outbox_v1'").all()).toEqual([]);
    } finally {
      db.close();
    }
    // Opened again: nothing moves twice.
    const again = openDatabase(dir);
    try {
      expect(again.prepare('SELECT count(*) AS n FROM channel_log').get()).toEqual({ n: 8 });
      expect(again.prepare('SELECT count(*) AS n FROM outbox').get()).toEqual({ n: 3 });
    } finally {
      again.close();
    }
  });

  it('under a gateway: a client with the old since/epoch recovers the old events and the pending ones, which are published', async () => {
    const dir = tempDataDir();
    buildV1(dir);
    const gw = await startGateway({ env: channelEnv({ GATEWAY_DATA_DIR: dir }) });
    const back = await connectChannel(gw, `/api/v1/ws?channel=sensors&since=1&epoch=${EPOCH}`);
    expect(back.established).toMatchObject({ type: 'connection_established', recovered: true, replayed: 4, offset: 5, epoch: EPOCH });
    await back.next((f) => isEvent(f) && (f as any).offset === 5);
    const got = back.frames.filter(isEvent) as any[];
    expect(got.map((f) => [f.offset, f.entity_id, f.data.tipo])).toEqual([
      [2, 2, 's2'],
      [3, 3, 's3'],
      [4, 4, 's4'],
      [5, 5, 's5'],
    ]);
    const readings = await connectChannel(gw, `/api/v1/ws?channel=readings&since=0&epoch=${EPOCH}`);
    expect(readings.established).toMatchObject({ recovered: true, replayed: 3, offset: 3 });
    // The pending rows went to the broker and came back acknowledged: the outbox empties.
    const outbox = new Database(join(dir, 'gateway.sqlite'), { readonly: true });
    try {
      await eventually(async () => (outbox.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n === 0, 10_000, 'the pending rows published');
    } finally {
      outbox.close();
    }
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(metrics).toMatch(/^gateway_ingest_poison_messages_total 0$/m);
  });
});
