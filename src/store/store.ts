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
 *   - A write's event is appended to its channel's log and queued in the outbox in the write's
 *     transaction: its offset is the store's, the same on every node (ChannelLog).
 */
import type { CollectionSpec } from '../features/channels/channel-config.js';
import type { DeadLetter } from '../features/channels/store/dead-letters.js';
import type { Entity } from '../features/channels/store/entity-store.js';
import type { Equipment, EquipmentInput } from '../features/trips/store/trip-store.js';
import type { PositionRecord } from '../features/telemetry/store/position-store.js';
import type { TripStep } from '../features/trips/trip-steps.js';
import type { UserGroup } from '../features/azure/user-groups.js';

export type { DeadLetter, Entity, Equipment, EquipmentInput, PositionRecord, UserGroup };

/** An event a write put in the outbox, on its channel. */
export interface OutboxEvent {
  readonly channel: string;
  /**
   * The event as its transaction logged it, when the driver knows it without another round trip
   * (SQLite): committed, so ingest may deliver it on this node at once (the local fast path,
   * channel-pipeline.ts `written`) while the relay still publishes the outbox row; the bus's copy
   * is then dropped by offset. Absent: this node waits for the bus like any other.
   */
  readonly logged?: LogRow;
}

export interface Store {
  readonly backend: 'sqlite' | 'postgres';
  readonly entities: EntityRepository;
  readonly equipment: EquipmentRepository;
  readonly trips: TripRepository;
  readonly log: ChannelLog;
  readonly outbox: Outbox;
  readonly deadLetters: DeadLetterRepository;
  readonly positions: PositionRepository;
  readonly revocations: RevocationRepository;
  /** What ingest's trip monitor samples (src/features/trips/ingest/trip-monitor.ts). */
  readonly tripMonitor: TripMonitorRepository;
  /** The node registry and the users' presence (src/features/cluster/). */
  readonly nodes: NodeRepository;
  /** Azure Web PubSub's user-group relations (addUserToGroup), kept until removed. */
  readonly azureUserGroups: AzureUserGroupRepository;
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

/** Where an event sits in its channel's log: the same on every node (design §2). */
export interface Position {
  readonly channel: string;
  readonly offset: number;
}

/** One event of a channel's log. */
export interface LogRow {
  readonly channel: string;
  readonly offset: number;
  /** When it was written (ms since the epoch). */
  readonly at: number;
  /** The event's JSON, as written. */
  readonly event: string;
}

/**
 * The channel log: every event of every channel, numbered by the store in the write's transaction
 * (the channel's head row), so that the same event has the same offset on every node, and one epoch
 * for the whole store. Offsets of a channel have no holes except a trimmed prefix: a writer takes
 * the head row's lock until its commit, so offset n+1 is never visible before n.
 */
export interface ChannelLog {
  /** The store's epoch: made once with the store, changed only when the log is lost (a new database). */
  epoch(): Promise<string>;
  /** Every channel's last offset. */
  heads(): Promise<Map<string, number>>;
  /** Rows `from`…`to` of one channel (inclusive), in order, at most `limit`. Offsets missing from the start were trimmed. */
  range(channel: string, from: number, to: number, limit: number): Promise<LogRow[]>;
  /** The rows after `afterOffset`, written at or after `notBefore` (ms), in order: the history edges start from. */
  recent(channel: string, afterOffset: number, notBefore: number): Promise<LogRow[]>;
  /** Drops rows at or below `upToOffset` or older than `notBefore`, never one still in the outbox; how many went. */
  trim(channel: string, upToOffset: number, notBefore: number): Promise<number>;
}

/** An outbox row as the relay claims it: a logged event not yet acknowledged by the broker. */
export interface OutboxRow extends LogRow {
  /** How many times it was claimed, this claim included. */
  readonly attempts: number;
  /** Claimed from another node's lapsed lease (a node that died, or was cut off the bus). */
  readonly takenOver?: true;
}

export interface Outbox {
  /**
   * An event with no entity (publish API, test events, a backend's event from the bus): checked like
   * every event, then appended to the log and queued. `digest`: the bus message's, when every node
   * receives the same message and one must write it: a digest already written in the last minute
   * writes nothing (PostgreSQL; the one-node SQLite store writes every message).
   */
  publish(channel: string, eventJson: string, digest?: string): Promise<OutboxEvent>;
  /**
   * Leases rows to `node` for `leaseMs` and returns them, oldest offset first per channel: the rows
   * this node wrote and has not claimed yet, and every row whose lease lapsed (its holder died, or
   * the broker never acknowledged it). Concurrent claimers on other nodes get other rows.
   */
  claim(node: string, leaseMs: number, limit: number): Promise<OutboxRow[]>;
  /** The broker acknowledged these: they leave the outbox, whoever holds them. */
  published(keys: readonly Position[]): Promise<void>;
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

/**
 * Azure Web PubSub's user-group relations (`addUserToGroup`, src/features/azure/user-groups.ts): a
 * user's future connections, on any node, join the groups it was added to; a node that starts later
 * loads them. Kept until removed; bounded per user of a hub and in all (checked at each add, so
 * writers racing on several connections may pass a bound by at most their number).
 */
export interface AzureUserGroupRepository {
  /**
   * Idempotent: false when the relation was there already. Throws GW_ERR_AZURE_USER_GROUPS_FULL,
   * writing nothing, when the user has `perUser` groups in the hub or the store `max` relations.
   */
  add(hub: string, userId: string, group: string, bounds: { readonly perUser: number; readonly max: number }): Promise<boolean>;
  /** false: there was none. */
  remove(hub: string, userId: string, group: string): Promise<boolean>;
  /** Every group of a user in a hub; how many there were. */
  removeUser(hub: string, userId: string): Promise<number>;
  /** Every relation, ordered by hub, user and group. */
  list(): Promise<UserGroup[]>;
}

/** Reads for the trips monitoring table (docs/compat/trips.md), sampled every 5 s by ingest. */
export interface TripMonitorRepository {
  /** The codes of the active equipment, ordered by code. */
  activeEquipment(): Promise<string[]>;
  /** How many trip events were written after `afterMs` (ms since the epoch). */
  eventsAfter(afterMs: number): Promise<number>;
}

export interface DeadLetterRepository {
  /** Moves an outbox row here with its event and `reason` (cut to 500 characters), in one transaction; false when it is gone. */
  move(key: Position, reason: string): Promise<boolean>;
  count(): Promise<number>;
  /** Oldest first, without the event text. */
  page(skip: number, limit: number): Promise<DeadLetter[]>;
}

/** What a node writes about itself every GATEWAY_NODE_HEARTBEAT_MS (src/features/cluster/ingest/node-registry.ts). */
export interface NodeBeat {
  readonly id: string;
  readonly version: string;
  /** When the node started (ms since the epoch, its own clock). */
  readonly startedAt: number;
  /** The node's figures (src/features/cluster/node-figures.ts), as JSON text. */
  readonly figures: string;
}

/** A node as the registry holds it. */
export interface NodeRow extends NodeBeat {
  /** Its last heartbeat (ms since the epoch, the store's clock: PostgreSQL's on PostgreSQL). */
  readonly heartbeatAt: number;
  /** How old that heartbeat is, on the same clock, so that the nodes' clocks never need to agree. */
  readonly ageMs: number;
}

/**
 * The node registry and the users' presence (docs/guide.md "Clustering"): each node upserts its row
 * every heartbeat and is live while that row is younger than the TTL; each node keeps one presence
 * row per /ws/connect user connected to it. Rows of a node that is not live are ignored by every
 * read and deleted by any node's purge.
 */
export interface NodeRepository {
  /** Upserts the node's row with a fresh heartbeat (the store's clock). */
  beat(node: NodeBeat): Promise<void>;
  /** The nodes whose heartbeat is younger than `ttlMs`, ordered by id. */
  live(ttlMs: number): Promise<NodeRow[]>;
  /** A clean shutdown: the node's row and its presence go at once. */
  leave(id: string): Promise<void>;
  /** Deletes the nodes whose heartbeat is `ttlMs` old or older, and every presence row whose node is gone; how many nodes went. */
  purge(ttlMs: number): Promise<number>;
  /** Sets `node`'s connections of each user (0 deletes the row), in one statement. */
  putPresence(node: string, entries: readonly (readonly [userId: string, connections: number])[]): Promise<void>;
  /** How many distinct users have a presence row on a live node (heartbeat younger than `ttlMs`) or are in `also`. */
  uniqueUsers(ttlMs: number, also: readonly string[]): Promise<number>;
}
