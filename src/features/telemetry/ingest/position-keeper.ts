/**
 * Keeps the device table's last positions across restarts (docs/design/cluster-store.md §4.2).
 * The telemetry path only marks a device changed (device-table.ts); every GATEWAY_POSITIONS_FLUSH_MS
 * the devices changed since the previous batch (latest position each) become one JSON text that a
 * store pool thread writes in one statement (store/position-store.ts), never per message and never
 * on this thread. At most one batch is out: while it is, the marks keep growing, conflated per
 * device (so bounded by the devices), and the next batch takes them; a failed batch's devices are
 * marked again. At start, before ingest reports ready and before any edge can ask for a snapshot,
 * the positions accepted within GATEWAY_POSITIONS_RETENTION_S are put back in the table (read once
 * from the store, `store.positions`: on PostgreSQL, every node's); older rows are deleted then and
 * once a minute. Those reads and deletes are async: the telemetry path never waits for them, and a
 * device positioned live meanwhile keeps its live position (DeviceTable.restorePosition).
 *
 * What a hard kill loses: the positions accepted since the last batch (at most one interval). A
 * SIGTERM writes them, and the batch still out, through ingest's store as ingest closes (awaited
 * before the store closes).
 */
import type { Logger } from 'pino';
import type { TelemetryConfig } from '../../../config/config.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { PositionRepository } from '../../../store/store.js';
import { isValidDeviceId } from '../device-ids.js';
import { PositionStore, type PositionRecord } from '../store/position-store.js';
import type { DeviceState, DeviceTable } from './device-table.js';

const PURGE_MS = 60_000;
/** Devices encoded per event-loop turn (about a millisecond). */
const ENCODE_SLICE = 500;

/** Writes one batch on the store pool; resolves false when it was not written. */
export type WriteBatch = (json: string) => Promise<boolean>;

export class PositionKeeper {
  private flushTimer: NodeJS.Timeout | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  /** The batch being made or written; at most one. */
  private inFlight: { readonly devices: readonly DeviceState[] } | undefined;
  private readonly storeLog: RateLimitedLog;

  constructor(
    private readonly devices: DeviceTable,
    /** This thread's own store: the read at start, the purge, the last batch at shutdown. */
    private readonly store: PositionRepository,
    private readonly write: WriteBatch,
    private readonly config: Pick<TelemetryConfig, 'positionsRetentionS' | 'positionsFlushMs'>,
    private readonly stats: RowWriter<IngestMetric>,
    private readonly logger: Logger,
  ) {
    this.storeLog = new RateLimitedLog(logger);
  }

  /**
   * Puts the recent kept positions back in the table; resolves how many. Before any edge asks (ingest
   * awaits it before it reports ready). Rejects when the store fails.
   */
  async restore(now = Date.now()): Promise<number> {
    const notBefore = now - this.config.positionsRetentionS * 1000;
    await this.store.purge(notBefore);
    let restored = 0;
    for (const row of await this.store.recent(notBefore)) {
      let value: unknown;
      try {
        value = JSON.parse(row.payload);
      } catch {
        value = undefined;
      }
      if (!isValidDeviceId(row.deviceId) || value === null || typeof value !== 'object' || Array.isArray(value)) {
        this.logger.warn({ device: row.deviceId.slice(0, 128) }, 'kept position skipped: not a device id and a JSON object');
        continue;
      }
      this.devices.restorePosition(row.deviceId, value as Record<string, unknown>, row.timestamp);
      restored++;
    }
    return restored;
  }

  start(): void {
    this.flushTimer = setInterval(() => this.flush(), this.config.positionsFlushMs);
    this.purgeTimer = setInterval(() => this.purge(), PURGE_MS);
  }

  /** Sends the devices changed since the last batch to the store pool, unless a batch is still out. */
  flush(): void {
    if (this.inFlight !== undefined) {
      this.stats.inc('positions_flush_skipped_total');
      return;
    }
    const changed = this.devices.takeChanged();
    if (changed.length === 0) return;
    const batch = { devices: changed };
    this.inFlight = batch;
    this.encode(batch, 0, [], 0);
  }

  /**
   * Makes the batch's JSON a slice of devices per event-loop turn, so telemetry never waits behind
   * a batch of every device (10,000 at once would hold the thread for tens of milliseconds).
   */
  private encode(batch: { readonly devices: readonly DeviceState[] }, from: number, parts: string[], spentMs: number): void {
    if (this.inFlight !== batch) return; // closed meanwhile
    const started = performance.now();
    const to = Math.min(batch.devices.length, from + ENCODE_SLICE);
    parts.push(PositionStore.encode(this.records(batch.devices.slice(from, to))).slice(1, -1));
    const spent = spentMs + performance.now() - started;
    if (to < batch.devices.length) {
      setImmediate(() => this.encode(batch, to, parts, spent));
      return;
    }
    const json = `[${parts.join(',')}]`;
    this.stats.set('positions_flush_ms', spent);
    const failed = (err?: unknown) => {
      for (const device of batch.devices) this.devices.markChanged(device);
      this.storeLog.warn({ err, devices: batch.devices.length }, 'could not write last positions; kept for the next batch');
    };
    this.write(json).then(
      (written) => {
        if (this.inFlight === batch) this.inFlight = undefined;
        if (written) this.stats.inc('positions_flushed_total', batch.devices.length);
        else failed();
      },
      (err: unknown) => {
        if (this.inFlight === batch) this.inFlight = undefined;
        failed(err);
      },
    );
  }

  /** Shutdown: timers off; the devices of the batch still out and those changed since, written through this thread's store. */
  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.purgeTimer);
    const pending = this.inFlight?.devices ?? [];
    this.inFlight = undefined;
    // Their current positions: as new as the batch's or newer; an older `at` never overwrites.
    const last = this.records([...pending, ...this.devices.takeChanged()]);
    if (last.length === 0) return;
    try {
      await this.store.putJson(PositionStore.encode(last));
    } catch (err) {
      this.logger.error({ err, devices: last.length }, 'could not write the last positions at shutdown');
    }
  }

  private records(devices: readonly DeviceState[]): PositionRecord[] {
    const batch: PositionRecord[] = [];
    for (const device of devices) {
      batch.push({ deviceId: device.id, payload: JSON.stringify(device.last), timestamp: device.timestamp, at: Date.parse(device.timestamp) });
    }
    return batch;
  }

  private purge(): void {
    this.store.purge(Date.now() - this.config.positionsRetentionS * 1000).catch((err: unknown) => {
      this.storeLog.warn({ err }, 'could not delete old positions');
    });
  }
}
