/**
 * The SQLite driver of the store (src/store/store.ts): gateway.sqlite, opened by each store pool
 * thread on its own connection (src/store/database.ts), and today's synchronous repositories
 * (EntityStore, TripStore, DeadLetters) behind the async interface.
 *
 * Every better-sqlite3 transaction runs to its end synchronously inside the call, and the
 * method's Promise settles after it: nothing awaits inside a transaction, so one connection never
 * has two writes interleaved, and a refusal thrown inside it (a GatewayError) has rolled it back
 * before the caller sees the rejection. The hop costs one microtask per call.
 */
import type { Statement } from 'better-sqlite3';
import { TRIPS_CHANNEL, type CollectionSpec } from '../../features/channels/channel-config.js';
import { DeadLetters } from '../../features/channels/store/dead-letters.js';
import { EntityStore } from '../../features/channels/store/entity-store.js';
import { NodeStore } from '../../features/cluster/store/node-store.js';
import { UserGroupStore } from '../../features/azure/store/user-group-store.js';
import { RevocationStore } from '../../features/share-location/store/revocation-store.js';
import { PositionStore } from '../../features/telemetry/store/position-store.js';
import { TripMonitorStore } from '../../features/trips/store/trip-monitor-store.js';
import { TripStore } from '../../features/trips/store/trip-store.js';
import type { TripStep } from '../../features/trips/trip-steps.js';
import { openDatabase, type Db, type OpenOptions } from '../database.js';
import { SqliteLog, SqliteOutbox } from './sqlite-log.js';
import type {
  AzureUserGroupRepository,
  ChannelLog,
  DeadLetterRepository,
  Entity,
  EntityRepository,
  EquipmentInput,
  EquipmentRepository,
  LogRow,
  NodeRepository,
  Outbox,
  OutboxEvent,
  Position,
  PositionRepository,
  RevocationRepository,
  Store,
  TripMonitorRepository,
  TripRepository,
} from '../store.js';

/** A write's event, with the log row it committed when there is exactly that one (the fast path: store.ts OutboxEvent.logged). */
const written = (channel: string, logged: LogRow | null): OutboxEvent => (logged !== null && logged.channel === channel ? { channel, logged } : { channel });

class SqliteEntities implements EntityRepository {
  constructor(private readonly inner: EntityStore) {}

  async list(c: CollectionSpec, skip: number, limit: number) {
    return this.inner.list(c, skip, limit);
  }

  async get(c: CollectionSpec, id: number) {
    return this.inner.get(c, id);
  }

  async create(c: CollectionSpec, fields: Entity) {
    const [entity, logged] = this.inner.logging(() => this.inner.create(c, fields));
    return { entity, event: written(c.channel, logged) };
  }

  async update(c: CollectionSpec, id: number, fields: Entity) {
    const [result, logged] = this.inner.logging(() => this.inner.update(c, id, fields));
    if (!result) return null;
    return { ...result, event: result.updatedFields.length > 0 ? written(c.channel, logged) : null };
  }

  async delete(c: CollectionSpec, id: number) {
    const [entity, logged] = this.inner.logging(() => this.inner.delete(c, id));
    return entity ? { entity, event: written(c.channel, logged) } : null;
  }
}

class SqliteEquipment implements EquipmentRepository {
  constructor(private readonly inner: TripStore) {}

  async list() {
    return this.inner.equipment();
  }

  async get(code: string) {
    return this.inner.findEquipment(code);
  }

  async save(list: readonly EquipmentInput[]) {
    return this.inner.saveEquipment(list);
  }

  async remove(code: string) {
    return this.inner.removeEquipment(code);
  }
}

class SqliteTrips implements TripRepository {
  constructor(private readonly inner: TripStore) {}

  async step(step: TripStep, body: unknown) {
    const [result, logged] = this.inner.logging(() => this.inner.step(step, body));
    return { body: result.body, event: result.wroteEvent ? written(TRIPS_CHANNEL, logged) : null };
  }

  async get(id: number) {
    return this.inner.findTrip(id);
  }

