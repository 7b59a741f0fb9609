/**
 * The edge's view of telemetry: one slot per device with its uWS topics (one per wire format),
 * subscriber counts, the latest frame bytes per format (for snapshots), and sockets waiting for a
 * snapshot from ingest. Frames from ingest are published to uWS topics as the bytes ingest built:
 * no per-socket encoding, no per-socket loop.
 */
import type { MessagePort } from 'node:worker_threads';
import type { TemplatedApp } from 'uWebSockets.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import type { TelemetryToEdge, TelemetryToIngest } from '../messages.js';
import { readFrameBatch, type FrameVisitor } from '../../../threads/frame-batch.js';
import { unreachable } from '../../../threads/dispatch.js';
import type { StreamSocket } from './stream-socket.js';
import { ALL_DEVICES } from '../device-ids.js';
import { FrameBatch, MAX_BATCH_BYTES } from './all-devices-batch.js';
import { FORMAT_INDEX, type FormatIndex } from '../../../protocol/codec.js';

const FORMAT_NAMES = ['json', 'msgpack'] as const;

class DeviceSlot {
  readonly topics: readonly [string, string];
  readonly subscribers: [number, number] = [0, 0];
  seq = 0;
  /** The frame count when this device last had a frame (what a paused `*` socket missed). */
  stamp = 0;
  /** Latest frame per format; length -1 when the latest message was not encoded in that format. */
  readonly cache: [Buffer | null, Buffer | null] = [null, null];
  readonly cacheLength: [number, number] = [-1, -1];
  /**
   * Sockets subscribed while a fill (snapshot) from ingest is on its way, each with the seq of the
   * last live frame it got meanwhile (-1: none): at the fill, only those behind get the snapshot.
   */
  readonly pending: [Map<StreamSocket, number> | null, Map<StreamSocket, number> | null] = [null, null];
  /**
   * Fills asked for and not yet arrived. Usually 0 or 1; 2 when the last subscriber left and a new
   * one came before the first fill: frames between the two were not encoded in this format, so the
   * sockets wait for the second fill, which has the latest position.
   */
  readonly fills: [number, number] = [0, 0];

  constructor(readonly id: string) {
    this.topics = [`gps.${FORMAT_NAMES[0]}:${id}`, `gps.${FORMAT_NAMES[1]}:${id}`];
  }

  store(format: FormatIndex, bytes: Uint8Array): void {
    let buf = this.cache[format];
    if (buf === null || buf.length < bytes.length) {
      buf = Buffer.allocUnsafeSlow(Math.max(256, bytes.length * 2));
      this.cache[format] = buf;
    }
    buf.set(bytes, 0);
    this.cacheLength[format] = bytes.length;
  }

  cached(format: FormatIndex): Uint8Array | null {
    const length = this.cacheLength[format];
    return length < 0 ? null : this.cache[format]!.subarray(0, length);
  }
}

