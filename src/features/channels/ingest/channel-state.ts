/**
 * What ingest's channel pipeline (channel-pipeline.ts) keeps per channel: how far it delivered,
 * what it knows exists, the bus messages held ahead of a gap, and the offsets it delivered from its
 * own store's reply (the local fast path) whose copy from the bus is still to come.
 */
import type { ChannelSpec } from '../channel-config.js';

/** Offsets delivered by the local fast path whose copy from the bus is still to come, per channel, at most. */
const ECHOES_MAX = 4_096;

export interface ChannelState {
  readonly spec: ChannelSpec;
  /** The last offset handed to the edges. */
  delivered: number;
  /** The highest offset known to exist (from the bus or the head poll). */
  wanted: number;
  /** Bus messages ahead of `delivered + 1`, by offset. */
  readonly held: Map<number, Buffer>;
  heldBytes: number;
  repairing: boolean;
  /** The store's head at the previous poll. */
  polled: number;
  /** Offsets this node delivered from its own store's reply (written), until the relay's copy comes back from the bus. */
  readonly echoes: Set<number>;
}

export function newChannelState(spec: ChannelSpec): ChannelState {
  return { spec, delivered: 0, wanted: 0, held: new Map(), heldBytes: 0, repairing: false, polled: 0, echoes: new Set() };
}

/** `offset` was taken from this node's store: its copy from the bus is expected. */
export function rememberEcho(st: ChannelState, offset: number): void {
  if (st.echoes.size >= ECHOES_MAX) st.echoes.delete(st.echoes.values().next().value!); // the bus lost it: forget the oldest
  st.echoes.add(offset);
}

/** True when a bus message at `offset` is the relay's copy of an event already taken locally: expected, not a duplicate. */
export function takeEcho(st: ChannelState, offset: number): boolean {
  return st.echoes.delete(offset) && (offset <= st.delivered || st.held.has(offset));
}
