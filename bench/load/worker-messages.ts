/**
 * Messages between the benchmark's main thread and its client workers. One file so both sides
 * change together.
 */
import type { HistogramSnapshot } from './histogram.js';

export type Encoding = 'json' | 'msgpack';

/**
 * What the client speaks on top of WebSocket. `plain`: the gateway's stream (and the baselines that
 * copy it), telemetry in every text/binary message. `socketio`: Socket.IO 4 over Engine.IO 4 with
 * the websocket transport only; `path` is then the Engine.IO path (`/socket.io/`), telemetry comes
 * in `42[...]` event packets and the client answers Engine.IO pings. JSON only. `azure`: Azure Web
 * PubSub's `json.reliable.webpubsub.azure.v1`; `path` is the whole request target (e.g.
 * `/client/hubs/<hub>?access_token=…`, the token naming the groups), a connection counts as opened
 * at the `connected` system message, telemetry comes in `message` frames (TS found by the same byte
 * search), and the client sends a cumulative `sequenceAck` as the official client does. JSON only.
 */
export type Dialect = 'plain' | 'socketio' | 'azure';

export interface WorkerConfig {
  readonly host: string;
  readonly port: number;
  /** Plain dialect: each connection's port, parallel to `connections` (several nodes); absent: `port` for all. */
  readonly ports?: readonly number[];
  /** Path without the query, e.g. `/api/v1/stream`. */
  readonly path: string;
  readonly encoding: Encoding;
  /** Absent means 'plain'. */
  readonly dialect?: Dialect;
  /**
   * Azure dialect: a connection acknowledges (cumulative `sequenceAck`) once `ackEvery` messages
   * arrived since its last ack, and every `ackIntervalMs` if anything arrived since (the official
   * client acks once a second). Defaults 100 and 1000.
   */
  readonly ackEvery?: number;
  readonly ackIntervalMs?: number;
  /** Device ids per connection this worker opens. */
  readonly connections: ReadonlyArray<ReadonlyArray<string>>;
  /** Handshakes in flight at once; keeps the accept queue of the server from overflowing. */
  readonly openConcurrency: number;
  readonly handshakeTimeoutMs: number;
  readonly bucketMs: number;
  readonly rangeMs: number;
}

export interface WorkerCounters {
  /** Every text or binary message. */
  frames: number;
  /** Messages carrying a TS inside the measurement window: the latency samples. */
  measured: number;
  /** Messages with a TS before the window: snapshots and warm-up traffic. */
  early: number;
  /** Messages with a TS after the window ends (should stay 0: nothing is published then). */
  late: number;
  /** Messages without a TS: pings, subscribed, anything else. */
  control: number;
  /** Connections the server closed or that failed after the handshake. */
  unexpectedCloses: number;
  /** Latest receive time of a measured message, ms on the shared clock; 0 if none. */
  lastMeasuredAt: number;
  /** Bytes of the measured messages' payloads (frame size = measuredBytes / measured). */
  measuredBytes: number;
  /** Azure dialect: sequenceAck frames sent. */
  acks: number;
}

/** main → worker */
export type ToWorker = { readonly type: 'window'; readonly start: number; readonly end: number } | { readonly type: 'finish' };

/** worker → main */
export type FromWorker =
  | { readonly type: 'ready'; readonly opened: number; readonly failed: number; readonly firstError?: string; readonly protocols: string[] }
  | { readonly type: 'window-set' }
  | { readonly type: 'progress'; readonly counters: WorkerCounters }
  | { readonly type: 'result'; readonly counters: WorkerCounters; readonly histogram: HistogramSnapshot; readonly closeErrors: string[] };
