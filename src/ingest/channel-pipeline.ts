/**
 * Channel events from the bus (`<GATEWAY_CHANNELS_TOPIC>/<channel>`), on the ingest thread:
 * parse once, drop duplicates by origin, give each event the channel's next `offset`, commit the
 * batch to the history in one transaction, render every envelope once and hand the
 * turn's events to each edge in one message.
 *
 * A node's events must be taken in the order its relay published them: an event whose `prev` is
 * not the last one taken from its node is a gap. For this node's own events the relay publishes
 * again from the gap (nothing is taken out of order); for another node's, the event is taken and
 * the gap counted (that node's relay repairs what its own subscription missed, not ours).
 */
import type { Logger } from 'pino';
import type { ChannelsConfig, ChannelSpec } from '../channels/channel-config.js';
import { parseChannelEvent, type ChannelEvent, type Origin } from '../channels/channel-event.js';
import { renderEvent } from '../channels/envelopes.js';
import { isGroupName } from '../azure/commands.js';
import { renderMessage } from '../azure/frames.js';
import { GatewayError } from '../errors/gateway-error.js';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { IngestMetric } from '../metrics/metric-table.js';
import type { EventLog, HistoryRow } from '../store/event-log.js';
import type { ChannelEventRecord, IngestToEdge } from '../threads/messages.js';
import type { OutboxRelay } from './outbox-relay.js';

/** Largest event accepted from the bus. */
export const MAX_EVENT_BYTES = 1024 * 1024;
/** History trimming, relayed-outbox cleanup and the outbox_pending sample. */
const TRIM_INTERVAL_MS = 1_000;

interface StampedOrigin extends Origin {
  readonly prev: number;
}

function originOf(value: unknown): StampedOrigin | null {
  if (value === undefined) return null;
  const o = value as Partial<StampedOrigin> | null;
  if (o === null || typeof o !== 'object' || typeof o.node !== 'string' || !/^[0-9a-f]{1,32}$/.test(o.node)
    || !Number.isSafeInteger(o.seq) || !Number.isSafeInteger(o.prev)) {
    throw new GatewayError('GW_ERR_EVENT_INVALID', '"origin" must be {"node","seq","prev"} as the gateway stamps it');
  }
  return o as StampedOrigin;
}

const userIdOf = (event: ChannelEvent) => (event.kind === 'notification' ? event.userId : null);

/** The Azure groups an event of a hub-bound channel goes to: its `metadata.groups`. */
function azureGroupsOf(event: ChannelEvent): string[] {
  const groups = event.kind === 'entity' ? event.metadata?.groups : undefined;
  return Array.isArray(groups) ? groups.filter(isGroupName) : [];
}

export class ChannelPipeline {
  private readonly channels: Map<string, ChannelSpec>;
  private readonly heads: Map<string, number>;
  private readonly lastTaken: Map<string, number>;
  private pendingRows: HistoryRow[] = [];
  private pendingEvents: ChannelEventRecord[] = [];
  private readonly touchedHeads = new Map<string, number>();
  private readonly touchedOrigins = new Map<string, number>();
  private flushScheduled = false;
  private readonly log: RateLimitedLog;
  private readonly trimmer: NodeJS.Timeout;

  constructor(
    config: ChannelsConfig,
    private readonly store: EventLog,
    private readonly epoch: string,
    private readonly nodeId: string,
    private readonly relay: OutboxRelay,
    private readonly broadcast: (message: IngestToEdge) => void,
    private readonly stats: RowWriter<IngestMetric>,
    logger: Logger,
    /** This node's own events of a hub-bound channel (for the outbound Azure service, when configured). */
    private readonly onOwnAzureEvent: ((hub: string, groups: readonly string[], data: unknown) => void) | null = null,
  ) {
    this.channels = new Map(config.channels.map((c) => [c.name, c]));
    this.heads = store.heads();
    this.lastTaken = store.origins();
    this.lastTaken.set(nodeId, relay.confirmed);
    this.log = new RateLimitedLog(logger);
    this.trimmer = setInterval(() => this.trim(), TRIM_INTERVAL_MS);
  }

  /** What the edges start from: the epoch, every channel's head and its history, rendered. */
  initMessage(): IngestToEdge {
    const now = Date.now();
    const history: ChannelEventRecord[] = [];
    for (const spec of this.channels.values()) {
      const head = this.heads.get(spec.name) ?? 0;
      for (const row of this.store.recent(spec.name, head - spec.historySize, now - spec.historyTtlS * 1000)) {
        const event = JSON.parse(row.event) as ChannelEvent;
        history.push(this.record(spec, row.offset, row.at, event, []));
      }
    }
    return { t: 'channels-init', epoch: this.epoch, heads: [...this.channels.keys()].map((c) => [c, this.heads.get(c) ?? 0]), history };
  }

