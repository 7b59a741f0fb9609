/**
 * Trip events to a real Azure Web PubSub service (AZURE_WEBPUBSUB_CONNECTION_STRING), with the
 * official `@azure/web-pubsub` client, as docs/compat/trips.md's backend does: each event to its groups
 * with sendToAll of the group. One queue, sent in order; a failed send is retried with exponential
 * backoff (full jitter) before the next is tried, so the service sees the events in order. A payload
 * over 1 MB is refused with the reference's "Message Too Large", never sent.
 *
 * Only this node's own events are sent (every node takes every event from the bus; the node that
 * wrote it forwards it). The queue is in memory: events still queued when the gateway stops are
 * not sent (they are in the history, and on this gateway's own endpoints).
 */
import type { Logger } from 'pino';
import { WebPubSubServiceClient } from '@azure/web-pubsub';
import { MAX_MESSAGE_BYTES } from '../commands.js';
import { parseConnectionString } from '../connection-string.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import { fullJitterDelay } from '../../../util/backoff.js';

const MAX_QUEUE = 10_000;
const MAX_ATTEMPTS = 8;
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 30_000;

interface Pending {
  readonly hub: string;
  readonly groups: readonly string[];
  readonly data: unknown;
  attempts: number;
}

export class AzureOutbound {
  private readonly queue: Pending[] = [];
  private readonly clients = new Map<string, WebPubSubServiceClient>();
  private sending = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly connectionString: string,
    private readonly stats: RowWriter<IngestMetric>,
    private readonly logger: Logger,
  ) {}

  private client(hub: string): WebPubSubServiceClient {
    let c = this.clients.get(hub);
    if (c === undefined) {
      const insecure = parseConnectionString(this.connectionString).endpoint.startsWith('http:');
      // Our own backoff below: the SDK's retries would reorder nothing but would hide the failures.
      c = new WebPubSubServiceClient(this.connectionString, hub, { allowInsecureConnection: insecure, retryOptions: { maxRetries: 0 } });
      this.clients.set(hub, c);
    }
    return c;
  }

  send(hub: string, groups: readonly string[], data: unknown): void {
    const bytes = Buffer.byteLength(JSON.stringify(data));
    if (bytes > MAX_MESSAGE_BYTES) {
      this.stats.inc('trip_outbound_failed_total');
      this.logger.error({ hub, groups, bytes }, 'Message Too Large: trip event over 1 MB not sent to Azure Web PubSub (compress or paginate)');
      return;
    }
    if (this.queue.length >= MAX_QUEUE) {
      this.stats.inc('trip_outbound_failed_total');
      this.logger.error({ hub, queued: this.queue.length }, 'Azure Web PubSub outbound queue full: trip event dropped');
      return;
    }
    this.queue.push({ hub, groups, data, attempts: 0 });
    this.pump();
  }

  private pump(): void {
    if (this.sending || this.stopped || this.timer !== null || this.queue.length === 0) return;
    this.sending = true;
    const item = this.queue[0];
    const client = this.client(item.hub);
    Promise.all(item.groups.map((g) => client.group(g).sendToAll(item.data as Record<string, unknown>))).then(
      () => {
        this.queue.shift();
        this.stats.inc('trip_outbound_sent_total');
        this.sending = false;
        this.pump();
      },
      (err: unknown) => {
        this.sending = false;
        item.attempts++;
        if (item.attempts >= MAX_ATTEMPTS) {
          this.queue.shift();
          this.stats.inc('trip_outbound_failed_total');
          this.logger.error({ err, hub: item.hub, attempts: item.attempts }, 'Azure Web PubSub send failed; trip event given up');
          this.pump();
          return;
        }
        this.stats.inc('trip_outbound_retries_total');
        const delay = fullJitterDelay(item.attempts, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        this.logger.warn({ err: (err as Error).message, attempt: item.attempts, delayMs: delay }, 'Azure Web PubSub send failed; retrying');
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, delay);
      },
    );
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
  }
}
