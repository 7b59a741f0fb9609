/**
 * The monitoring table of docs/compat/trips.md, sampled on the ingest thread every 5 s into the shared
 * stats (so /metrics and /api/v1/trips/stats read it without a query): the active fleet from the
 * equipment registry, how many of it are connected to the trips hub, and the trip events of the
 * last hour. Connected is cluster-wide: the union of this node's (ingest's Azure directory) and the
 * codes each other live node lists in its heartbeat (features/cluster/), so one excavator on each of
 * two nodes is 2 on both; this node's own count is `trips_node_connected_equipment`. The registry and the events are the store's
 * (`store.tripMonitor`: on PostgreSQL, the whole cluster's), read async on the timer; a sample still
 * out when the next is due makes that one skip, so they never overlap. A store that fails leaves the
 * last sample's values, logged (rate-limited).
 */
import type { Logger } from 'pino';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { TripMonitorRepository } from '../../../store/store.js';

const SAMPLE_MS = 5_000;
const HOUR_MS = 3_600_000;

export class TripMonitor {
  private readonly timer: NodeJS.Timeout;
  private readonly storeLog: RateLimitedLog;
  private sampling = false;
  /** This node's connected equipment at the last sample, for its heartbeat. */
  private own: readonly string[] = [];
  private stopped = false;

  constructor(
    private readonly store: TripMonitorRepository,
    private readonly connectedUsers: () => readonly string[],
    /** The equipment codes the other live nodes list as connected to them (their last heartbeats). */
    private readonly otherNodesEquipment: () => Iterable<string>,
    private readonly stats: RowWriter<IngestMetric>,
    logger: Logger,
  ) {
    this.storeLog = new RateLimitedLog(logger);
    void this.sample();
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
  }

  /** One sample; resolves when it is in the stats (or failed, logged). A no-op while one is out. */
  async sample(): Promise<void> {
    if (this.sampling || this.stopped) return;
    this.sampling = true;
    try {
      const [fleet, lastHour] = await Promise.all([this.store.activeEquipment(), this.store.eventsAfter(Date.now() - HOUR_MS)]);
      if (this.stopped) return;
      const here = new Set(this.connectedUsers());
      const mine = fleet.filter((code) => here.has(code));
      this.own = mine;
      const cluster = new Set([...mine, ...this.otherNodesEquipment()]);
      this.stats.set('trips_active_fleet', fleet.length);
      this.stats.set('trips_node_connected_equipment', mine.length);
      this.stats.set('trips_connected_equipment', fleet.filter((code) => cluster.has(code)).length);
      this.stats.set('trip_events_last_hour', lastHour);
    } catch (err) {
      if (!this.stopped) this.storeLog.warn({ err }, 'could not sample the trips monitor from the store; tried again in 5 s');
    } finally {
      this.sampling = false;
    }
  }

  /** This node's connected active equipment at the last sample (what its heartbeat lists). */
  ownEquipment(): readonly string[] {
    return this.own;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}
