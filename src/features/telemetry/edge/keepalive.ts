/**
 * The docs/compat/gps-stream.md keep-alive (`{"event":"ping"}` every GATEWAY_KEEPALIVE_MS) for the telemetry
 * stream: one publish per wire format per interval to a topic every stream socket joins, so it costs
 * nothing per socket in JS. One per edge: a second publisher would send every socket two pings.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import { CODECS, type FormatIndex, WIRE_FORMATS } from '../../../protocol/codec.js';
import { KEEPALIVE_EVENT } from '../telemetry-envelope.js';

const KEEPALIVE_TOPICS = ['sys.json:keepalive', 'sys.msgpack:keepalive'] as const;

export class Keepalive {
  private readonly frames = WIRE_FORMATS.map((f) => CODECS[f].encode(KEEPALIVE_EVENT));
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly app: TemplatedApp,
    keepaliveMs: number,
    private readonly stats: RowWriter<EdgeMetric>,
  ) {
    this.timer = setInterval(() => this.beat(), keepaliveMs);
  }

  topic(format: FormatIndex): string {
    return KEEPALIVE_TOPICS[format];
  }

  private beat(): void {
    for (let f = 0; f < KEEPALIVE_TOPICS.length; f++) {
      if (this.app.publish(KEEPALIVE_TOPICS[f], this.frames[f], f === 1)) this.stats.inc('keepalives_sent_total');
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
