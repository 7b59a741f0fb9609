/**
 * Channel events on the ingest thread: what the bus brings on `<GATEWAY_CHANNELS_TOPIC>/<channel>`,
 * delivered to the edges strictly in the order of the store's channel log (design §2.4).
 *
 * Every event a gateway writes has its offset from the store, assigned in the write's transaction
 * (store/store.ts ChannelLog), so the same event has the same offset and epoch on every node. The
 * relay puts that position in front of the event on the bus (outbox-event.ts). Here, per channel:
 *
 *   - an offset at or below the last delivered: a copy (a retry, a takeover, a bridge echo), dropped;
 *   - the next offset: rendered once and handed to the edges, then any held ones that now follow;
 *   - an offset ahead of the next: held (bounded), and the gap is read from the store's log first,
 *     so subscribers never see a hole, whatever the broker did. Offsets the log no longer holds
 *     (trimmed by size or age before this node read them) are passed over and counted; the edges'
 *     rings see the jump and start again, so a replay across it is recovered:false, never partial;
 *   - the head poll: every GATEWAY_HEAD_POLL_MS the store's heads are read; a channel whose head is
 *     ahead of this node on two polls in a row (nothing on the bus revealed it) is repaired the same
 *     way. That catches the last write before a bridge cut, or one published while this node's
 *     broker session restarted. After a (re)subscribe the poll runs at once, without the grace.
 *
 * A message without a position (a backend publishing on the topic itself) is written to the log by
 * one node (store Outbox.publish with its digest: on PostgreSQL the first node to write a digest
 * wins) and comes back from the relay with its position.
 *
 * Nothing that cannot be encoded reaches an edge: a message is bounded before it is parsed (UTF-8,
 * nesting depth: protocol/bounded-json.ts) and rendered before it is delivered. A positioned message
 * that fails is read from the log instead; a log row that fails too (written by hand, or by an
 * older version) is passed over, counted. The telemetry path never waits for any of this: only the
 * channel that has a gap waits for its repair.
 */
import type { Logger } from 'pino';
import type { ChannelsConfig, ChannelSpec } from '../channel-config.js';
import { MAX_EVENT_BYTES, positionPrefix, readPosition, STAMP_BYTES } from '../outbox-event.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { errorText } from '../../../log/error-text.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { ChannelLog, LogRow, Outbox } from '../../../store/store.js';
import type { ChannelEventRecord, ChannelsToEdge } from '../messages.js';
import { ChannelIntake } from './channel-intake.js';
import { azureGroupsOf, parseBusEvent, parseLogEvent, renderRecord } from './channel-records.js';
import type { ChannelEvent } from '../channel-event.js';
import { newChannelState, rememberEcho, takeEcho, type ChannelState } from './channel-state.js';

/** The log's trim (each channel's history size and age): the edges' rings bound what is replayed, this bounds the store. */
const TRIM_INTERVAL_MS = 5_000;
/** Rows read from the log per repair read. */
const REPAIR_BATCH = 500;
/** Events held ahead of a gap per channel, at most (beyond, the log has them anyway). */
const HOLD_MAX_EVENTS = 1_000;
const HOLD_MAX_BYTES = 4 * 1024 * 1024;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/** Catch-up reads of the heads asked by the edges, at most one per this interval. */
const CATCH_UP_MIN_MS = 100;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export interface PipelineStore {
  readonly log: ChannelLog;
  readonly outbox: Pick<Outbox, 'publish'>;
}

export class ChannelPipeline {
  private readonly channels = new Map<string, ChannelState>();
  private pendingEvents: ChannelEventRecord[] = [];
  private flushScheduled = false;
  private readonly log: RateLimitedLog;
  private readonly timers: NodeJS.Timeout[] = [];
  private epoch = '';
  private ready = false;
  private stopped = false;
  private polling = false;
  private lastCatchUp = 0;
  private readonly intakes: ChannelIntake;

  constructor(
    config: ChannelsConfig,
    private readonly store: PipelineStore,
    private readonly headPollMs: number,
    private readonly maxJsonDepth: number,
    private readonly broadcast: (message: ChannelsToEdge) => void,
    private readonly stats: RowWriter<IngestMetric>,
    logger: Logger,
    /** Asked to publish again what was just written (the relay's nudge). */
    written: () => void,
  ) {
    for (const spec of config.channels) this.channels.set(spec.name, newChannelState(spec));
    this.log = new RateLimitedLog(logger);
    this.intakes = new ChannelIntake(store.outbox, stats, this.log, written);
  }

