/**
 * The store as the store pool uses it (docs/design/cluster-store.md §1): repositories of async
 * methods, so that a driver whose database is across a network (PostgreSQL, step 2) implements the
 * same interface as the embedded one (SQLite, src/store/sqlite/). The contract suite
 * (test/contract/store.contract.ts) runs every method on each driver.
 *
 * Guarantees every driver gives:
 *   - A write and its outbox row are one unit: the method that changes an entity, a trip or
 *     equipment writes its event in the same transaction, so the event exists exactly when the
 *     change does. There is no generic `transaction(fn)`: a callback holding a PostgreSQL
 *     transaction open across awaits would hold the channel's rows for as long as the caller takes,
 *     and SQLite's transactions are synchronous (better-sqlite3) and cannot contain an await. One
 *     method per write lets each driver send it in as few statements as it takes.
 *   - A refusal throws GatewayError and writes nothing (no row, no id taken, no outbox row).
 *   - Ids are the store's: an entity id comes from its collection's sequence and is never reused,
 *     even after a delete or a restart; concurrent creates on any connection get distinct ids.
 *   - Results are the JSON the REST API answers with, field order included (entity data is stored as
 *     text, never re-ordered by the database).
 *
 * Step 1 of the design keeps today's outbox (rows by id, relayed by ingest): a write reports the
 * event it put in the outbox as an `OutboxEvent`; step 3 widens it to a Position (offset, epoch).
 * The channel log and revocations join this interface in later steps.
 */
import type { CollectionSpec } from '../features/channels/channel-config.js';
import type { DeadLetter } from '../features/channels/store/dead-letters.js';
import type { Entity } from '../features/channels/store/entity-store.js';
import type { Equipment, EquipmentInput } from '../features/trips/store/trip-store.js';
import type { PositionRecord } from '../features/telemetry/store/position-store.js';
import type { TripStep } from '../features/trips/trip-steps.js';

export type { DeadLetter, Entity, Equipment, EquipmentInput, PositionRecord };

/** An event a write put in the outbox, on its channel. */
export interface OutboxEvent {
  readonly channel: string;
}

export interface Store {
  readonly backend: 'sqlite' | 'postgres';
  readonly entities: EntityRepository;
  readonly equipment: EquipmentRepository;
  readonly trips: TripRepository;
  readonly outbox: Outbox;
  readonly deadLetters: DeadLetterRepository;
  readonly positions: PositionRepository;
  readonly revocations: RevocationRepository;
  /** What ingest's trip monitor samples (src/features/trips/ingest/trip-monitor.ts). */
  readonly tripMonitor: TripMonitorRepository;
  /** One round trip to the database; readiness. */
  ping(): Promise<void>;
  /** Releases the connection(s); the store is not used afterwards. Harmless when called twice. */
  close(): Promise<void>;
}

export interface EntityRepository {
  /** Ordered by id, `skip` rows skipped, at most `limit`. */
  list(c: CollectionSpec, skip: number, limit: number): Promise<Entity[]>;
  get(c: CollectionSpec, id: number): Promise<Entity | null>;
  /** The next id of c's sequence, the row and its `created` event on c.channel: one transaction. */
  create(c: CollectionSpec, fields: Entity): Promise<{ entity: Entity; event: OutboxEvent }>;
  /**
   * null: no such entity. `updatedFields` empty and `event` null: nothing changed, nothing written.
   * A field set to null is removed.
   */
  update(c: CollectionSpec, id: number, fields: Entity): Promise<{ entity: Entity; updatedFields: string[]; event: OutboxEvent | null } | null>;
  /** The entity as it was, and its `deleted` event; null when there was none. */
  delete(c: CollectionSpec, id: number): Promise<{ entity: Entity; event: OutboxEvent } | null>;
}

