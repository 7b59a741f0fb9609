/**
 * What ingest knows of each device: its index (the compact id used in frame batches), its last
 * position, and how many edges want it in each wire format. Only devices some edge wants are
 * encoded at all.
 */
import type { FormatIndex } from '../../../protocol/codec.js';

export interface DeviceState {
  readonly id: string;
  readonly index: number;
  /** Messages seen for this device; carried with each frame so edges can order snapshots. */
  seq: number;
  /** Last position (decoded payload) and its envelope timestamp; null until the first message. */
  last: Record<string, unknown> | null;
  timestamp: string;
  /** Number of edges with at least one subscriber, per format (index 0 json, 1 msgpack). */
  readonly wanted: [number, number];
  /** Its position changed since the last write to the store (position-keeper.ts). */
  dirty: boolean;
}

export class DeviceTable {
  private readonly byId = new Map<string, DeviceState>();
  /** Number of edges with a subscriber to every device (`*`), per format. */
  readonly wantedAll: [number, number] = [0, 0];
  private monitored = 0;
  private known = 0;
  /** The devices whose position changed since `takeChanged`; only tracked when positions are kept. */
  private changed: DeviceState[] = [];

  constructor(
    private readonly onNewDevice: (device: DeviceState) => void,
    private readonly trackChanges = false,
  ) {}

  get(id: string): DeviceState {
    let device = this.byId.get(id);
    if (device === undefined) {
      device = { id, index: this.byId.size, seq: 0, last: null, timestamp: '', wanted: [0, 0], dirty: false };
      this.byId.set(id, device);
      this.onNewDevice(device);
    }
    return device;
  }

  recordPosition(device: DeviceState, value: Record<string, unknown>, timestamp: string): void {
    if (device.last === null) this.known++;
    device.last = value;
    device.timestamp = timestamp;
    device.seq++;
    if (this.trackChanges && !device.dirty) this.markChanged(device);
  }

  /**
   * A position kept from before a restart, with `seq` 0 so that any live frame after it wins the
   * edges' ordering of snapshots. Ignored once the device has a live position.
   */
  restorePosition(id: string, value: Record<string, unknown>, timestamp: string): void {
    const device = this.get(id);
    if (device.last !== null) return;
    this.known++;
    device.last = value;
    device.timestamp = timestamp;
  }

  /** The devices changed since the previous call, each once; their marks are cleared. */
  takeChanged(): DeviceState[] {
    const changed = this.changed;
    this.changed = [];
    for (const device of changed) device.dirty = false;
    return changed;
  }

  /** Marks a device changed again (its write failed); a no-op if it changed meanwhile. */
  markChanged(device: DeviceState): void {
    if (device.dirty) return;
    device.dirty = true;
    this.changed.push(device);
  }

  /** Applies an edge's interest change; returns false when it would go negative (a bug upstream). */
  changeInterest(device: DeviceState, format: FormatIndex, delta: 1 | -1): boolean {
    const before = device.wanted[0] + device.wanted[1];
    const next = device.wanted[format] + delta;
    if (next < 0) return false;
    device.wanted[format] = next;
    const after = device.wanted[0] + device.wanted[1];
    if (before === 0 && after > 0) this.monitored++;
    else if (before > 0 && after === 0) this.monitored--;
    return true;
  }

  /** An edge's first subscriber to every device arrived, or its last one left. */
  changeAllInterest(format: FormatIndex, delta: 1 | -1): boolean {
    const next = this.wantedAll[format] + delta;
    if (next < 0) return false;
    this.wantedAll[format] = next;
    return true;
  }

  /** Devices with a position. */
  *positioned(): IterableIterator<DeviceState> {
    for (const device of this.byId.values()) if (device.last !== null) yield device;
  }

  get devicesMonitored(): number {
    return this.monitored;
  }

  get devicesKnown(): number {
    return this.known;
  }
}