  /**
   * Reads the store's epoch, every channel's head and its history, and returns what the edges start
   * from; the channels are delivered from those heads on. Bus messages that came before are
   * read from the log after it.
   */
  async init(): Promise<Extract<ChannelsToEdge, { t: 'channels-init' }>> {
    this.epoch = await this.store.log.epoch();
    const heads = await this.store.log.heads();
    const now = Date.now();
    const history: ChannelEventRecord[] = [];
    for (const st of this.channels.values()) {
      const { spec } = st;
      const head = heads.get(spec.name) ?? 0;
      let kept: ChannelEventRecord[] = [];
      for (const row of await this.store.log.recent(spec.name, head - spec.historySize, now - spec.historyTtlS * 1000)) {
        const record = this.fromLog(st, row);
        // The history must stay contiguous (a replay is since+1 … head, no hole): start after a row that fails.
        if (record === null) kept = [];
        else kept.push(record);
      }
      history.push(...kept);
      st.delivered = head;
      st.polled = head;
      st.wanted = Math.max(st.wanted, head);
    }
    this.ready = true;
    this.timers.push(setInterval(() => void this.trim(), TRIM_INTERVAL_MS));
    if (this.headPollMs > 0) this.timers.push(setInterval(() => void this.poll(true), this.headPollMs));
    // Bus messages that came while the heads were read (wanted above the head) are read from the log now.
    setImmediate(() => {
      for (const st of this.channels.values()) if (st.wanted > st.delivered) void this.repair(st);
    });
    return { t: 'channels-init', epoch: this.epoch, heads: [...this.channels.values()].map((st) => [st.spec.name, st.delivered]), history };
  }

  private record(spec: ChannelSpec, offset: number, at: number, event: ChannelEvent, azureGroups: readonly string[]): ChannelEventRecord {
    return renderRecord(spec, offset, at, event, azureGroups, this.epoch);
  }

  /** A log row rendered, or null (counted and logged) when it cannot be. */
  private fromLog(st: ChannelState, row: LogRow): ChannelEventRecord | null {
    try {
      const event = parseLogEvent(row, this.maxJsonDepth);
      return this.record(st.spec, row.offset, row.at, event, []);
    } catch (err) {
      this.stats.inc('ingest_poison_messages_total');
      this.log.warn(
        { channel: st.spec.name, offset: row.offset, bytes: String(row.event).length, err: errorText(err) },
        'logged event cannot be rendered; passed over',
      );
      return null;
    }
  }

  /** One bus message on `<prefix>/<channel>`. */
  handle(channel: string, payload: Buffer): void {
    this.stats.inc('events_received_total');
    const st = this.channels.get(channel);
    if (st === undefined) return this.refuse(payload, `unknown channel ${JSON.stringify(channel.slice(0, 64))}`);
    if (payload.byteLength > MAX_EVENT_BYTES + STAMP_BYTES) return this.refuse(payload, `event of ${payload.byteLength} bytes is over ${MAX_EVENT_BYTES}`);
    const position = readPosition(payload);
    if (position === null) return this.intake(st, payload);
    if (!this.ready) {
      st.wanted = Math.max(st.wanted, position.offset); // read from the log once the heads are known
      return;
    }
    if (position.epoch !== this.epoch)
      return this.refuse(payload, `epoch ${position.epoch} is not this store's (${this.epoch}): another cluster or an old database`);
    // The relay's copy of an event this node already took from its own store (written): expected, not a duplicate.
    if (takeEcho(st, position.offset)) return;
    this.positioned(st, position.offset, position.at, payload, true);
  }

