/**
 * What the ingest thread's root (ingest-thread.ts) hands each feature, and what a feature gives
 * back. A feature's ingest part (src/features/<feature>/ingest/<feature>-ingest.ts) is a name and a
 * `register(context)` that returns the control topics it takes from the bus, the handlers of the
 * edge → ingest messages it owns (threads/dispatch.ts) and what shutdown stops. startIngest
 * registers the features in the order of its list; a message type no listed feature handles does
 * not compile.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/config.js';
import type { IngestMetric } from '../metrics/metric-table.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { NodeIdentity } from '../store/database.js';
import type { Store } from '../store/store.js';
import type { Handlers, HandlesEveryMessage, UnhandledBy as Unhandled } from '../threads/dispatch.js';
import type { FeatureToIngest } from '../threads/messages.js';
import type { PortClient } from '../threads/port-rpc.js';
import type { StoreReply, StoreTask } from '../pool/store-protocol.js';
import type { ControlMessages } from './control-messages.js';
import type { EdgeFanout } from './edge-fanout.js';

/** What every feature on the ingest thread shares, built once by the root. */
export interface IngestContext {
  readonly config: GatewayConfig;
  readonly identity: NodeIdentity;
  readonly stats: RowWriter<IngestMetric>;
  readonly logger: Logger;
  /** Frames and control messages to every edge, in order (edge-fanout.ts). */
  readonly fanout: EdgeFanout;
  readonly edgePorts: readonly MessagePort[];
  /**
   * The store (src/store/store.ts) on this thread's own connection(s), opened and closed by the root:
   * SQLite or PostgreSQL (src/store/open-store.ts). Its calls are async; the telemetry path never awaits one.
   */
  readonly store: Store;
  /** The store pool, for writes that should not hold this thread (the batches of last positions). */
  readonly storePool: PortClient<StoreTask, StoreReply>;
  /** The bus's revocations and user/role events, parsed and bounded (control-messages.ts). */
  readonly controlMessages: ControlMessages;
  /** The bus: whether ingest is subscribed now, and a publish that tags control topics (control-auth.ts). */
  readonly bus: {
    readonly subscribed: () => boolean;
    /** `done`: once sent (QoS 0) or acknowledged by the broker (QoS 1), or with the error. */
    readonly publish: (topic: string, payload: string | Uint8Array, qos: 0 | 1, done?: (err?: Error) => void) => void;
  };
}

/** The edge a message came from. */
export interface FromEdge {
  readonly index: number;
  readonly port: MessagePort;
}

/**
 * A control topic a feature takes from the bus: its messages carry an HMAC tag, checked before
 * `handle` sees a byte (control-auth.ts), and what ingest publishes to it is tagged.
 */
export interface ControlTopic {
  readonly topic: string;
  /**
   * none: the topic itself; one: `<topic>/<x>` (subscribed as `<topic>/+`); any: `<topic>/…`
   * (`<topic>/#`). Incoming messages match on `<topic>/`; what ingest tags follows the filter.
   */
  readonly subtopics: 'none' | 'one' | 'any';
  /** `rest`: the topic after `<topic>/` ('' for subtopics none). */
  readonly handle: (rest: string, body: Buffer) => void;
}

/** What a feature's register returns. */
export interface IngestPart<M extends FeatureToIngest> {
  readonly handlers: Handlers<M, [from: FromEdge]>;
  readonly control?: readonly ControlTopic[];
  /** Every bus message no control topic took (telemetry: GATEWAY_MQTT_TOPICS). One feature of the list. */
  readonly dataTopics?: (topic: string, payload: Buffer) => void;
  /** The MQTT client (re)subscribed. */
  readonly subscribed?: () => void;
  /** Shutdown, before the MQTT client closes: timers. */
  readonly stop?: () => void;
  /**
   * Shutdown, after the MQTT client closed: databases, the last writes. A Promise it returns is
   * awaited before the root closes the store.
   */
  readonly close?: () => unknown;
  /**
   * Settles when the feature has loaded what it needs from the store (the channels' heads, the
   * revocations, the last positions); ingest reports ready to the main thread only after every
   * feature's. A rejection fails the start.
   */
  readonly ready?: Promise<void>;
}

/** A feature's ingest part. `M`: the edge → ingest messages it owns (never: none). */
export interface IngestFeature<M extends FeatureToIngest = never> {
  readonly name: string;
  register(context: IngestContext): IngestPart<M>;
}

/** Any feature's ingest part, whatever messages it owns. */
export interface AnyIngestFeature {
  readonly name: string;
  register(context: IngestContext): Omit<IngestPart<never>, 'handlers'> & { readonly handlers: object };
}

/** The message types of FeatureToIngest no feature of the list handles. */
export type UnhandledBy<F extends readonly AnyIngestFeature[]> = Unhandled<FeatureToIngest, F>;

export interface StartedIngest {
  readonly handlers: Handlers<FeatureToIngest, [from: FromEdge]>;
  /** Every feature's control topics, in list order. */
  readonly control: readonly ControlTopic[];
  readonly dataTopics: (topic: string, payload: Buffer) => void;
  subscribed(): void;
  stop(): void;
  /** Every feature's `close`, awaited. */
  close(): Promise<void>;
  /** Every feature's `ready`. */
  ready(): Promise<void>;
}

/** Registers each feature in list order and collects its topics and handlers. */
export function startIngest<const F extends readonly AnyIngestFeature[]>(
  context: IngestContext,
  features: F & HandlesEveryMessage<FeatureToIngest, F>,
): StartedIngest {
  const handlers: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const owners: Record<string, string> = Object.create(null) as Record<string, string>;
  const control: ControlTopic[] = [];
  const parts: ReturnType<AnyIngestFeature['register']>[] = [];
  let dataTopics: ((topic: string, payload: Buffer) => void) | undefined;
  for (const feature of features as readonly AnyIngestFeature[]) {
    const part = feature.register(context);
    parts.push(part);
    for (const [t, handler] of Object.entries(part.handlers)) {
      if (t in owners) throw new Error(`thread message ${t} is handled by both ${owners[t]} and ${feature.name}`);
      owners[t] = feature.name;
      handlers[t] = handler;
    }
    if (part.control !== undefined) control.push(...part.control);
    if (part.dataTopics !== undefined) {
      if (dataTopics !== undefined) throw new Error(`${feature.name}: another feature takes the data topics already`);
      dataTopics = part.dataTopics;
    }
  }
  if (dataTopics === undefined) throw new Error('no feature takes the data topics');
  return {
    handlers: handlers as unknown as StartedIngest['handlers'],
    control,
    dataTopics,
    subscribed: () => parts.forEach((p) => p.subscribed?.()),
    stop: () => parts.forEach((p) => p.stop?.()),
    close: async () => {
      await Promise.all(parts.map((p) => p.close?.()));
    },
    ready: async () => {
      await Promise.all(parts.map((p) => p.ready ?? Promise.resolve()));
    },
  };
}
