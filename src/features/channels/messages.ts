/** The channels' thread messages (threads/messages.ts composes every feature's). */
import type { EventFrames } from './envelopes.js';
import type { RenderedMessage } from '../azure/frames.js';
import type { LogRow } from '../../store/store.js';

export type ChannelsToEdge =
  /** The channel events ingest took in one turn, in order: one message per edge per turn. */
  | { readonly t: 'channel-events'; readonly events: readonly ChannelEventRecord[] }
  /** Sent once before any channel event: the epoch, each channel's last offset and its history. */
  | { readonly t: 'channels-init'; readonly epoch: string; readonly heads: readonly [string, number][]; readonly history: readonly ChannelEventRecord[] };

export type ChannelsToIngest =
  /**
   * The store wrote outbox rows: relay them now rather than at the next tick. `events`: the rows
   * committed, when the store pool gave them (SQLite), delivered on this node at once (the local
   * fast path, channel-pipeline.ts `written`); the relay publishes them all the same.
   */
  | { readonly t: 'outbox'; readonly events?: readonly LogRow[] }
  /**
   * A client's `since` is ahead of this edge (another node gave that offset): read the store's heads
   * now, without the head poll's grace, so this node catches up within the client's wait.
   */
  | { readonly t: 'catch-up' };

/** A channel event with its offset, rendered in every envelope and format (channels/envelopes.ts). */
export interface ChannelEventRecord {
  readonly channel: string;
  readonly offset: number;
  /** When ingest took it (ms), for the history's age bound. */
  readonly at: number;
  /** A notification for one user; null for everyone on the channel. */
  readonly userId: string | null;
  readonly frames: EventFrames;
  /** A channel bound to an Azure hub: the event as a group message, per group of its metadata.groups. */
  readonly azure?: {
    readonly hub: string;
    readonly writtenAt: number;
    readonly groups: readonly { readonly group: string; readonly message: RenderedMessage }[];
  };
}