  /**
   * The local fast path (docs/design/cluster-store.md §2.4): rows this node's store pool has just
   * committed (an edge's `outbox` message, with the store's reply; SQLite), taken now as if the bus
   * had brought them, so a subscriber on this node does not wait for the broker's round trip. They
   * are in the log and the outbox already: the relay publishes them all the same (other nodes,
   * backends, the at-least-once record), and the bus's copy is dropped by offset. Order is the
   * log's as for any bus message: an offset ahead of the next is held and the gap read from the log.
   */
  written(rows: readonly LogRow[]): void {
    for (const row of rows) {
      const st = this.channels.get(row.channel);
      if (st === undefined) continue;
      if (!this.ready) {
        st.wanted = Math.max(st.wanted, row.offset); // read from the log once the heads are known
        continue;
      }
      rememberEcho(st, row.offset);
      this.stats.inc('events_local_total');
      this.positioned(st, row.offset, row.at, Buffer.from(positionPrefix(row.offset, this.epoch, row.at) + row.event.slice(1)), false);
    }
  }

  /** A positioned event (from the bus, or written on this node): delivered in offset order, held ahead of a gap, or dropped as a copy. */
  private positioned(st: ChannelState, offset: number, at: number, payload: Buffer, fromBus: boolean): void {
    if (offset <= st.delivered || st.held.has(offset)) {
      if (fromBus) this.stats.inc('events_duplicates_total');
      return;
    }
    st.wanted = Math.max(st.wanted, offset);
    if (offset === st.delivered + 1) {
      this.deliverBus(st, offset, at, payload);
      this.drainHeld(st);
      if (st.wanted > st.delivered) void this.repair(st);
      return;
    }
    this.stats.inc('events_gaps_total');
    if (st.held.size < HOLD_MAX_EVENTS && st.heldBytes + payload.byteLength <= HOLD_MAX_BYTES) {
      // A copy: the payload may be a slice of the MQTT client's read buffer.
      st.held.set(offset, Buffer.from(payload));
      st.heldBytes += payload.byteLength;
    }
    void this.repair(st);
  }

  /** A bus message's event; throws GW_ERR_EVENT_INVALID. */
  private parse(payload: Buffer, at: number): ChannelEvent {
    return parseBusEvent(payload, at, this.maxJsonDepth);
  }

  /** Delivers a positioned bus message, or (when it cannot be rendered) leaves its offset to the repair from the log. */
  private deliverBus(st: ChannelState, offset: number, at: number, payload: Buffer): void {
    let record: ChannelEventRecord;
    try {
      const event = this.parse(payload, at);
      record = this.record(st.spec, offset, at, event, st.spec.azureHub === null ? [] : azureGroupsOf(event));
    } catch (err) {
      this.stats.inc('events_rejected_total');
      this.log.warn(
        { channel: st.spec.name, offset, bytes: payload.byteLength, why: errorText(err) },
        'channel event from the bus refused; reading it from the log',
      );
      return;
    }
    this.deliver(st, record);
  }

  private deliver(st: ChannelState, record: ChannelEventRecord): void {
    st.delivered = record.offset;
    this.pendingEvents.push(record);
    this.scheduleFlush();
  }

  /** Held messages that now follow the last delivered. */
  private drainHeld(st: ChannelState): void {
    for (let next = st.held.get(st.delivered + 1); next !== undefined; next = st.held.get(st.delivered + 1)) {
      const offset = st.delivered + 1;
      st.held.delete(offset);
      st.heldBytes -= next.byteLength;
      const position = readPosition(next)!;
      this.deliverBus(st, offset, position.at, next);
      if (st.delivered !== offset) return; // refused: the repair reads it from the log
    }
  }

