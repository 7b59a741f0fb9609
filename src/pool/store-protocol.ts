/**
 * What edges ask the store pool, and what it answers: plain objects, since errors do not cross
 * threads with their class. A reply carries the HTTP answer ready to send (the pool serialises it).
 */
import type { ErrorCode } from '../errors/error-codes.js';
import type { TripStep } from '../features/trips/trip-steps.js';
import type { LogRow } from '../store/store.js';

export type EntityTask =
  | { readonly op: 'list'; readonly collection: string; readonly skip: number; readonly limit: number }
  | { readonly op: 'get'; readonly collection: string; readonly id: number }
  | { readonly op: 'create'; readonly collection: string; readonly fields: Record<string, unknown> }
  | { readonly op: 'update'; readonly collection: string; readonly id: number; readonly fields: Record<string, unknown> }
  | { readonly op: 'delete'; readonly collection: string; readonly id: number }
  /** An event for the outbox (publish API, test events); `payload` is its JSON. */
  | { readonly op: 'publish'; readonly channel: string; readonly payload: string };

export type TripTask =
  /** A step of a trip's lifecycle (docs/compat/trips.md); the body is checked on the pool. */
  | { readonly op: 'trip-step'; readonly step: TripStep; readonly body: unknown }
  | { readonly op: 'trip-get'; readonly id: number }
  | { readonly op: 'trip-list'; readonly skip: number; readonly limit: number }
  | { readonly op: 'equipment-list' }
  | { readonly op: 'equipment-get'; readonly code: string }
  | { readonly op: 'equipment-put'; readonly code: string; readonly body: unknown }
  | { readonly op: 'equipment-delete'; readonly code: string }
  /** Negotiate: the equipment exists and is active (docs/compat/trips.md validate_equipment). */
  | { readonly op: 'equipment-check'; readonly code: string };

/** The outbox's dead letters, oldest first, without their payloads (store/dead-letters.ts). */
export interface DeadLetterTask {
  readonly op: 'dead-letters';
  readonly skip: number;
  readonly limit: number;
}

/**
 * The watchdog's probe (answers at once, without the store: a database outage is readiness, never
 * a stalled pool), the availability probe (`store-ping`: one round trip to the database, sent by
 * the main thread once a second while the store is marked unavailable), and a test hook (GATEWAY_TEST_HOOKS=bus): the thread
 * ends in the middle of the task; with `replacementsFail`, the threads started after it fail too.
 */
export type HealthTask = { readonly op: 'ping' } | { readonly op: 'store-ping' } | { readonly op: 'test-crash'; readonly replacementsFail: boolean };

/**
 * From ingest, not an edge: the last positions changed since its previous batch, as the JSON text
 * PositionStore.encode makes, written in one statement (features/telemetry/ingest/position-keeper.ts).
 */
export interface PositionsTask {
  readonly op: 'positions-put';
  readonly json: string;
}

/** A share link revoked (DELETE /api/v1/public/share-location/<token>): kept in the store before the answer. */
export interface RevocationTask {
  readonly op: 'revocation-put';
  readonly jti: string;
  readonly expiresAt: number;
}

/**
 * Azure Web PubSub's user-group relation (addUserToGroup, removeUserFromGroup, removeUserFromAllGroups):
 * kept in the store before the answer, so a node started a moment later has it. An add past its
 * bounds is refused GW_ERR_AZURE_USER_GROUPS_FULL.
 */
export type AzureUserGroupTask =
  | {
      readonly op: 'azure-user-group-add';
      readonly hub: string;
      readonly userId: string;
      readonly group: string;
      readonly perUser: number;
      readonly max: number;
    }
  | { readonly op: 'azure-user-group-remove'; readonly hub: string; readonly userId: string; readonly group: string }
  | { readonly op: 'azure-user-group-remove-user'; readonly hub: string; readonly userId: string };

/**
 * The live nodes of the registry with their figures (features/cluster/edge/cluster-view.ts), and with
 * `uniqueUsers` the distinct users of their presence and of `uniqueUsers` (the answering edge's own).
 * Body: {"nodes":[NodeRow…],"unique_users":n|null}.
 */
export interface ClusterTask {
  readonly op: 'cluster-nodes';
  readonly ttlMs: number;
  readonly uniqueUsers?: readonly string[];
}

export type StoreTask = EntityTask | TripTask | DeadLetterTask | HealthTask | PositionsTask | RevocationTask | ClusterTask | AzureUserGroupTask;

/** Every trip and equipment op, listed once: a TripTask op missing here does not compile. */
const TRIP_OPS: Readonly<Record<TripTask['op'], true>> = {
  'trip-step': true,
  'trip-get': true,
  'trip-list': true,
  'equipment-list': true,
  'equipment-get': true,
  'equipment-put': true,
  'equipment-delete': true,
  'equipment-check': true,
};

export const isTripTask = (task: StoreTask): task is TripTask => Object.hasOwn(TRIP_OPS, task.op);

export type StoreReply =
  /**
   * `wroteEvent`: an outbox row was written, so the relay should look. `events`: the rows the write
   * committed, when the driver knows them (SQLite: store.ts OutboxEvent.logged), for ingest's local
   * fast path.
   */
  | { readonly ok: true; readonly status: number; readonly body: string; readonly wroteEvent: boolean; readonly events?: readonly LogRow[] }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export interface StoreWorkerData {
  readonly dataDir: string;
  /** PostgreSQL for this thread (open-store.ts storeTarget(config, 'store-pool', node)); undefined: SQLite in dataDir. */
  readonly database: import('../store/open-store.js').DatabaseTarget | undefined;
  /** GATEWAY_LOG_LEVEL, for the thread's own logger (a failed idle connection). */
  readonly logLevel: import('../config/config.js').LogLevel;
  readonly testHooks: readonly import('../config/config.js').TestHook[];
  readonly collections: readonly import('../features/channels/channel-config.js').CollectionSpec[];
  /** GATEWAY_MAX_JSON_DEPTH: every event written must pass it (channels/outbox-event.ts). */
  readonly maxJsonDepth: number;
}
