/**
 * Channel events a backend published on the bus without a position: each is written to the store's
 * log (and its outbox) by this node, in arrival order per channel, and comes back from the relay
 * with its position like any other event. On PostgreSQL every node receives the message and the
 * first to store its digest writes it (store Outbox.publish), so it is logged once.
 */
import { createHash } from 'node:crypto';
import { errorText } from '../../../log/error-text.js';
import type { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { Outbox } from '../../../store/store.js';

/** Messages waiting for the store per channel at most. */
const MAX_QUEUED = 1_000;

interface Queue {
  tail: Promise<void>;
  queued: number;
}

export class ChannelIntake {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly outbox: Pick<Outbox, 'publish'>,
    private readonly stats: RowWriter<IngestMetric>,
    private readonly log: RateLimitedLog,
    /** Asked to publish again what was just written (the relay's nudge). */
    private readonly written: () => void,
  ) {}

  /** Queues a checked event (`json`, the bytes of `payload`); false: too many wait on this channel (refuse it). */
  take(channel: string, json: string, payload: Buffer): boolean {
    let queue = this.queues.get(channel);
    if (queue === undefined) this.queues.set(channel, (queue = { tail: Promise.resolve(), queued: 0 }));
    if (queue.queued >= MAX_QUEUED) return false;
    const digest = createHash('sha256').update(channel).update('\n').update(payload).digest('base64url');
    const q = queue;
    q.queued++;
    q.tail = q.tail.then(async () => {
      try {
        await this.outbox.publish(channel, json, digest);
        this.stats.inc('events_intake_total');
        this.written();
      } catch (err) {
        this.stats.inc('events_rejected_total');
        this.log.warn({ channel, bytes: payload.byteLength, err: errorText(err) }, 'channel event from the bus could not be logged; dropped');
      } finally {
        q.queued--;
      }
    });
    return true;
  }
}