  /** Fills st.delivered + 1 … st.wanted from the store's log; one repair per channel at a time. */
  private async repair(st: ChannelState): Promise<void> {
    if (st.repairing || this.stopped) return;
    st.repairing = true;
    let failures = 0;
    try {
      while (st.wanted > st.delivered && !this.stopped) {
        this.drainHeld(st);
        if (st.wanted <= st.delivered) break;
        const from = st.delivered + 1;
        // Up to the first held message: what the bus brought is delivered as it came.
        let to = Math.min(st.wanted, from + REPAIR_BATCH - 1);
        for (const offset of st.held.keys()) if (offset <= to) to = offset - 1;
        let rows: LogRow[];
        try {
          this.stats.inc('events_gap_repairs_total');
          rows = await this.store.log.range(st.spec.name, from, to, REPAIR_BATCH);
          failures = 0;
        } catch (err) {
          this.log.warn({ channel: st.spec.name, from, to, err: errorText(err) }, 'cannot read the channel log to fill a gap; trying again');
          await delay(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** failures++));
          continue;
        }
        this.fill(st, from, to, rows);
      }
    } finally {
      st.repairing = false;
    }
  }

  /** Delivers what the log returned for from…to, passing over what it no longer holds. */
  private fill(st: ChannelState, from: number, to: number, rows: readonly LogRow[]): void {
    const firstHeld = rows.length > 0 ? rows[0].offset : to + 1;
    if (firstHeld > from && st.delivered < firstHeld - 1) {
      // Trimmed before this node read them (only a trim makes a hole in the log).
      this.stats.inc('events_gap_unrepairable_total', firstHeld - 1 - st.delivered);
      this.log.warn(
        { channel: st.spec.name, from: st.delivered + 1, to: firstHeld - 1 },
        'events no longer in the log were passed over; replays across them are recovered:false',
      );
      st.delivered = firstHeld - 1;
    }
    for (const row of rows) {
      if (row.offset !== st.delivered + 1) continue; // delivered meanwhile from the bus
      const held = st.held.get(row.offset);
      if (held !== undefined) {
        st.held.delete(row.offset);
        st.heldBytes -= held.byteLength;
      }
      const record = this.fromLog(st, row);
      if (record === null) st.delivered = row.offset;
      else {
        this.stats.inc('events_gap_repaired_total');
        this.deliver(st, record);
      }
    }
    for (const [offset, payload] of st.held) {
      if (offset > st.delivered) continue;
      st.held.delete(offset);
      st.heldBytes -= payload.byteLength;
    }
  }

  /**
   * The head poll. `grace`: repair only a channel that was behind at the previous poll too (an event
   * published a moment ago is still on its way over the bus).
   */
  async poll(grace: boolean): Promise<void> {
    if (!this.ready || this.polling || this.stopped) return;
    this.polling = true;
    try {
      const heads = await this.store.log.heads();
      for (const st of this.channels.values()) {
        const head = heads.get(st.spec.name) ?? 0;
        const target = grace ? Math.min(head, st.polled) : head;
        st.polled = head;
        if (target <= st.delivered) continue;
        st.wanted = Math.max(st.wanted, target);
        if (!st.repairing) {
          this.stats.inc('events_head_poll_repairs_total');
          void this.repair(st);
        }
      }
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'cannot read the channel heads from the store');
    } finally {
      this.polling = false;
    }
  }

  /** An edge has a client whose `since` is ahead of this node: read the heads now (at most every CATCH_UP_MIN_MS). */
  catchUp(): void {
    const now = Date.now();
    if (now - this.lastCatchUp < CATCH_UP_MIN_MS) return;
    this.lastCatchUp = now;
    void this.poll(false);
  }

  /** The MQTT client (re)subscribed: what was published meanwhile is read from the log now. */
  subscribed(): void {
    void this.poll(false);
  }

  /** A message without a position (a backend on the bus): checked like any event, then logged by the store (channel-intake.ts). */
  private intake(st: ChannelState, payload: Buffer): void {
    try {
      this.parse(payload, Date.now());
    } catch (err) {
      return this.refuse(payload, err instanceof GatewayError ? err.message : errorText(err));
    }
    if (!this.intakes.take(st.spec.name, payload.toString('utf8'), payload)) this.refuse(payload, 'the store is behind: too many events waiting to be logged');
  }

  /** A message refused: counted and logged (never its payload). */
  private refuse(payload: Buffer, why: string): void {
    this.stats.inc('events_rejected_total');
    this.log.warn({ why, bytes: payload.byteLength }, 'channel event rejected');
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Hands the turn's events to the edges, in one message. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pendingEvents.length === 0) return;
    const events = this.pendingEvents;
    this.pendingEvents = [];
    this.broadcast({ t: 'channel-events', events });
    this.stats.inc('events_published_total', events.length);
  }

  private async trim(): Promise<void> {
    const now = Date.now();
    for (const st of this.channels.values()) {
      try {
        await this.store.log.trim(st.spec.name, st.delivered - st.spec.historySize, now - st.spec.historyTtlS * 1000);
      } catch (err) {
        this.log.warn({ channel: st.spec.name, err: errorText(err) }, 'cannot trim the channel log');
        return;
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.flush();
  }
}
