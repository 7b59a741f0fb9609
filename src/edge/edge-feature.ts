/**
 * What an edge thread's root (edge-worker.ts) hands each feature, and what a feature gives back.
 * A feature's edge part (src/features/<feature>/edge/<feature>-edge.ts) is a name and a
 * `register(context)` that adds its routes to `context.app` and returns the handlers of the thread
 * messages it owns (threads/dispatch.ts). startEdge registers the features in the order of its list
 * and dispatches ingest's messages to them; a message type no listed feature handles does not compile.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Acl } from '../auth/acl.js';
import type { RevocationList } from '../auth/revocation-list.js';
import type { TokenChecks } from '../auth/token-checks.js';
import type { GatewayConfig } from '../config/config.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import type { RowWriter, SharedStats } from '../metrics/shared-stats.js';
import type { PortClient } from '../threads/port-rpc.js';
import type { StoreReply, StoreTask } from '../pool/store-protocol.js';
import type { LogRow } from '../store/store.js';
import type { Handlers, HandlesEveryMessage, UnhandledBy as Unhandled } from '../threads/dispatch.js';
import type { EdgeToIngest, FeatureToEdge } from '../threads/messages.js';
import type { KeyedBuckets } from '../util/token-bucket.js';
import type { ClientAddresses } from './client-address.js';
import type { OperatorGuard } from './operator-auth.js';
import type { OwnOrigin } from './request-origin.js';
import type { SessionExpiry } from './session-expiry.js';

/** What every feature on an edge thread shares, built once by the root. */
export interface EdgeContext {
  readonly config: GatewayConfig;
  /** This edge thread's index (0 … GATEWAY_EDGE_THREADS - 1). */
  readonly index: number;
  /** This node's id (the registry's, features/cluster/). */
  readonly nodeId: string;
  readonly mqttUrl: string;
  /** The uWS App, behind the route guards (origin, encoding): every route registered on it passes them. */
  readonly app: TemplatedApp;
  readonly stats: RowWriter<EdgeMetric>;
  readonly shared: SharedStats;
  readonly logger: Logger;
  readonly checks: TokenChecks;
  /** True when token checks run on the main thread's pool (GATEWAY_TOKEN_CHECKS). */
  readonly tokenPool: boolean;
  readonly revocations: RevocationList;
  readonly acl: Acl;
  readonly ipBuckets: KeyedBuckets;
  /** The client address behind trusted proxies (client-address.ts). */
  readonly clients: ClientAddresses;
  /** The request's own origin, with native TLS and trusted proxies (same-origin checks, the pages' CSP). */
  readonly requestOrigin: OwnOrigin;
  readonly expiry: SessionExpiry;
  /** The operator auth (GATEWAY_OPERATOR_TOKEN, operator-auth.ts): call first in an operator-only route. */
  readonly operatorGuard: OperatorGuard;
  readonly store: PortClient<StoreTask, StoreReply>;
  readonly ingestPort: MessagePort;
  readonly toIngest: (message: EdgeToIngest) => void;
  /** Publishes to the bus through ingest: every node, this one included, gets it back. */
  readonly publish: (topic: string, payload: string | Uint8Array) => void;
  /** Tells ingest's outbox relay the store wrote rows; with the rows committed when the store's reply had them (StoreReply `events`). */
  readonly nudgeRelay: (events?: readonly LogRow[]) => void;
  /**
   * The base of URLs handed to clients: GATEWAY_PUBLIC_URL, else the scheme and host the request came
   * to (forwarded by a trusted proxy, client-address.ts). Read synchronously in the handler.
   */
  readonly publicBase: (res: HttpResponse, req: HttpRequest) => string;
  /** True once the thread is shutting down: upgrades are refused. */
  readonly isClosing: () => boolean;
}

/** What a feature's register returns: the handlers of its messages and what shutdown stops. */
export interface EdgePart<M extends FeatureToEdge> {
  readonly handlers: Handlers<M>;
  /** Shutdown: ends the feature's sockets (1001 with `reason`) and stops its timers, synchronously. */
  readonly close?: (reason: string) => void;
}

/** A feature's edge part. `M`: the ingest → edge messages it owns (never: none). */
export interface EdgeFeature<M extends FeatureToEdge = never> {
  readonly name: string;
  /** Adds the feature's routes to context.app (in the list's order) and returns its part. */
  register(context: EdgeContext): EdgePart<M>;
}

/** Any feature's edge part, whatever messages it owns. */
export interface AnyEdgeFeature {
  readonly name: string;
  register(context: EdgeContext): { readonly handlers: object; readonly close?: (reason: string) => void };
}

/** The message types of FeatureToEdge no feature of the list handles. */
export type UnhandledBy<F extends readonly AnyEdgeFeature[]> = Unhandled<FeatureToEdge, F>;

export interface StartedEdge {
  readonly handlers: Handlers<FeatureToEdge>;
  /** Every feature's close, in list order. */
  close(reason: string): void;
}

/** Registers each feature in list order (the order uWS sees its routes in) and collects its handlers. */
export function startEdge<const F extends readonly AnyEdgeFeature[]>(context: EdgeContext, features: F & HandlesEveryMessage<FeatureToEdge, F>): StartedEdge {
  const handlers: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const owners: Record<string, string> = Object.create(null) as Record<string, string>;
  const closers: ((reason: string) => void)[] = [];
  for (const feature of features as readonly AnyEdgeFeature[]) {
    const part = feature.register(context);
    for (const [t, handler] of Object.entries(part.handlers)) {
      if (t in owners) throw new Error(`thread message ${t} is handled by both ${owners[t]} and ${feature.name}`);
      owners[t] = feature.name;
      handlers[t] = handler;
    }
    if (part.close !== undefined) closers.push(part.close);
  }
  return {
    handlers: handlers as unknown as Handlers<FeatureToEdge>,
    close: (reason) => {
      for (const close of closers) close(reason);
    },
  };
}
