/**
 * Messages between threads. Each feature owns its own (src/features/<feature>/messages.ts); this
 * file holds the infrastructure's (publish, test hooks, main ↔ worker) and composes the unions
 * each port carries. Ingest → edge messages go over one MessagePort per edge, so their order is the
 * order ingest sent them in (telemetry's snapshot protocol and Azure's handovers rely on it).
 * Every switch on a message's `t` is exhaustive (threads/dispatch.ts).
 */
import type { AzureToEdge, AzureToIngest } from '../features/azure/messages.js';
import type { ClusterToIngest } from '../features/cluster/messages.js';
import type { ChannelsToEdge, ChannelsToIngest } from '../features/channels/messages.js';
import type { ShareLocationToEdge } from '../features/share-location/messages.js';
import type { TelemetryToEdge, TelemetryToIngest } from '../features/telemetry/messages.js';
import type { UsersToEdge } from '../features/users/messages.js';

/** Test only (threads/test-hooks.ts): for edge `edge` to wedge itself or crash a store pool thread. */
export type TestHookToEdge = { readonly t: 'test-hook'; readonly hook: 'wedge-edge' | 'crash-store-pool' | 'break-store-pool'; readonly edge: number };

/** Publish to the bus (revocations, events from REST): every node, this one included, gets it back. */
export type PublishToIngest = { readonly t: 'publish'; readonly topic: string; readonly payload: string | Uint8Array; readonly qos: 0 | 1 };

/** What the features' edge parts handle (the edge root handles the rest: the test hook). */
export type FeatureToEdge = TelemetryToEdge | ShareLocationToEdge | ChannelsToEdge | UsersToEdge | AzureToEdge;
export type IngestToEdge = FeatureToEdge | TestHookToEdge;

/** What the features' ingest parts handle (the ingest root handles the rest: publish). */
export type FeatureToIngest = TelemetryToIngest | ChannelsToIngest | AzureToIngest | ClusterToIngest;
export type EdgeToIngest = FeatureToIngest | PublishToIngest;

export type MainToWorker = { readonly t: 'close' };

export type WorkerToMain = { readonly t: 'ready'; readonly port?: number } | { readonly t: 'closed' } | { readonly t: 'failed'; readonly message: string };
