/**
 * Ingest's part of the watchdog (threads/progress.ts): a heartbeat from a timer in this thread's
 * event loop, and the MQTT probe. While subscribed, each beat publishes an empty QoS 0 message to
 * `<GATEWAY_WATCHDOG_TOPIC>/<node id>`, which this node subscribes; when it comes back through the
 * MQTT message handler, `seen()` marks it. So a client that stops delivering (a handler that threw
 * inside mqtt.js, a half-open connection) is noticed although the event loop still turns. One
 * publish a beat (at most one a second), nothing on the per-message path but one prefix check.
 * Each beat also writes the thread's CPU time (`ingest_cpu_seconds_total`, thread-cpu.ts).
 */
import type { SharedStats } from '../metrics/shared-stats.js';
import type { IngestMetric } from '../metrics/metric-table.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import { beatIntervalMs } from '../threads/progress.js';
import { threadCpuSeconds } from '../threads/thread-cpu.js';

const EMPTY = new Uint8Array(0);

interface ProbeSource {
  readonly subscribed: boolean;
  publish(topic: string, payload: Uint8Array, qos: 0 | 1): void;
}

export class ProgressProbe {
  private timer: NodeJS.Timeout | undefined;
  private readonly row: RowWriter<IngestMetric>;

  constructor(
    private readonly stats: SharedStats,
    private readonly source: ProbeSource,
    readonly topic: string,
    private readonly watchdogMs: number,
  ) {
    this.row = stats.ingestWriter();
  }

  start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), beatIntervalMs(this.watchdogMs));
    this.timer.unref();
  }

  /** The probe came back through the message handler. */
  seen(): void {
    this.stats.setMark('ingest_probe_seen_ms', Date.now());
  }

  stop(): void {
    clearInterval(this.timer);
    this.stats.setMark('ingest_probe_since_ms', 0);
  }

  private beat(): void {
    const now = Date.now();
    this.stats.setMark('ingest_beat_ms', now);
    const cpu = threadCpuSeconds();
    if (cpu !== undefined) this.row.set('ingest_cpu_seconds_total', cpu);
    if (!this.source.subscribed) {
      this.stats.setMark('ingest_probe_since_ms', 0); // not judged while the broker is away: readiness says so
      return;
    }
    if (this.stats.mark('ingest_probe_since_ms') === 0) this.stats.setMark('ingest_probe_since_ms', now);
    this.source.publish(this.topic, EMPTY, 0);
  }
}