  /** `azureGroups`: the Azure groups a live event of a hub-bound channel goes to (none for the history). */
  private record(spec: ChannelSpec, offset: number, at: number, event: ChannelEvent, azureGroups: readonly string[]): ChannelEventRecord {
    const channel = spec.name;
    const record = { channel, offset, at, userId: userIdOf(event), frames: renderEvent(event, channel, offset, this.epoch) };
    if (spec.azureHub === null || azureGroups.length === 0) return record;
    const data = Buffer.from(JSON.stringify(event.data));
    const writtenAt = Date.parse(event.timestamp) || at;
    return { ...record, azure: { hub: spec.azureHub, writtenAt, groups: azureGroups.map((group) => ({ group, message: renderMessage(group, 'json', data, null) })) } };
  }

  /** One bus message on `<prefix>/<channel>`. */
  handle(channel: string, payload: Buffer): void {
    this.stats.inc('events_received_total');
    const spec = this.channels.get(channel);
    if (spec === undefined) return this.reject(`unknown channel ${JSON.stringify(channel.slice(0, 64))}`);
    if (payload.byteLength > MAX_EVENT_BYTES) return this.reject(`event of ${payload.byteLength} bytes is over ${MAX_EVENT_BYTES}`);
    let event: ChannelEvent;
    let origin: StampedOrigin | null;
    try {
      let value: unknown;
      try {
        value = JSON.parse(payload.toString('utf8'));
      } catch {
        throw new GatewayError('GW_ERR_EVENT_INVALID', 'not valid JSON');
      }
      origin = originOf((value as { origin?: unknown } | null)?.origin);
      event = parseChannelEvent(value);
    } catch (err) {
      return this.reject(err instanceof GatewayError ? err.message : String(err));
    }
    if (origin !== null && !this.take(origin)) return;
    const azureGroups = spec.azureHub === null ? [] : azureGroupsOf(event);
    if (this.onOwnAzureEvent !== null && azureGroups.length > 0 && origin?.node === this.nodeId) this.onOwnAzureEvent(spec.azureHub!, azureGroups, event.data);
    const offset = (this.heads.get(channel) ?? 0) + 1;
    this.heads.set(channel, offset);
    this.touchedHeads.set(channel, offset);
    const at = Date.now();
    this.pendingRows.push({ channel, offset, at, event: JSON.stringify(event) });
    this.pendingEvents.push(this.record(spec, offset, at, event, azureGroups));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** The duplicate filter; true: take the event. */
  private take(origin: StampedOrigin): boolean {
    const last = this.lastTaken.get(origin.node);
    const own = origin.node === this.nodeId;
    if (last !== undefined && origin.seq <= last) {
      this.stats.inc('events_duplicates_total');
      return false;
    }
    if (last !== undefined && origin.prev !== last) {
      this.stats.inc('events_gaps_total');
      if (own) {
        this.relay.rewind('gap on the way back from the bus');
        return false;
      }
      this.log.warn({ node: origin.node, expectedAfter: last, got: origin.seq }, 'events from another node arrived with a gap');
    }
    this.lastTaken.set(origin.node, origin.seq);
    this.touchedOrigins.set(origin.node, origin.seq);
    if (own) this.relay.confirm(origin.seq);
    return true;
  }

  private reject(why: string): void {
    this.stats.inc('events_rejected_total');
    this.log.warn({ why }, 'channel event rejected');
  }

  /** Commits the turn's events, then hands them to the edges (history first: never an offset that was not kept). */
  flush(): void {
    this.flushScheduled = false;
    if (this.pendingRows.length === 0 && this.touchedOrigins.size === 0) return;
    this.store.commit({ rows: this.pendingRows, heads: this.touchedHeads, origins: this.touchedOrigins });
    const events = this.pendingEvents;
    this.pendingRows = [];
    this.pendingEvents = [];
    this.touchedHeads.clear();
    this.touchedOrigins.clear();
    if (events.length > 0) this.broadcast({ t: 'channel-events', events });
    this.stats.inc('events_published_total', events.length);
    this.relay.nudge();
  }

  private trim(): void {
    this.flush(); // the origin position below must be the committed one
    const now = Date.now();
    for (const spec of this.channels.values()) {
      this.store.trim(spec.name, (this.heads.get(spec.name) ?? 0) - spec.historySize, now - spec.historyTtlS * 1000);
    }
    const relayed = this.lastTaken.get(this.nodeId) ?? 0;
    this.store.dropRelayed(relayed);
    this.stats.set('outbox_pending', this.store.pendingCount(relayed));
  }

  stop(): void {
    clearInterval(this.trimmer);
    this.flush();
  }
}
