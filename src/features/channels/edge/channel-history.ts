/**
 * Channel events on one edge thread: the history ring of each channel, the uWS topics, and the
 * recovery decision for a client that comes back with `since`.
 *
 * Every event reaches every edge (a turn's events in one message), already rendered in
 * each envelope and format. It is appended to its channel's ring and published once per
 * (envelope, format) that has subscribers:
 *
 *   ch.<envelope>.<format>:<channel>          everyone on the channel
 *   ch.<envelope>.<format>:<channel>@<user>   a notification for one user (channel endpoints)
 *   ch.2.<format>:@<user>                      the same, for that user's /ws/connect sockets (ENVELOPE.CONNECT)
 *
 * Recovery runs in the same synchronous turn as the subscription, so no live event can fall between
 * the replay and the subscription, and none can come twice.
 *
 * The `recovered` rule (docs/design/cluster-store.md §2.6): a replay is exactly `since+1 … head`,
 * contiguous, or it is not given. Each ring is kept contiguous and ending at the head: an event
 * that does not follow the ring's last offset (a hole: history rows missing at start, a row the age
 * bound dropped out of order after the clock stepped back, offsets ingest did not deliver) empties
 * the ring first, so the history starts after the hole (`channel_history_holes_total`); a copy
 * (an offset at or below the head) is neither kept nor published again. `recover` checks the slice
 * anyway, offset by offset, and answers `history_exceeded` rather than a replay with a hole.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { ChannelSpec } from '../channel-config.js';
import { ENVELOPE, type EnvelopeIndex, type EventFrames } from '../envelopes.js';
import { channelTopic, userTopic } from '../channel-topics.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import type { ChannelEventRecord, ChannelsToEdge } from '../messages.js';
import { unreachable } from '../../../threads/dispatch.js';
import { FORMAT_INDEX, type FormatIndex } from '../../../protocol/codec.js';

interface Entry {
  readonly offset: number;
  readonly at: number;
  readonly userId: string | null;
  readonly frames: EventFrames;
}

/** A client's last position: the offset of the last event it saw and the epoch it came from. */
export interface Since {
  readonly offset: number;
  readonly epoch: string;
}

export type Recovery =
  | { readonly kind: 'fresh' }
  | { readonly kind: 'replay'; readonly entries: readonly Entry[] }
  | { readonly kind: 'unrecovered'; readonly reason: 'epoch_changed' | 'history_exceeded' }
  /** `since` is past this edge's head: another edge thread (or node) gave it and this one has not got there yet. */
  | { readonly kind: 'ahead'; readonly head: number };

