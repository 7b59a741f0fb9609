/**
 * What ingest keeps in the store across restarts (the SQLite driver, real, in a temporary
 * directory): revocations until their link's expiry, and last positions written in batches of the
 * devices that changed, restored with seq 0 and bounded by the retention. The same methods on
 * PostgreSQL: test/contract/store.contract.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RevocationStore } from '../../src/features/share-location/store/revocation-store.js';
import { DeviceTable } from '../../src/features/telemetry/ingest/device-table.js';
import { PositionKeeper, type WriteBatch } from '../../src/features/telemetry/ingest/position-keeper.js';
import { PositionStore } from '../../src/features/telemetry/store/position-store.js';
import { SharedStats } from '../../src/metrics/shared-stats.js';
import { openDatabase, type Db } from '../../src/store/database.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../../src/protocol/bounded-json.js';

function database(): Db {
  const dir = mkdtempSync(join(tmpdir(), 'kept-state-'));
  const db = openDatabase(dir);
  onTestFinished(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return db;
}

describe('RevocationStore', () => {
  it('keeps each revocation once, until its link would have expired; read since a time', () => {
    const store = new RevocationStore(database());
    store.revoke('a', 2_000, 100);
    store.revoke('a', 9_000, 200); // another node's copy: nothing changes
    store.revoke('b', 5_000, 300);
    expect(store.active(0, 1_000)).toEqual([
      { jti: 'a', expiresAt: 2_000, revokedAt: 100 },
      { jti: 'b', expiresAt: 5_000, revokedAt: 300 },
    ]);
    expect(store.active(0, 2_000)).toEqual([{ jti: 'b', expiresAt: 5_000, revokedAt: 300 }]);
    expect(store.active(101, 1_000)).toEqual([{ jti: 'b', expiresAt: 5_000, revokedAt: 300 }]);
    expect(store.active(300, 1_000).map((r) => r.jti)).toEqual(['b']);
    expect(store.active(301, 1_000)).toEqual([]);
    expect(store.purgeExpired(2_000)).toBe(1);
    expect(store.active(0, 0)).toEqual([{ jti: 'b', expiresAt: 5_000, revokedAt: 300 }]);
  });
});

describe('positions', () => {
  /** A keeper whose store pool is this thread, answering at once (or as `write` says). */
  const keeper = (db: Db, devices: DeviceTable, retentionS = 60, write?: WriteBatch) => {
    const store = new PositionStore(db);
    const now: WriteBatch = (json) => {
      store.putJson(json);
      return Promise.resolve(true);
    };
    return new PositionKeeper(
      devices,
      new SqliteStore(db, DEFAULT_MAX_JSON_DEPTH).positions,
      write ?? now,
      { positionsRetentionS: retentionS, positionsFlushMs: 1000 },
      SharedStats.create(1).ingestWriter(),
      pino({ level: 'silent' }),
    );
  };
  const count = (db: Db) => (db.prepare('SELECT count(*) AS n FROM device_positions').get() as { n: number }).n;

  it('writes only the devices changed since the last flush, latest position each, and restores them with seq 0', async () => {
    const db = database();
    const devices = new DeviceTable(() => undefined, true);
    const keep = keeper(db, devices);
    const a = devices.get('A');
    devices.recordPosition(a, { DEVICE_ID: 'A', SPEED: 1 }, new Date(Date.now() - 2000).toISOString());
    devices.recordPosition(a, { DEVICE_ID: 'A', SPEED: 2, 'q"uote': 'é' }, new Date(Date.now() - 1000).toISOString());
    devices.recordPosition(devices.get('B'), { DEVICE_ID: 'B', SPEED: 3 }, new Date().toISOString());
    devices.get('NEVER'); // known, never positioned: nothing to keep
    keep.flush();
    expect(count(db)).toBe(2);
    expect(devices.takeChanged()).toEqual([]);
    keep.flush(); // nothing changed: nothing written

    const restored = new DeviceTable(() => undefined, true);
    expect(await keeper(db, restored).restore()).toBe(2);
    const [ra, rb] = [...restored.positioned()].sort((x, y) => x.id.localeCompare(y.id));
    expect(ra).toMatchObject({ id: 'A', seq: 0, last: { DEVICE_ID: 'A', SPEED: 2, 'q"uote': 'é' }, timestamp: a.timestamp });
    expect(rb).toMatchObject({ id: 'B', seq: 0, last: { SPEED: 3 } });
    expect(restored.devicesKnown).toBe(2);
    expect(restored.takeChanged()).toEqual([]); // restoring is not a change to write back
  });

  it('makes a batch of many devices a slice per event-loop turn, and writes it in one statement', async () => {
    const db = database();
    const devices = new DeviceTable(() => undefined, true);
    const sent: string[] = [];
    const keep = keeper(db, devices, 60, (json) => {
      sent.push(json);
      return Promise.resolve(true);
    });
    for (let i = 0; i < 1200; i++) devices.recordPosition(devices.get(`D${i}`), { SPEED: i }, new Date().toISOString());
    keep.flush();
    expect(sent).toHaveLength(0); // 500 now, the rest on the next turns
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toHaveLength(1);
    expect(JSON.parse(sent[0])).toHaveLength(1200);
    new PositionStore(db).putJson(sent[0]);
    expect(count(db)).toBe(1200);
  });

  it('never lets an older position overwrite a newer one, and drops those past the retention', async () => {
    const db = database();
    const store = new PositionStore(db);
    const now = Date.now();
    store.put([{ deviceId: 'A', payload: '{"SPEED":2}', timestamp: new Date(now).toISOString(), at: now }]);
    store.put([
      { deviceId: 'A', payload: '{"SPEED":1}', timestamp: new Date(now - 10).toISOString(), at: now - 10 },
      { deviceId: 'OLD', payload: '{"SPEED":0}', timestamp: new Date(now - 120_000).toISOString(), at: now - 120_000 },
    ]);
    expect(store.recent(0).map((p) => [p.deviceId, p.payload])).toEqual([
      ['OLD', '{"SPEED":0}'],
      ['A', '{"SPEED":2}'],
    ]);
    const devices = new DeviceTable(() => undefined, true);
    expect(await keeper(db, devices, 60).restore(now)).toBe(1);
    expect(store.recent(0).map((p) => p.deviceId)).toEqual(['A']);
  });

  it('sends one batch at a time: what changes meanwhile waits, conflated; a failed batch is sent again; shutdown writes both', async () => {
    const db = database();
    const devices = new DeviceTable(() => undefined, true);
    const answers: ((written: boolean) => void)[] = [];
    const sent: string[] = [];
    const keep = keeper(db, devices, 60, (json) => {
      sent.push(json);
      return new Promise((resolve) => answers.push(resolve));
    });
    const at = (ms: number) => new Date(Date.now() - ms).toISOString();
    devices.recordPosition(devices.get('A'), { SPEED: 1 }, at(30));
    keep.flush();
    devices.recordPosition(devices.get('B'), { SPEED: 2 }, at(20));
    devices.recordPosition(devices.get('B'), { SPEED: 3 }, at(10));
    keep.flush(); // A's batch is still out: nothing sent
    expect(sent).toHaveLength(1);
    answers[0](false); // A's batch failed
    await Promise.resolve();
    keep.flush();
    expect(sent).toHaveLength(2);
    expect(JSON.parse(sent[1]).map((r: unknown[]) => [r[0], (r[1] as { SPEED: number }).SPEED])).toEqual([
      ['B', 3],
      ['A', 1],
    ]);
    devices.recordPosition(devices.get('C'), { SPEED: 4 }, at(0));
    await keep.close(); // the batch still out (A, B) and C, written here
    expect(new PositionStore(db).recent(0).map((p) => p.deviceId)).toEqual(['A', 'B', 'C']);
  });
});

describe('positions when the store fails', () => {
  it('fails the restore, and shutdown still ends (the failure logged)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kept-state-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const store = new SqliteStore(openDatabase(dir), DEFAULT_MAX_JSON_DEPTH);
    await store.close(); // every call now fails as a lost database would
    const devices = new DeviceTable(() => undefined, true);
    const lines: { msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as { msg: string }) });
    const keep = new PositionKeeper(
      devices,
      store.positions,
      () => Promise.resolve(true),
      { positionsRetentionS: 60, positionsFlushMs: 1000 },
      SharedStats.create(1).ingestWriter(),
      logger,
    );
    await expect(keep.restore()).rejects.toThrow(/not open/);
    devices.recordPosition(devices.get('A'), { SPEED: 1 }, new Date().toISOString());
    await keep.close();
    expect(lines.map((l) => l.msg)).toEqual(['could not write the last positions at shutdown']);
  });
});