export class DeviceTopics implements FrameVisitor {
  private readonly slots = new Map<string, DeviceSlot>();
  private readonly byIndex: DeviceSlot[] = [];
  /**
   * `*`, every device: its topics get every frame. A `*` socket joins them only once it has the
   * snapshot of every device (from this edge's cache, or ingest's fill-all), so nothing older
   * than what it already saw can follow.
   */
  private readonly all = new DeviceSlot(ALL_DEVICES);
  private frames = 0;
  /** `*` sockets that asked for batches (`batch=1`): their topic gets one message per interval. */
  private readonly batched = new Set<StreamSocket>();
  private readonly batchSubscribers: [number, number] = [0, 0];
  private readonly batches = [new FrameBatch(0), new FrameBatch(1)] as const;
  private readonly batchTopics = [`gps.${FORMAT_NAMES[0]}.batch:*`, `gps.${FORMAT_NAMES[1]}.batch:*`] as const;
  private batchTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly app: TemplatedApp,
    private readonly ingest: MessagePort,
    private readonly stats: RowWriter<EdgeMetric>,
    private readonly batchMs: number,
  ) {
    this.slots.set(ALL_DEVICES, this.all);
  }

  /** The topic a socket hears a slot on: a batched `*` socket hears the batches. */
  private topicOf(ws: StreamSocket, slot: DeviceSlot): string {
    return slot === this.all && this.batched.has(ws) ? this.batchTopics[ws.format] : slot.topics[ws.format];
  }

  onIngestMessage(message: TelemetryToEdge): void {
    switch (message.t) {
      case 'device':
        this.byIndex[message.index] = this.slot(message.id);
        break;
      case 'frames':
        readFrameBatch(message.buffer, message.length, this);
        break;
      case 'fill':
        this.fill(message.id, message.format, message.seq, message.bytes);
        break;
      case 'fill-all':
        this.fillAll(message.format, message.devices);
        break;
      default:
        unreachable(message);
    }
  }

  /** FrameVisitor: one record of a batch. */
  frame(index: number, seq: number, bytes: Uint8Array, start: number, jsonLength: number, msgpackLength: number): void {
    const slot = this.byIndex[index];
    if (slot === undefined) return;
    slot.seq = seq;
    slot.stamp = ++this.frames;
    this.deliver(slot, 0, bytes, start, jsonLength);
    this.deliver(slot, 1, bytes, start + jsonLength, msgpackLength);
  }

  private deliver(slot: DeviceSlot, format: FormatIndex, bytes: Uint8Array, start: number, length: number): void {
    if (length === 0) {
      slot.cacheLength[format] = -1;
      return;
    }
    const frame = bytes.subarray(start, start + length);
    slot.store(format, frame);
    // Sockets waiting for a snapshot are subscribed already: this live frame reaches them.
    const waiting = slot.pending[format];
    if (waiting !== null) for (const ws of waiting.keys()) waiting.set(ws, slot.seq);
    // Counted from the topic, not from slot.subscribers: a lagging socket is paused off the topic
    // (its positions are conflated, counted in drops_total), and the count must say what was sent.
    if (slot.subscribers[format] > 0) this.publishCounted(slot.topics[format], frame, format);
    const everyDevice = this.all.subscribers[format];
    if (everyDevice > 0) {
      const batchedSockets = this.batchSubscribers[format];
      if (everyDevice > batchedSockets) this.publishCounted(this.all.topics[format], frame, format);
      if (batchedSockets > 0) {
        const batch = this.batches[format];
        batch.add(frame);
        if (batch.bytes > MAX_BATCH_BYTES) this.flushBatch(format);
      }
    }
  }

  private flushBatch(format: FormatIndex): void {
    const batch = this.batches[format];
    const frames = batch.frames;
    const message = batch.take();
    if (message === null) return;
    const receivers = this.app.numSubscribers(this.batchTopics[format]);
    this.app.publish(this.batchTopics[format], message, format === FORMAT_INDEX.msgpack);
    this.stats.inc('deliveries_total', frames * receivers);
  }

  /** Publishes a live frame and counts it once per socket the topic reaches now (one native call). */
  private publishCounted(topic: string, frame: Uint8Array, format: FormatIndex): void {
    const receivers = this.app.numSubscribers(topic);
    if (receivers === 0) return;
    this.app.publish(topic, frame, format === FORMAT_INDEX.msgpack);
    this.stats.inc('deliveries_total', receivers);
  }

  private fillAll(format: FormatIndex, devices: readonly { readonly id: string; readonly seq: number; readonly bytes: Uint8Array }[]): void {
    for (const { id, seq, bytes } of devices) {
      const slot = this.slot(id);
      if (seq >= slot.seq) {
        slot.seq = seq;
        slot.store(format, bytes);
      }
    }
    if (--this.all.fills[format] > 0) return; // another fill-all is coming, with newer positions
    this.all.fills[format] = 0;
    const waiting = this.all.pending[format];
    this.all.pending[format] = null;
    for (const ws of waiting?.keys() ?? []) {
      if (!ws.closed && ws.pausedAt === null) this.joinAll(ws, 0);
    }
  }

  /**
   * A `*` socket gets the last position of every device changed since `since` (a frame count), then
   * live. Returns how many devices' positions it sent.
   */
  private joinAll(ws: StreamSocket, since: number): number {
    const format = ws.format;
    const snapshots: Uint8Array[] = [];
    for (const slot of this.slots.values()) {
      if (slot === this.all || slot.stamp < since) continue;
      const snapshot = slot.cached(format);
      if (snapshot !== null) snapshots.push(snapshot);
    }
    ws.cork(() => {
      if (this.batched.has(ws)) {
        this.flushBatch(format); // what the batch holds is older than the snapshot: out first, to the others
        const batch = FrameBatch.of(format, snapshots);
        if (batch !== null) this.sendSnapshot(ws, batch);
      } else {
        for (const snapshot of snapshots) this.sendSnapshot(ws, snapshot);
      }
      ws.subscribe(this.topicOf(ws, this.all));
    });
    return snapshots.length;
  }

  private fill(id: string, format: FormatIndex, seq: number, bytes: Uint8Array | null): void {
    const slot = this.slot(id);
    if (bytes !== null && seq >= slot.seq) {
      slot.seq = seq;
      slot.store(format, bytes);
    }
    if (--slot.fills[format] > 0) return; // another fill is coming, with a newer position
    slot.fills[format] = 0;
    const waiting = slot.pending[format];
    slot.pending[format] = null;
    const snapshot = slot.cached(format);
    if (waiting === null || snapshot === null) return;
    for (const [ws, seen] of waiting) {
      if (!ws.closed && seen < slot.seq) ws.cork(() => this.sendSnapshot(ws, snapshot));
    }
  }

  private sendSnapshot(ws: StreamSocket, bytes: Uint8Array): void {
    ws.send(bytes, ws.format === FORMAT_INDEX.msgpack);
    this.stats.inc('snapshots_sent_total');
  }

  private slot(id: string): DeviceSlot {
    let slot = this.slots.get(id);
    if (slot === undefined) {
      slot = new DeviceSlot(id);
      this.slots.set(id, slot);
    }
    return slot;
  }

  private post(message: TelemetryToIngest): void {
    this.ingest.postMessage(message);
  }

  /**
   * Subscribes a socket to devices it does not watch yet; returns the ids added. Each device's
   * last position is sent first (now if cached here, else when ingest's fill arrives), then live.
   */
  subscribe(ws: StreamSocket, ids: readonly string[], batch = false): string[] {
    const added: string[] = [];
    const format = ws.format;
    if (ws.devices[0] === ALL_DEVICES) return added; // it already watches every device
    if (ids[0] === ALL_DEVICES) this.unsubscribe(ws, [...ws.devices]);
    for (const id of ids) {
      if (ws.devices.includes(id)) continue;
      if (id === ALL_DEVICES) {
        this.subscribeAll(ws, batch);
        added.push(id);
        continue;
      }
      const slot = this.slot(id);
      if (slot.subscribers[format]++ === 0) {
        // First subscriber on this edge: ingest starts encoding this format and sends a fill.
        (slot.pending[format] ??= new Map()).set(ws, -1);
        slot.fills[format]++;
        this.post({ t: 'interest', id, format, delta: 1 });
      } else if (slot.pending[format] !== null) {
        slot.pending[format]!.set(ws, -1);
      } else {
        const snapshot = slot.cached(format);
        if (snapshot !== null) this.sendSnapshot(ws, snapshot);
      }
      ws.subscribe(slot.topics[format]);
      ws.devices.push(id);
      added.push(id);
    }
    // Pushing onto [] leaves room for 17: a copy holds just what it has (per idle socket, 96 bytes less).
    if (added.length > 0 && ws.devices.length === added.length) ws.devices = ws.devices.slice();
    this.stats.inc('subscriptions', added.length);
    return added;
  }

  private subscribeAll(ws: StreamSocket, batch: boolean): void {
    const format = ws.format;
    ws.devices.push(ALL_DEVICES);
    if (batch) {
      this.batched.add(ws);
      if (this.batchSubscribers[format]++ === 0 && this.batchTimer === null) {
        this.batchTimer = setInterval(() => {
          this.flushBatch(0);
          this.flushBatch(1);
        }, this.batchMs);
      }
    }
    if (this.all.subscribers[format]++ === 0) {
      // First on this edge: ingest starts encoding every device in this format and sends a fill-all.
      (this.all.pending[format] ??= new Map()).set(ws, -1);
      this.all.fills[format]++;
      this.post({ t: 'interest', id: ALL_DEVICES, format, delta: 1 });
    } else if (this.all.pending[format] !== null) {
      this.all.pending[format]!.set(ws, -1);
    } else if (ws.pausedAt === null) {
      this.joinAll(ws, 0); // every frame is encoded in this format already: the cache is current
    }
    // Lagging: it joins when it drains (resume), with everything (-1: no position seen yet).
    if (ws.pausedAt !== null) {
      this.all.pending[format]?.delete(ws);
      ws.pausedAt = [-1];
    }
  }

  /** Unsubscribes a live socket from some of its devices; returns the ids removed. */
  unsubscribe(ws: StreamSocket, ids: readonly string[]): string[] {
    const removed: string[] = [];
    for (const id of ids) {
      const at = ws.devices.indexOf(id);
      if (at < 0) continue;
      ws.devices.splice(at, 1);
      ws.unsubscribe(this.topicOf(ws, this.slots.get(id)!));
      this.forget(ws, id);
      removed.push(id);
    }
    return removed;
  }

  /** Stops the batch timer (shutdown). */
  stop(): void {
    if (this.batchTimer !== null) clearInterval(this.batchTimer);
    this.batchTimer = null;
  }

  /** Called from the close handler: uWS already dropped the topics; release the counts. */
  release(ws: StreamSocket): void {
    for (const id of ws.devices) this.forget(ws, id);
    ws.devices = [];
  }

  private forget(ws: StreamSocket, id: string): void {
    const slot = this.slots.get(id)!;
    const format = ws.format;
    slot.pending[format]?.delete(ws);
    if (slot === this.all && this.batched.delete(ws) && --this.batchSubscribers[format] === 0) {
      this.flushBatch(format);
      if (this.batchSubscribers[0] + this.batchSubscribers[1] === 0) {
        clearInterval(this.batchTimer!);
        this.batchTimer = null;
      }
    }
    this.stats.inc('subscriptions', -1);
    if (--slot.subscribers[format] === 0) this.post({ t: 'interest', id, format, delta: -1 });
  }

  /** A lagging socket stops receiving live frames; remembers where each device was. */
  pause(ws: StreamSocket): void {
    // A batched socket gets what the batch holds first: the frame count below already includes it.
    if (this.batched.has(ws)) this.flushBatch(ws.format);
    ws.pausedAt = ws.devices.map((id) => {
      const slot = this.slots.get(id)!;
      ws.unsubscribe(this.topicOf(ws, slot));
      // `*`: the frame count now, or -1 while its first snapshot is still to come (it gets all of it).
      if (slot === this.all) return slot.pending[ws.format]?.delete(ws) ? -1 : this.frames;
      return slot.seq;
    });
  }

  /**
   * A drained socket gets the latest position of each of its devices, then live frames again.
   * Sent and subscribed in one synchronous block, so no live frame can slip in between.
   * Returns how many positions were conflated away (skipped) while it lagged.
   */
  resume(ws: StreamSocket): number {
    let skipped = 0;
    const pausedAt = ws.pausedAt;
    ws.pausedAt = null;
    if (ws.devices[0] === ALL_DEVICES) {
      // Every device changed since the pause, latest position only: the rest was conflated away.
      const pending = this.all.pending[ws.format];
      if (pending !== null) {
        pending.set(ws, -1); // the fill-all on its way brings it everything
        return 0;
      }
      const since = pausedAt?.[0] ?? -1;
      const sent = this.joinAll(ws, since + 1);
      return since < 0 ? 0 : Math.max(0, this.frames - since - sent);
    }
    ws.cork(() => {
      ws.devices.forEach((id, i) => {
        const slot = this.slots.get(id)!;
        const missed = slot.seq - (pausedAt?.[i] ?? slot.seq);
        if (missed > 0) {
          skipped += missed - 1; // the latest one is delivered now
          const snapshot = slot.cached(ws.format);
          if (snapshot) this.sendSnapshot(ws, snapshot);
        }
        ws.subscribe(slot.topics[ws.format]);
      });
    });
    return skipped;
  }
}
