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
 *
 * Nothing that cannot be encoded is committed: a message is bounded before it is parsed (UTF-8,
 * nesting depth: protocol/bounded-json.ts), and its envelopes are rendered before its row joins the
 * batch to commit. A stamped message that is refused anyway is skipped in its origin's order (so
 * the next one is not a gap); when it is this node's own outbox row, the relay dead-letters it
 * rather than publishing it forever. History read back at start that cannot be rendered (written
 * by an older version) is skipped with everything before it on its channel, so a replay never
 * crosses it (recovered:false instead).
 */
import type { Logger } from 'pino';
import type { ChannelsConfig, ChannelSpec } from '../channel-config.js';
import { parseChannelEvent, type ChannelEvent, type Origin } from '../channel-event.js';
import { renderEvent } from '../envelopes.js';
import { MAX_EVENT_BYTES, readStamp, STAMP_BYTES, type Stamp } from '../outbox-event.js';
import { isGroupName } from '../../azure/commands.js';
import { renderMessage } from '../../azure/frames.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import { BoundedJsonError, parseJsonBytes, parseJsonText } from '../../../protocol/bounded-json.js';
import type { EventLog, HistoryRow } from '../store/event-log.js';
import type { ChannelEventRecord, ChannelsToEdge } from '../messages.js';
import { OUTBOX_MAX_ATTEMPTS } from '../store/dead-letters.js';
import type { OutboxRelay } from './outbox-relay.js';

/** History trimming, relayed-outbox cleanup and the outbox_pending sample. */
const TRIM_INTERVAL_MS = 1_000;

type StampedOrigin = Origin & Stamp;

function originOf(value: unknown): StampedOrigin | null {
  if (value === undefined) return null;
  const o = value as Partial<StampedOrigin> | null;
  if (
    o === null ||
    typeof o !== 'object' ||
    typeof o.node !== 'string' ||
    !/^[0-9a-f]{1,32}$/.test(o.node) ||
    !Number.isSafeInteger(o.seq) ||
    !Number.isSafeInteger(o.prev)
  ) {
    throw new GatewayError('GW_ERR_EVENT_INVALID', '"origin" must be {"node","seq","prev"} as the gateway stamps it');
  }
  return o as StampedOrigin;
}

