/** What ingest's trip monitor samples, on PostgreSQL (store.ts TripMonitorRepository): the whole cluster's fleet and trip events. */
import type { TripMonitorRepository } from '../store.js';
import type { PgSession } from './pg-session.js';

export class PgTripMonitor implements TripMonitorRepository {
  constructor(private readonly db: PgSession) {}

  async activeEquipment(): Promise<string[]> {
    const { rows } = await this.db.query<{ code: string }>('SELECT code FROM equipment WHERE active ORDER BY code COLLATE "C"');
    return rows.map((r) => r.code);
  }

  async eventsAfter(afterMs: number): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>('SELECT count(*) AS n FROM trip_events WHERE at > $1', [afterMs]);
    return Number(rows[0].n);
  }
}
