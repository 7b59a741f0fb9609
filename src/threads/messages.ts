/**
 * Messages between threads. Ingest → edge messages go over one MessagePort per edge, so their
 * order is the order ingest sent them in (the snapshot protocol below relies on it).
 *
 * Snapshot protocol: when an edge gets its first subscriber to (device, format) it sends
 * `interest +1`; ingest flushes pending frames, answers that edge with a `fill` holding the last
 * position in that format (or `bytes: null` if it has none) and from then on encodes the format
 * for the device. Frames for a device after the fill therefore always carry the format.
 */
import type { EventFrames } from '../features/channels/envelopes.js';
import type { AzureCommand } from '../features/azure/commands.js';
import type { RenderedMessage } from '../features/azure/frames.js';
import type { AzurePermission } from '../features/azure/permissions.js';
import type { AzureSessionState } from '../features/azure/edge/azure-connection.js';

export type IngestToEdge =
  | { readonly t: 'device'; readonly index: number; readonly id: string }
  | { readonly t: 'frames'; readonly buffer: ArrayBuffer; readonly length: number }
  | { readonly t: 'fill'; readonly id: string; readonly format: 0 | 1; readonly seq: number; readonly bytes: Uint8Array | null }
  /** The fill for `interest` in `*` (every device): each device's last position in that format. */
  | { readonly t: 'fill-all'; readonly format: 0 | 1; readonly devices: readonly { readonly id: string; readonly seq: number; readonly bytes: Uint8Array }[] }
  /** A share link revoked anywhere (it came back over the bus). */
  | { readonly t: 'revoked'; readonly jti: string; readonly expiresAt: number }
  /** A user/role event from the bus, encoded once per format; target `all`, `user/<id>` or `role/<role>`. */
  | { readonly t: 'event'; readonly target: string; readonly json: string; readonly msgpack: Uint8Array }
  /** The channel events ingest took in one turn, in order: one message per edge per turn. */
  | { readonly t: 'channel-events'; readonly events: readonly ChannelEventRecord[] }
  /** An Azure Web PubSub command from the bus, checked; a send comes rendered once. */
  | { readonly t: 'azure'; readonly hub: string; readonly command: AzureCommand; readonly message: RenderedMessage | null }
  /** The answer to one edge's azure-query. */
  | { readonly t: 'azure-answer'; readonly id: number; readonly value: AzureAnswer }
  /**
   * Session handover (edge/azure-sessions.ts): to the asking edge, `start` when its question went to the
   * owner (hold the hub's traffic from here) and then the answer; to the owner, the question.
   */
  | { readonly t: 'azure-handover-start'; readonly id: number; readonly hub: string }
  | { readonly t: 'azure-handover'; readonly id: number; readonly session: AzureSessionState | null }
  | { readonly t: 'azure-handover-ask'; readonly id: number; readonly hub: string; readonly connectionId: string; readonly reconnectionToken: string }
  /** Test only (threads/test-hooks.ts): for edge `edge` to wedge itself or crash a store pool thread. */
  | { readonly t: 'test-hook'; readonly hook: 'wedge-edge' | 'crash-store-pool' | 'break-store-pool'; readonly edge: number }
  /** Sent once before any channel event: the epoch, each channel's last offset and its history. */
  | { readonly t: 'channels-init'; readonly epoch: string; readonly heads: readonly [string, number][]; readonly history: readonly ChannelEventRecord[] };

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
  readonly azure?: { readonly hub: string; readonly writtenAt: number; readonly groups: readonly { readonly group: string; readonly message: RenderedMessage }[] };
}

/** What an edge asks ingest's node-wide directory of Azure connections (the REST existence checks). */
export type AzureQuery =
  | { readonly kind: 'connection' | 'group' | 'user' | 'groupMembers'; readonly name: string }
  | { readonly kind: 'users' }
  | { readonly kind: 'permission'; readonly connectionId: string; readonly permission: AzurePermission; readonly targetName?: string };

export type AzureAnswer = boolean | readonly string[] | readonly { readonly connectionId: string; readonly userId: string | null }[];

/** An edge's Azure connections as they change (ingest keeps the node-wide directory from these). */
export type AzurePresence =
  | { readonly op: 'open'; readonly id: string; readonly userId: string | null; readonly roles: readonly string[]; readonly groups: readonly string[] }
  | { readonly op: 'close'; readonly id: string }
  | { readonly op: 'join' | 'leave'; readonly id: string; readonly group: string };

export type EdgeToIngest =
  | { readonly t: 'interest'; readonly id: string; readonly format: 0 | 1; readonly delta: 1 | -1 }
  /** Publish to the bus (revocations, events from REST): every node, this one included, gets it back. */
  | { readonly t: 'publish'; readonly topic: string; readonly payload: string | Uint8Array; readonly qos: 0 | 1 }
  /** The store wrote outbox rows: relay them now rather than at the next tick. */
  | { readonly t: 'outbox' }
  | { readonly t: 'azure-presence'; readonly hub: string; readonly change: AzurePresence }
  | { readonly t: 'azure-query'; readonly id: number; readonly hub: string; readonly query: AzureQuery }
  /** A client resumes here a session this edge does not hold; ingest asks the owner. */
  | { readonly t: 'azure-handover-ask'; readonly id: number; readonly hub: string; readonly connectionId: string; readonly reconnectionToken: string }
  /** The owner's answer to ingest's azure-handover-ask `id`. */
  | { readonly t: 'azure-handover-state'; readonly id: number; readonly session: AzureSessionState | null };

export type MainToWorker = { readonly t: 'close' };

export type WorkerToMain =
  | { readonly t: 'ready'; readonly port?: number }
  | { readonly t: 'closed' }
  | { readonly t: 'failed'; readonly message: string };
