/**
 * Slow telemetry consumers (docs/architecture.md, "Delivery semantics": conflate, deliver the latest on drain).
 *
 * A socket whose uWS buffer passes GATEWAY_WS_MAX_BACKPRESSURE (the soft limit) is "lagging":
 * it is unsubscribed from its device topics, so the positions it would miss are conflated and its
 * buffer stops growing. Once the buffer falls below half the soft limit it gets the latest position
 * of each of its devices and is subscribed again; the positions it skipped are counted as drops.
 * A socket still lagging after GATEWAY_SLOW_CONSUMER_TIMEOUT_MS (the hard limit) is closed with
 * 4000 (slow consumer, reconnect).
 *
 * uWS's own maxBackpressure is left unlimited on purpose: past it uWS drops every send silently,
 * close frames included (docs/notes/uws.md), which would turn the documented 4000 into a bare 1006.
 * Memory stays bounded because a lagging socket gets nothing but its close frame; the overshoot is
 * what arrives between two scans (one native call per socket every SCAN_INTERVAL_MS).
 */
import type { Logger } from 'pino';
import type { EdgeConfig } from '../../../config/config.js';
import { CLOSE } from '../../../errors/close-codes.js';
import { endSocket } from '../../../edge/close-socket.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import type { ConnectionRegistry } from '../../../edge/connection-registry.js';
import type { StreamSocket } from './stream-socket.js';
import type { DeviceTopics } from './device-topics.js';

const SCAN_INTERVAL_MS = 100;

export class SlowConsumers {
  private readonly lagging = new Set<StreamSocket>();
  private readonly scanner: NodeJS.Timeout;
  private readonly softLimit: number;
  private readonly lowWatermark: number;

  constructor(
    private readonly config: EdgeConfig,
    private readonly connections: ConnectionRegistry<StreamSocket>,
    private readonly devices: DeviceTopics,
    private readonly stats: RowWriter<EdgeMetric>,
    private readonly logger: Logger,
  ) {
    this.softLimit = config.maxBackpressure;
    this.lowWatermark = config.maxBackpressure / 2;
    this.scanner = setInterval(() => this.scan(), SCAN_INTERVAL_MS);
    this.scanner.unref();
  }

  closed(ws: StreamSocket): void {
    this.lagging.delete(ws);
  }

  /** uWS `drain`: the socket's buffer shrank. */
  drain(ws: StreamSocket): void {
    if (ws.lagSince > 0 && ws.getBufferedAmount() < this.lowWatermark) this.recover(ws);
  }

  private startLagging(ws: StreamSocket): void {
    ws.lagSince = Date.now();
    this.lagging.add(ws);
    this.stats.inc('conflations_total');
    this.devices.pause(ws);
  }

  private recover(ws: StreamSocket): void {
    ws.lagSince = 0;
    this.lagging.delete(ws);
    this.stats.inc('drops_total', this.devices.resume(ws));
  }

  private scan(): void {
    const now = Date.now();
    for (const ws of this.connections.sockets()) {
      if (ws.closed) continue;
      const buffered = ws.getBufferedAmount();
      if (ws.lagSince === 0) {
        if (buffered > this.softLimit) this.startLagging(ws);
      } else if (buffered < this.lowWatermark) {
        this.recover(ws);
      } else if (now - ws.lagSince > this.config.slowConsumerTimeoutMs) {
        this.lagging.delete(ws);
        this.stats.inc('slow_consumer_closes_total');
        this.logger.warn({ laggingMs: now - ws.lagSince, buffered }, 'closing slow consumer');
        endSocket(ws, CLOSE.SLOW_CONSUMER);
      }
    }
  }

  stop(): void {
    clearInterval(this.scanner);
  }
}
