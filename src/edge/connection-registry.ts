/**
 * Every open WebSocket of this edge, so shutdown can close each one with 1001, plus the keep-alive
 * publisher: one publish per wire format per interval to a topic every socket joins, so the
 * reference's 60 s `{"event":"ping"}` costs nothing per socket in JS.
 */
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import { CloseCode } from '../errors/close-codes.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import { CODECS, WIRE_FORMATS } from '../protocol/codec.js';
import { KEEPALIVE_EVENT } from '../protocol/telemetry-envelope.js';

const KEEPALIVE_TOPICS = ['sys.json:keepalive', 'sys.msgpack:keepalive'] as const;

export type ClosableSocket = WebSocket<unknown> & { closed: boolean };

export class ConnectionRegistry<S extends ClosableSocket = ClosableSocket> {
  private readonly open = new Set<S>();
  private readonly keepaliveFrames = WIRE_FORMATS.map((f) => CODECS[f].encode(KEEPALIVE_EVENT));
  private readonly timer: NodeJS.Timeout;
  /** Read on the upgrade path: once true, new connections are refused. */
  closing = false;

  constructor(
    private readonly app: TemplatedApp,
    keepaliveMs: number,
    private readonly stats: RowWriter<EdgeMetric>,
  ) {
    this.timer = setInterval(() => this.keepalive(), keepaliveMs);
  }

  keepaliveTopic(format: 0 | 1): string {
    return KEEPALIVE_TOPICS[format];
  }

  private keepalive(): void {
    for (let f = 0; f < KEEPALIVE_TOPICS.length; f++) {
      if (this.app.publish(KEEPALIVE_TOPICS[f], this.keepaliveFrames[f], f === 1)) this.stats.inc('keepalives_sent_total');
    }
  }

  add(ws: S): void {
    this.open.add(ws);
  }

  /** False when the socket was not registered. */
  delete(ws: S): boolean {
    return this.open.delete(ws);
  }

  get size(): number {
    return this.open.size;
  }

  /** Every open socket (the slow-consumer scan walks these; one set serves both). */
  sockets(): IterableIterator<S> {
    return this.open.values();
  }

  /** Stops keep-alives and sends every socket a 1001 close frame. */
  closeAll(reason: string): void {
    this.closing = true;
    clearInterval(this.timer);
    for (const ws of [...this.open]) {
      if (!ws.closed) ws.cork(() => ws.end(CloseCode.GOING_AWAY, reason));
    }
  }
}
