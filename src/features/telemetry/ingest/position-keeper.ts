/**
 * Keeps the device table's last positions across restarts (docs/design/cluster-store.md §4.2).
 * The telemetry path only marks a device changed (device-table.ts); every GATEWAY_POSITIONS_FLUSH_MS
 * this writes the devices changed since the previous write, latest position each, in one statement
 * (store/position-store.ts), never per message. At start, before ingest reports ready and before any
 * edge can ask for a snapshot, the positions accepted within GATEWAY_POSITIONS_RETENTION_S are put
 * back in the table; older rows are deleted then and once a minute.
 *
 * What a hard kill loses: the positions accepted since the last write (at most one interval); a
 * SIGTERM writes them as ingest closes.
 */
import type { Logger } from 'pino';
import type { TelemetryConfig } from '../../../config/config.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import { isValidDeviceId } from '../device-ids.js';
import type { PositionRecord, PositionStore } from '../store/position-store.js';
import type { DeviceTable } from './device-table.js';

const PURGE_MS = 60_000;

export class PositionKeeper {
  private flushTimer: NodeJS.Timeout | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly devices: DeviceTable,
    private readonly store: PositionStore,
    private readonly config: Pick<TelemetryConfig, 'positionsRetentionS' | 'positionsFlushMs'>,
    private readonly stats: RowWriter<IngestMetric>,
    private readonly logger: Logger,
  ) {}

  /** Puts the recent kept positions back in the table; returns how many. Call before any edge asks. */
  restore(now = Date.now()): number {
    const notBefore = now - this.config.positionsRetentionS * 1000;
    this.store.purge(notBefore);
    let restored = 0;
    for (const row of this.store.recent(notBefore)) {
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

  /** Writes the devices changed since the last write; on failure they stay marked for the next one. */
  flush(): void {
    const changed = this.devices.takeChanged();
    if (changed.length === 0) return;
    const started = performance.now();
    const batch: PositionRecord[] = [];
    for (const device of changed) {
      batch.push({ deviceId: device.id, payload: JSON.stringify(device.last), timestamp: device.timestamp, at: Date.parse(device.timestamp) });
    }
    try {
      this.store.put(batch);
      this.stats.inc('positions_flushed_total', batch.length);
    } catch (err) {
      for (const device of changed) this.devices.markChanged(device);
      this.logger.error({ err, devices: batch.length }, 'could not write last positions; kept for the next write');
    }
    this.stats.set('positions_flush_ms', performance.now() - started);
  }

  /** Shutdown: timers off, and what changed since the last write written. */
  close(): void {
    clearInterval(this.flushTimer);
    clearInterval(this.purgeTimer);
    this.flush();
  }

  private purge(): void {
    try {
      this.store.purge(Date.now() - this.config.positionsRetentionS * 1000);
    } catch (err) {
      this.logger.error({ err }, 'could not delete old positions');
    }
  }
}
