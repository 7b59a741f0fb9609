/**
 * One Azure Web PubSub client connection on an edge thread. Its state outlives its socket for a
 * reliable client (json.reliable.webpubsub.azure.v1): when the socket drops, the groups, roles,
 * processed ack ids and the messages not yet sequence-acked stay here for the client to resume
 * (azure-sessions.ts), and the next socket takes its place.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { Member } from '../membership.js';

/** 0 simple (raw payloads), 1 json.webpubsub.azure.v1, 2 json.reliable.webpubsub.azure.v1. */
export type ClientKind = 0 | 1 | 2;
export const SIMPLE = 0;
export const JSON_PUBSUB = 1;
export const RELIABLE = 2;

export const SUBPROTOCOL_KINDS: Readonly<Record<string, ClientKind>> = {
  'json.webpubsub.azure.v1': JSON_PUBSUB,
  'json.reliable.webpubsub.azure.v1': RELIABLE,
};

/** Per-socket data (uWS userData). */
export interface AzureSocketData {
  readonly conn: AzureConnection;
  /** Set at the upgrade: this socket resumes `conn` rather than opening it. */
  readonly resume: boolean;
  /** Set at the upgrade: the socket is closed at open with this reason (a recovery that failed). */
  readonly refuse: string | null;
  /** Another socket took over the session; this one's close changes nothing. */
  replaced: boolean;
  frameTokens: number;
  frameAt: number;
}

export type AzureSocket = WebSocket<AzureSocketData>;

/** A simple client's `webpubsub_mode=sendToGroup&group=…`; null: sendEvent (the default). */
export type SimpleMode = { readonly group: string } | null;

const MAX_REMEMBERED_ACK_IDS = 1024;

/**
 * A reliable session as it crosses from one edge thread to another (azure-sessions.ts, handOver/adopt):
 * everything the client's resume needs, with each unacknowledged frame in an exact-size copy.
 */
export interface AzureSessionState {
  readonly id: string;
  readonly hub: string;
  readonly userId: string | null;
  readonly roles: readonly string[];
  readonly groups: readonly string[];
  readonly reconnectionToken: string;
  readonly lastSeq: number;
  readonly unacked: readonly { readonly seq: number; readonly pubsub: Uint8Array }[];
  readonly ackIds: readonly number[];
  /** The upstream's ce-connectionState and the subprotocol the connection took (event handlers). */
  readonly upstream?: { readonly state: string | null; readonly subprotocol: string };
}

export class AzureConnection implements Member {
  readonly groups = new Set<string>();
  readonly roles: Set<string>;
  ws: AzureSocket | null = null;
  /** Ended for good (closed by the service, or its session expired): never resumed. */
  ended = false;
  /** The last sequenceId given (reliable). */
  lastSeq = 0;
  /** Messages sent but not yet sequence-acked, oldest first (reliable). */
  readonly unacked: { readonly seq: number; readonly pubsub: Uint8Array }[] = [];
  unackedBytes = 0;
  /** When the socket dropped (ms); 0 while attached. */
  detachedAt = 0;
  private readonly ackIds = new Set<number>();
  /** The connection state the upstream event handler set (ce-connectionState), sent back with each event. */
  upstreamState: string | null = null;
  /** The WebSocket subprotocol the connection took ('' for none), for ce-subprotocol. */
  subprotocol = '';
  /** Why it ended, for the upstream `disconnected` event. */
  endReason: string | null = null;

  constructor(
    readonly id: string,
    readonly hub: string,
    readonly userId: string | null,
    roles: readonly string[],
    readonly kind: ClientKind,
    readonly reconnectionToken: string | null,
    readonly mode: SimpleMode,
  ) {
    this.roles = new Set(roles);
  }

  /** Remembers a request's ackId; false when it was processed before (the ack says Duplicate). */
  firstTime(ackId: number): boolean {
    if (this.ackIds.has(ackId)) return false;
    this.ackIds.add(ackId);
    if (this.ackIds.size > MAX_REMEMBERED_ACK_IDS) this.ackIds.delete(this.ackIds.values().next().value!);
    return true;
  }

  /** This reliable session, to be taken over by another edge thread. */
  state(): AzureSessionState {
    return {
      id: this.id,
      hub: this.hub,
      userId: this.userId,
      roles: [...this.roles],
      groups: [...this.groups],
      reconnectionToken: this.reconnectionToken!,
      lastSeq: this.lastSeq,
      unacked: this.unacked.map(({ seq, pubsub }) => ({ seq, pubsub: new Uint8Array(pubsub) })),
      ackIds: [...this.ackIds],
      upstream: { state: this.upstreamState, subprotocol: this.subprotocol },
    };
  }

  /** A reliable session another edge thread handed over, detached until its client's socket arrives. */
  static fromState(state: AzureSessionState): AzureConnection {
    const conn = new AzureConnection(state.id, state.hub, state.userId, state.roles, RELIABLE, state.reconnectionToken, null);
    for (const group of state.groups) conn.groups.add(group);
    conn.lastSeq = state.lastSeq;
    for (const entry of state.unacked) {
      conn.unacked.push(entry);
      conn.unackedBytes += entry.pubsub.length;
    }
    for (const ackId of state.ackIds) conn.ackIds.add(ackId);
    conn.upstreamState = state.upstream?.state ?? null;
    conn.subprotocol = state.upstream?.subprotocol ?? '';
    return conn;
  }

  /** Drops what the client acknowledged (cumulative: everything up to `sequenceId`). */
  acknowledge(sequenceId: number): void {
    let n = 0;
    while (n < this.unacked.length && this.unacked[n].seq <= sequenceId) {
      this.unackedBytes -= this.unacked[n].pubsub.length;
      n++;
    }
    if (n > 0) this.unacked.splice(0, n);
  }
}