const errorText = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 200);

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
    private readonly maxJsonDepth: number,
    private readonly broadcast: (message: ChannelsToEdge) => void,
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
  initMessage(): ChannelsToEdge {
    const now = Date.now();
    const history: ChannelEventRecord[] = [];
    for (const spec of this.channels.values()) {
      const head = this.heads.get(spec.name) ?? 0;
      let kept: ChannelEventRecord[] = [];
      for (const row of this.store.recent(spec.name, head - spec.historySize, now - spec.historyTtlS * 1000)) {
        try {
          const event = parseJsonText(row.event, { maxDepth: this.maxJsonDepth }) as ChannelEvent;
          kept.push(this.record(spec, row.offset, row.at, event, []));
        } catch (err) {
          // The history must stay contiguous (a replay is since+1 … head, no hole): start after this row.
          this.stats.inc('ingest_poison_messages_total');
          this.log.warn(
            { channel: spec.name, offset: row.offset, bytes: row.event.length, err: errorText(err) },
            'history event cannot be rendered; the history starts after it',
          );
          kept = [];
        }
      }
      history.push(...kept);
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
    return {
      ...record,
      azure: { hub: spec.azureHub, writtenAt, groups: azureGroups.map((group) => ({ group, message: renderMessage(group, 'json', data, null) })) },
    };
  }

  /** One bus message on `<prefix>/<channel>`. */
  handle(channel: string, payload: Buffer): void {
    this.stats.inc('events_received_total');
    const spec = this.channels.get(channel);
    if (spec === undefined) return this.refuse(payload, `unknown channel ${JSON.stringify(channel.slice(0, 64))}`);
    if (payload.byteLength > MAX_EVENT_BYTES + STAMP_BYTES) return this.refuse(payload, `event of ${payload.byteLength} bytes is over ${MAX_EVENT_BYTES}`);
    let event: ChannelEvent;
    let origin: StampedOrigin | null;
    try {
      let value: unknown;
      try {
        value = parseJsonBytes(payload, { maxDepth: this.maxJsonDepth });
      } catch (err) {
        throw new GatewayError('GW_ERR_EVENT_INVALID', err instanceof BoundedJsonError ? `event ${err.detail}` : 'not valid JSON');
      }
      origin = originOf((value as { origin?: unknown } | null)?.origin);
      event = parseChannelEvent(value);
    } catch (err) {
      return this.refuse(payload, err instanceof GatewayError ? err.message : String(err));
    }
    if (origin !== null && !this.admit(origin)) return;
    const offset = (this.heads.get(channel) ?? 0) + 1;
    const at = Date.now();
    const azureGroups = spec.azureHub === null ? [] : azureGroupsOf(event);
    // Rendered before anything is kept: an event that cannot be encoded is never committed.
    let record: ChannelEventRecord;
    let row: HistoryRow;
    try {
      record = this.record(spec, offset, at, event, azureGroups);
      row = { channel, offset, at, event: JSON.stringify(event) };
    } catch (err) {
      this.stats.inc('ingest_poison_messages_total');
      return this.refuse(payload, `event cannot be encoded (${errorText(err)})`);
    }
    if (origin !== null) this.accept(origin);
    if (this.onOwnAzureEvent !== null && azureGroups.length > 0 && origin?.node === this.nodeId) this.onOwnAzureEvent(spec.azureHub!, azureGroups, event.data);
    this.heads.set(channel, offset);
    this.touchedHeads.set(channel, offset);
    this.pendingRows.push(row);
    this.pendingEvents.push(record);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * The duplicate filter; true: the event comes next in its origin's order, take it (then accept).
   * A gap in this node's own order asks the relay to publish again, and counts a miss against the
   * row it lacks: a row that later rows keep overtaking is dead-lettered (OUTBOX_MAX_ATTEMPTS).
   */
  private admit(origin: StampedOrigin): boolean {
    const last = this.lastTaken.get(origin.node);
    const own = origin.node === this.nodeId;
    if (last !== undefined && origin.seq <= last) {
      this.stats.inc('events_duplicates_total');
      return false;
    }
    if (last !== undefined && origin.prev !== last) {
      this.stats.inc('events_gaps_total');
      if (own) return this.ownGap(origin.prev);
      this.log.warn({ node: origin.node, expectedAfter: last, got: origin.seq }, 'events from another node arrived with a gap');
    }
    return true;
  }

  /**
   * One of this node's messages came after a gap (published after `prev`, but `prev` is not the
   * last one taken): the relay publishes again from the row lacking, or, when later rows have
   * overtaken that row OUTBOX_MAX_ATTEMPTS times, it is passed over (dead-lettered). True when the
   * message is next in order after all.
   */
  private ownGap(prev: number): boolean {
    const lacking = this.relay.gap(prev);
    if (lacking === null) return false;
    this.skip(this.nodeId, lacking, `overtaken ${OUTBOX_MAX_ATTEMPTS} times: later events came back from the bus and this one never did`);
    if (prev === this.lastTaken.get(this.nodeId)) return true;
    this.relay.rewind('gap on the way back from the bus');
    return false;
  }

  private accept(origin: StampedOrigin): void {
    this.lastTaken.set(origin.node, origin.seq);
    this.touchedOrigins.set(origin.node, origin.seq);
    if (origin.node === this.nodeId) this.relay.confirm(origin.seq);
  }

  /**
   * Passes over `seq` of `node` without an event (it was refused): the origin's order goes on after
   * it, committed with the next batch; this node's own row goes to the dead letters.
   */
  private skip(node: string, seq: number, why: string): void {
    this.lastTaken.set(node, seq);
    this.touchedOrigins.set(node, seq);
    if (node === this.nodeId) this.relay.deadLetter(seq, why);
    this.scheduleFlush();
  }

  /** A message refused: counted and logged; a stamped one that is next in its origin's order is skipped. */
  private refuse(payload: Buffer, why: string): void {
    this.stats.inc('events_rejected_total');
    const stamp = readStamp(payload);
    this.log.warn({ why, bytes: payload.byteLength, ...(stamp === null ? {} : { node: stamp.node, seq: stamp.seq }) }, 'channel event rejected');
    if (stamp === null) return;
    const last = this.lastTaken.get(stamp.node);
    if (last !== undefined && stamp.seq <= last) return; // a copy of one already passed over
    // Own rows are passed over (dead-lettered) only in order; another node's like its events, gap or not.
    if (stamp.node !== this.nodeId || stamp.prev === last || this.ownGap(stamp.prev)) this.skip(stamp.node, stamp.seq, why);
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