  async list(skip: number, limit: number) {
    return this.inner.trips(skip, limit);
  }
}

class SqliteDeadLetters implements DeadLetterRepository {
  constructor(private readonly inner: DeadLetters) {}

  async move(key: Position, reason: string) {
    return this.inner.move(key, reason);
  }

  async count() {
    return this.inner.count();
  }

  async page(skip: number, limit: number) {
    return this.inner.page(skip, limit);
  }
}

export class SqliteStore implements Store {
  readonly backend = 'sqlite' as const;
  readonly entities: EntityRepository;
  readonly equipment: EquipmentRepository;
  readonly trips: TripRepository;
  readonly log: ChannelLog;
  readonly outbox: Outbox;
  readonly deadLetters: DeadLetterRepository;
  readonly positions: PositionRepository;
  readonly revocations: RevocationRepository;
  readonly tripMonitor: TripMonitorRepository;
  readonly nodes: NodeRepository;
  readonly azureUserGroups: AzureUserGroupRepository;
  private readonly probe: Statement<[]>;

  /** `maxJsonDepth`: GATEWAY_MAX_JSON_DEPTH, which every event written must pass (channels/outbox-event.ts). */
  constructor(
    private readonly db: Db,
    maxJsonDepth: number,
  ) {
    const entityStore = new EntityStore(db, maxJsonDepth);
    const tripStore = new TripStore(db, maxJsonDepth);
    this.entities = new SqliteEntities(entityStore);
    this.equipment = new SqliteEquipment(tripStore);
    this.trips = new SqliteTrips(tripStore);
    this.log = new SqliteLog(db);
    this.outbox = new SqliteOutbox(db, (channel, json) => written(channel, entityStore.logging(() => entityStore.publish(channel, json))[1]));
    this.deadLetters = new SqliteDeadLetters(new DeadLetters(db));
    const positions = new PositionStore(db);
    this.positions = {
      putJson: async (json) => positions.putJson(json),
      recent: async (notBefore) => positions.recent(notBefore),
      purge: async (notBefore) => positions.purge(notBefore),
    };
    // revokedAt and "unexpired" are this process's clock: one node, one clock.
    const revocations = new RevocationStore(db);
    this.revocations = {
      revoke: async (jti, expiresAt) => revocations.revoke(jti, expiresAt, Date.now()),
      active: async (sinceMs) => revocations.active(sinceMs, Date.now()),
      purgeExpired: async (now) => revocations.purgeExpired(now),
    };
    const monitor = new TripMonitorStore(db);
    this.tripMonitor = { activeEquipment: async () => monitor.activeEquipment(), eventsAfter: async (afterMs) => monitor.eventsAfter(afterMs) };
    const nodes = new NodeStore(db);
    this.nodes = {
      beat: async (node) => nodes.beat(node, Date.now()),
      live: async (ttlMs) => nodes.live(ttlMs, Date.now()),
      leave: async (id) => nodes.leave(id),
      purge: async (ttlMs) => nodes.purge(ttlMs, Date.now()),
      putPresence: async (node, entries) => nodes.putPresence(node, entries),
      uniqueUsers: async (ttlMs, also) => nodes.uniqueUsers(ttlMs, also, Date.now()),
    };
    const userGroups = new UserGroupStore(db);
    this.azureUserGroups = {
      add: async (hub, userId, group, bounds) => userGroups.add(hub, userId, group, bounds),
      remove: async (hub, userId, group) => userGroups.remove(hub, userId, group),
      removeUser: async (hub, userId) => userGroups.removeUser(hub, userId),
      list: async () => userGroups.list(),
    };
    this.probe = db.prepare('SELECT 1');
  }

  async ping(): Promise<void> {
    this.probe.get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/** Opens gateway.sqlite in `dataDir` (created with its tables if needed) on a connection of its own. */
export function openSqliteStore(dataDir: string, maxJsonDepth: number, options: OpenOptions = {}): SqliteStore {
  return new SqliteStore(openDatabase(dataDir, 'store', options), maxJsonDepth);
}