export interface EquipmentRepository {
  /** Ordered by code. */
  list(): Promise<Equipment[]>;
  get(code: string): Promise<Equipment | null>;
  /** Upsert, all or none (REST PUT and the GATEWAY_EQUIPMENT_FILE seed); each stamped with one `updated_at`. */
  save(list: readonly EquipmentInput[]): Promise<Equipment[]>;
  /** false: there was none. */
  remove(code: string): Promise<boolean>;
}

export interface TripRepository {
  /**
   * A step of a trip's lifecycle (docs/compat/trips.md): the trip, its `viajes` event and its
   * trip_events row in one transaction. `body`: `{"id"}` for crear, the trip otherwise. `event`
   * null: an `actualizar` that changed nothing. Refused steps (illegal transition, unknown trip or
   * equipment, event too large) throw GatewayError and write nothing.
   */
  step(step: TripStep, body: unknown): Promise<{ body: Record<string, unknown>; event: OutboxEvent | null }>;
  /** The trip as the REST API shows it, or null. */
  get(id: number): Promise<Record<string, unknown> | null>;
  /** Newest first. */
  list(skip: number, limit: number): Promise<Record<string, unknown>[]>;
}

/** An outbox row as the relay reads it (today: ingest's EventLog reads the same table itself). */
export interface OutboxRow {
  readonly id: number;
  readonly channel: string;
  /** The event's JSON, as written. */
  readonly payload: string;
}

export interface Outbox {
  /** An event with no entity (publish API, test events): checked like every event, then queued. */
  publish(channel: string, eventJson: string): Promise<OutboxEvent>;
  /** Rows after `afterId`, oldest first. */
  pending(afterId: number, limit: number): Promise<OutboxRow[]>;
  count(): Promise<number>;
}

/** Each device's last position, for the snapshots of a restarted or late node (design §4.2). */
export interface PositionRepository {
  /**
   * One batch, as PositionStore.encode makes it on ingest (a JSON array of [id, payload, timestamp,
   * at]), in one statement whatever its size; an older `at` never overwrites a newer one.
   */
  putJson(json: string): Promise<void>;
  /** The positions accepted at or after `notBefore` (ms since the epoch), oldest first. */
  recent(notBefore: number): Promise<PositionRecord[]>;
  /** Deletes the positions accepted before `notBefore` (ms); returns how many. */
  purge(notBefore: number): Promise<number>;
}

/** A share-link revocation as kept in the store. */
export interface StoredRevocation {
  readonly jti: string;
  /** When the link would have expired anyway (ms since the epoch): the row is useless after it. */
  readonly expiresAt: number;
  /** When the row was written (ms since the epoch, the store's clock): the catch-up's cursor. */
  readonly revokedAt: number;
}

/**
 * Share-link revocations (design §4.1), so that a node started after a revocation, or off the bus
 * when it happened, refuses the link.
 */
export interface RevocationRepository {
  /**
   * Idempotent: every node that hears a revocation writes it; a second copy (another node's, a
   * retry) changes nothing, not even its `revokedAt`.
   */
  revoke(jti: string, expiresAt: number): Promise<void>;
  /**
   * The unexpired revocations written at or after `sinceMs` (0: all), oldest `revokedAt` first:
   * a starting node's load and every node's catch-up.
   */
  active(sinceMs: number): Promise<StoredRevocation[]>;
  /** Deletes the rows whose links expired at or before `now` (ms); returns how many. */
  purgeExpired(now: number): Promise<number>;
}

/** Reads for the trips monitoring table (docs/compat/trips.md), sampled every 5 s by ingest. */
export interface TripMonitorRepository {
  /** The codes of the active equipment, ordered by code. */
  activeEquipment(): Promise<string[]>;
  /** How many trip events were written after `afterMs` (ms since the epoch). */
  eventsAfter(afterMs: number): Promise<number>;
}

export interface DeadLetterRepository {
  /** Moves outbox row `id` here with `reason` (cut to 500 characters), in one transaction; false when it is gone. */
  move(id: number, reason: string): Promise<boolean>;
  count(): Promise<number>;
  /** Oldest first, without the event text. */
  page(skip: number, limit: number): Promise<DeadLetter[]>;
}
