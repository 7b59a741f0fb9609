/**
 * Each device's last position, kept in gateway.sqlite (store/database.ts) so the snapshots of a
 * restarted node hold the devices seen before it stopped. Ingest writes the devices that changed
 * since its previous write, in one statement per batch (docs/design/cluster-store.md §4.2), and
 * reads the recent ones at start. The shape is that design's PositionRepository, synchronous until
 * the store is behind its port.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../store/database.js';

export interface PositionRecord {
  readonly deviceId: string;
  /** The position as JSON text of an object (the payload's fields). */
  readonly payload: string;
  /** The envelope timestamp it was sent with (ISO). */
  readonly timestamp: string;
  /** When ingest accepted it (ms): an older `at` never overwrites a newer one. */
  readonly at: number;
}

export class PositionStore {
  private readonly upsert: Statement<[string]>;
  private readonly select: Statement<[number], PositionRecord>;
  private readonly remove: Statement<[number]>;

  constructor(db: Db) {
    // The batch travels as one JSON array of [id, payload, timestamp, at], the payload spliced in as
    // it is (no second encoding): one statement whatever its size. `WHERE true`: SQLite's upsert
    // after a SELECT needs a WHERE to parse.
    this.upsert = db.prepare(`
INSERT INTO device_positions (device_id, payload, timestamp, at)
SELECT value ->> 0, value -> 1, value ->> 2, value ->> 3 FROM json_each(?) WHERE true
ON CONFLICT (device_id) DO UPDATE SET payload = excluded.payload, timestamp = excluded.timestamp, at = excluded.at
WHERE device_positions.at < excluded.at`);
    this.select = db.prepare('SELECT device_id AS deviceId, payload, timestamp, at FROM device_positions WHERE at >= ? ORDER BY at');
    this.remove = db.prepare('DELETE FROM device_positions WHERE at < ?');
  }

  /** A batch as the one JSON text `putJson` takes (made on ingest, written on a store pool thread). */
  static encode(batch: readonly PositionRecord[]): string {
    let json = '[';
    for (const p of batch) json += `${json.length > 1 ? ',' : ''}[${JSON.stringify(p.deviceId)},${p.payload},${JSON.stringify(p.timestamp)},${p.at}]`;
    return `${json}]`;
  }

  put(batch: readonly PositionRecord[]): void {
    if (batch.length > 0) this.putJson(PositionStore.encode(batch));
  }

  /** One statement, whatever the batch's size; an older `at` never overwrites a newer one. */
  putJson(json: string): void {
    this.upsert.run(json);
  }

  /** The positions accepted at or after `notBefore` (ms), oldest first. */
  recent(notBefore: number): PositionRecord[] {
    return this.select.all(notBefore);
  }

  purge(notBefore: number): number {
    return this.remove.run(notBefore).changes;
  }
}
