/**
 * What ingest's trip monitor (ingest/trip-monitor.ts) reads from gateway.sqlite: the SQLite
 * driver's TripMonitorRepository (src/store/store.ts), behind the async interface in sqlite-store.ts.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../store/database.js';

export class TripMonitorStore {
  private readonly fleet: Statement<[], { code: string }>;
  private readonly after: Statement<[number], { n: number }>;

  constructor(db: Db) {
    this.fleet = db.prepare('SELECT code FROM equipment WHERE active = 1 ORDER BY code');
    this.after = db.prepare('SELECT count(*) AS n FROM trip_events WHERE at > ?');
  }

  /** The codes of the active equipment, ordered by code. */
  activeEquipment(): string[] {
    return this.fleet.all().map((r) => r.code);
  }

  /** How many trip events were written after `afterMs`. */
  eventsAfter(afterMs: number): number {
    return this.after.get(afterMs)!.n;
  }
}
