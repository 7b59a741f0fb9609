/**
 * The monitoring table of docs/compat/trips.md, sampled on the ingest thread every 5 s into the shared
 * stats (so /metrics and /api/v1/trips/stats read it without a query): the active fleet from the
 * equipment registry, how many of it are connected to the trips hub (ingest's Azure directory),
 * and the trip events of the last hour.
 */
import type { Statement } from 'better-sqlite3';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { Db } from '../../../store/database.js';

const SAMPLE_MS = 5_000;
const HOUR_MS = 3_600_000;

export class TripMonitor {
  private readonly fleet: Statement<[], { code: string }>;
  private readonly lastHour: Statement<[number], { n: number }>;
  private readonly timer: NodeJS.Timeout;

  constructor(
    db: Db,
    private readonly connectedUsers: () => readonly string[],
    private readonly stats: RowWriter<IngestMetric>,
  ) {
    this.fleet = db.prepare('SELECT code FROM equipment WHERE active = 1');
    this.lastHour = db.prepare('SELECT count(*) AS n FROM trip_events WHERE at > ?');
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  sample(): void {
    const fleet = this.fleet.all().map((r) => r.code);
    const connected = new Set(this.connectedUsers());
    this.stats.set('trips_active_fleet', fleet.length);
    this.stats.set('trips_connected_equipment', fleet.filter((code) => connected.has(code)).length);
    this.stats.set('trip_events_last_hour', this.lastHour.get(Date.now() - HOUR_MS)!.n);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
