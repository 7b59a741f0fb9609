/**
 * Slow channel consumers (docs/architecture.md, "Delivery semantics": events are never silently dropped). A channel socket cannot
 * be conflated like telemetry: it is closed with 4000 ("slow consumer, reconnect") when its unsent
 * bytes pass GATEWAY_EVENT_MAX_BUFFER_BYTES, or when it stays over GATEWAY_WS_MAX_BACKPRESSURE for
 * GATEWAY_SLOW_CONSUMER_TIMEOUT_MS. It then reconnects with `since` and gets what it missed from
 * the history. uWS's own limit is off (see slow-consumers.ts), so nothing is dropped before the close.
 */
import type { Logger } from 'pino';
import type { EdgeConfig } from '../../../config/config.js';
import { CLOSE } from '../../../errors/close-codes.js';
import { endSocket } from '../../../edge/close-socket.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import type { ChannelSocket } from './channel-socket.js';
import type { ConnectionRegistry } from '../../../edge/connection-registry.js';

const SCAN_INTERVAL_MS = 100;

export class ChannelBackpressure {
  private readonly scanner: NodeJS.Timeout;

  constructor(
    private readonly edge: EdgeConfig,
    private readonly maxBufferBytes: number,
    private readonly sockets: ConnectionRegistry<ChannelSocket>,
    private readonly stats: RowWriter<EdgeMetric>,
    private readonly logger: Logger,
  ) {
    this.scanner = setInterval(() => this.scan(), SCAN_INTERVAL_MS);
    this.scanner.unref();
  }

  private scan(): void {
    const now = Date.now();
    for (const ws of this.sockets.sockets()) {
      if (ws.closed) continue;
      const buffered = ws.getBufferedAmount();
      if (buffered <= this.edge.maxBackpressure) {
        ws.lagSince = 0;
        continue;
      }
      if (ws.lagSince === 0) ws.lagSince = now;
      if (buffered > this.maxBufferBytes || now - ws.lagSince > this.edge.slowConsumerTimeoutMs) {
        this.stats.inc('slow_consumer_closes_total');
        this.logger.warn({ channel: ws.channel, buffered, laggingMs: now - ws.lagSince }, 'closing slow channel consumer');
        endSocket(ws, CLOSE.SLOW_CONSUMER);
      }
    }
  }

  stop(): void {
    clearInterval(this.scanner);
  }
}
