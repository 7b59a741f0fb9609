/**
 * Slow telemetry consumers. uWS drops publishes to a socket whose buffer is above maxBackpressure
 * and calls `dropped`. From then on the socket is "lagging": the positions it missed are
 * conflated, and once its buffer falls below half the limit it gets the latest position of each
 * of its devices (DESIGN.md: conflate, deliver the latest on drain). A socket still lagging after
 * GATEWAY_SLOW_CONSUMER_TIMEOUT_MS is closed with 4000 (slow consumer, reconnect).
 */
import type { Logger } from 'pino';
import type { EdgeConfig } from '../config/config.js';
import { CloseCode } from '../errors/close-codes.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import type { StreamSocket } from './stream-socket.js';
import type { TelemetryHub } from './telemetry-hub.js';

export class SlowConsumers {
  private readonly lagging = new Set<StreamSocket>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly lowWatermark: number;

  constructor(
    private readonly config: EdgeConfig,
    private readonly hub: TelemetryHub,
    private readonly stats: RowWriter<EdgeMetric>,
    private readonly logger: Logger,
  ) {
    this.lowWatermark = config.maxBackpressure / 2;
    const every = Math.min(1000, Math.max(50, config.slowConsumerTimeoutMs / 4));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  /** uWS `dropped`: called once per dropped send, or once per flushed batch of publishes. */
  dropped(ws: StreamSocket): void {
    this.stats.inc('drops_total');
    if (ws.lagging || ws.closed) return;
    ws.lagging = true;
    ws.lagSince = Date.now();
    this.lagging.add(ws);
    this.stats.inc('conflations_total');
  }

  /** uWS `drain`: the socket's buffer shrank. */
  drain(ws: StreamSocket): void {
    if (ws.lagging && ws.getBufferedAmount() < this.lowWatermark) this.recover(ws);
  }

  private recover(ws: StreamSocket): void {
    ws.lagging = false;
    this.lagging.delete(ws);
    this.hub.sendLatest(ws);
  }

  closed(ws: StreamSocket): void {
    this.lagging.delete(ws);
  }

  private sweep(): void {
    const now = Date.now();
    for (const ws of this.lagging) {
      if (ws.closed) {
        this.lagging.delete(ws);
      } else if (ws.getBufferedAmount() < this.lowWatermark) {
        this.recover(ws);
      } else if (now - ws.lagSince > this.config.slowConsumerTimeoutMs) {
        this.lagging.delete(ws);
        this.stats.inc('slow_consumer_closes_total');
        this.logger.warn({ laggingMs: now - ws.lagSince, buffered: ws.getBufferedAmount() }, 'closing slow consumer');
        ws.end(CloseCode.SLOW_CONSUMER, 'slow consumer, reconnect');
      }
    }
  }

  stop(): void {
    clearInterval(this.sweeper);
  }
}