interface Waiter {
  readonly offset: number;
  readonly done: (reached: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

/** (envelope, format) of each slot of EventFrames, in frameIndex order. */
const FRAME_SLOTS: readonly (readonly [EnvelopeIndex, FormatIndex])[] = Object.values(ENVELOPE).flatMap((e) =>
  Object.values(FORMAT_INDEX).map((f) => [e, f] as const),
);

export class ChannelHistory {
  private epochValue: string | null = null;
  private readonly rings = new Map<string, Entry[]>();
  private readonly heads = new Map<string, number>();
  private readonly specs: Map<string, ChannelSpec>;
  /** Each channel's topic per EventFrames slot. */
  private readonly topics = new Map<string, readonly string[]>();
  /** Open channel sockets per channel on this edge (for the stats routes). */
  readonly connections = new Map<string, number>();
  /** Sockets whose `since` is ahead of the head, per channel (whenAt). */
  private readonly waiters = new Map<string, Set<Waiter>>();

  /** `onAzureEvent` takes the live events of a channel bound to an Azure hub (the trips channel). */
  constructor(
    private readonly app: TemplatedApp,
    specs: readonly ChannelSpec[],
    private readonly stats: RowWriter<EdgeMetric>,
    private readonly onAzureEvent: (event: ChannelEventRecord) => void,
  ) {
    this.specs = new Map(specs.map((s) => [s.name, s]));
    for (const s of specs) {
      this.rings.set(s.name, []);
      this.topics.set(
        s.name,
        FRAME_SLOTS.map(([e, f]) => channelTopic(e, f, s.name)),
      );
      this.connections.set(s.name, 0);
    }
  }

  /** False until ingest's init arrived (the epoch and the history); channel upgrades wait for it. */
  get ready(): boolean {
    return this.epochValue !== null;
  }

  get epoch(): string {
    return this.epochValue ?? '';
  }

  get channelNames(): string[] {
    return [...this.specs.keys()];
  }

  has(channel: string): boolean {
    return this.specs.has(channel);
  }

  head(channel: string): number {
    return this.heads.get(channel) ?? 0;
  }

  /** The oldest offset still in the history (head + 1 when it is empty). */
  oldest(channel: string): number {
    this.expire(channel, Date.now());
    const ring = this.rings.get(channel)!;
    return ring.length > 0 ? ring[0].offset : this.head(channel) + 1;
  }

  historyLength(channel: string): number {
    return this.rings.get(channel)?.length ?? 0;
  }

  onIngestMessage(message: ChannelsToEdge): void {
    switch (message.t) {
      case 'channels-init':
        for (const event of message.history) this.append(event, false);
        for (const [channel, offset] of message.heads) {
          if (offset <= this.head(channel)) continue;
          this.heads.set(channel, offset);
          // The history ends before the head (its last rows could not be read back): nothing in it
          // can be replayed up to the head, so it starts after the head.
          const ring = this.rings.get(channel);
          if (ring !== undefined && ring.length > 0) this.hole(ring);
        }
        this.epochValue = message.epoch;
        break;
      case 'channel-events': {
        const touched = new Set<string>();
        for (const event of message.events) {
          if (!this.append(event, true)) continue;
          this.publish(event);
          if (event.azure !== undefined) this.onAzureEvent(event);
          touched.add(event.channel);
        }
        for (const channel of touched) this.wake(channel);
        break;
      }
      default:
        unreachable(message);
    }
  }

  /**
   * Keeps the event in its channel's ring; false for a copy (at or below the head) or an unknown
   * channel. Not the head's next offset: a hole (live, or inside the history at start, where the ring's
   * last event is the head), and the ring starts again at this event.
   */
  private append(event: ChannelEventRecord, live: boolean): boolean {
    const ring = this.rings.get(event.channel);
    const head = this.head(event.channel);
    if (!ring || event.offset <= head) return false;
    if (event.offset !== head + 1 && (live || ring.length > 0)) this.hole(ring);
    ring.push({ offset: event.offset, at: event.at, userId: event.userId, frames: event.frames });
    this.heads.set(event.channel, event.offset);
    const spec = this.specs.get(event.channel)!;
    if (ring.length > spec.historySize) ring.splice(0, ring.length - spec.historySize);
    this.expire(event.channel, event.at);
    return true;
  }

  /** Offsets are missing after the ring's last event: what it holds can no longer be replayed up to the head. */
  private hole(ring: Entry[]): void {
    ring.length = 0;
    this.stats.inc('channel_history_holes_total');
  }

  private expire(channel: string, now: number): void {
    const ring = this.rings.get(channel);
    if (!ring || ring.length === 0) return;
    const notBefore = now - this.specs.get(channel)!.historyTtlS * 1000;
    let drop = 0;
    while (drop < ring.length && ring[drop].at < notBefore) drop++;
    if (drop > 0) ring.splice(0, drop);
  }

  private publish(event: ChannelEventRecord): void {
    // Channel-wide topics are named once per channel; only a user's notification builds its own.
    const topics = event.userId === null ? this.topics.get(event.channel)! : FRAME_SLOTS.map(([e, f]) => userTopic(e, f, event.channel, event.userId!));
    let deliveries = 0;
    let toUsers = 0;
    for (let i = 0; i < topics.length; i++) {
      const subscribers = this.app.numSubscribers(topics[i]);
      if (subscribers === 0) continue;
      this.app.publish(topics[i], event.frames[i], FRAME_SLOTS[i][1] === 1);
      deliveries += subscribers;
      if (FRAME_SLOTS[i][0] === 2) toUsers += subscribers;
    }
    if (deliveries > 0) this.stats.inc('channel_deliveries_total', deliveries);
    if (toUsers > 0) this.stats.inc('user_messages_sent_total', toUsers); // /ws/connect's total_messages_sent
  }

  /**
   * What a client coming back with `since` gets: every event after it, `since+1 … head` without a
   * hole (replay), or an explicit `unrecovered` when its epoch is not ours or those events are not
   * all in the history. Never part of a gap. `ahead` when `since` is past this edge's head (the
   * caller waits with whenAt, then asks again).
   */
  recover(channel: string, since: Since | null): Recovery {
    if (since === null) return { kind: 'fresh' };
    if (since.epoch !== this.epoch) return { kind: 'unrecovered', reason: 'epoch_changed' };
    const head = this.head(channel);
    if (since.offset > head) return { kind: 'ahead', head };
    if (since.offset === head) return { kind: 'replay', entries: [] };
    const oldest = this.oldest(channel);
    if (since.offset + 1 < oldest) return { kind: 'unrecovered', reason: 'history_exceeded' };
    const ring = this.rings.get(channel)!;
    const entries = ring.slice(since.offset + 1 - oldest);
    // Checked, not assumed (the ring is kept contiguous): exactly since+1 … head, one by one.
    let expected = since.offset + 1;
    for (const entry of entries) {
      if (entry.offset !== expected) break;
      expected++;
    }
    if (expected !== head + 1) {
      this.stats.inc('channel_history_holes_total');
      return { kind: 'unrecovered', reason: 'history_exceeded' };
    }
    return { kind: 'replay', entries };
  }

  /**
   * Calls `done(true)` once the channel's head reaches `offset` (right after the events that took it
   * there, in the same turn), or `done(false)` after `timeoutMs`. Returns a cancel (the socket closed).
   */
  whenAt(channel: string, offset: number, timeoutMs: number, done: (reached: boolean) => void): () => void {
    if (this.head(channel) >= offset) {
      done(true);
      return () => {};
    }
    let set = this.waiters.get(channel);
    if (set === undefined) this.waiters.set(channel, (set = new Set()));
    const waiters = set;
    const waiter: Waiter = {
      offset,
      done,
      timer: setTimeout(() => {
        waiters.delete(waiter);
        done(false);
      }, timeoutMs).unref(),
    };
    waiters.add(waiter);
    return () => {
      clearTimeout(waiter.timer);
      waiters.delete(waiter);
    };
  }

  /** Hands the sockets waiting on this channel whose offset the head has reached to their `done`. */
  private wake(channel: string): void {
    const set = this.waiters.get(channel);
    if (set === undefined || set.size === 0) return;
    const head = this.head(channel);
    for (const waiter of [...set]) {
      if (waiter.offset > head) continue;
      clearTimeout(waiter.timer);
      set.delete(waiter);
      waiter.done(true);
    }
  }

  opened(channel: string): void {
    this.connections.set(channel, (this.connections.get(channel) ?? 0) + 1);
  }

  closed(channel: string): void {
    this.connections.set(channel, (this.connections.get(channel) ?? 1) - 1);
  }
}
