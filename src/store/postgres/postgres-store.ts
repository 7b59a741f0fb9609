/**
 * The PostgreSQL driver of the store (src/store/store.ts), on a `pg.Pool` (pg-pool.ts) whose
 * database has the schema of migration 1 (migrations.ts). Several drivers — pool threads, nodes —
 * may share one database: ids, compare-and-set updates and the outbox are safe across them.
 *
 * What the methods return is byte for byte what the SQLite driver returns for the same calls
 * (entity data is text, times are the same JavaScript ISO strings, results and events are built by
 * the same pure functions: entity-changes.ts, trip-changes.ts); refusals are the same
 * GatewayErrors. A database that cannot be reached or does not answer in time is
 * GW_ERR_STORE_UNAVAILABLE (store-unavailable.ts); the pool's timeouts bound every call.
 *
 * Opened by src/store/open-store.ts when GATEWAY_DATABASE_URL is set (docs/design/cluster-store.md §7).
 */
import { randomBytes } from 'node:crypto';
import type { ChannelLog, DeadLetterRepository, EntityRepository, EquipmentRepository, Outbox, PositionRepository, Store, TripRepository } from '../store.js';
import type { AzureUserGroupRepository, NodeRepository, RevocationRepository, TripMonitorRepository } from '../store.js';
import { DEFAULT_LEASE_MS, PgLog } from './pg-log.js';
import { PgEntities } from './pg-entities.js';
import { PgEquipment } from './pg-equipment.js';
import { PgDeadLetters, PgOutbox } from './pg-outbox.js';
import type { PgPool } from './pg-pool.js';
import { PgNodes } from './pg-nodes.js';
import { PgPositions } from './pg-positions.js';
import { PgRevocations } from './pg-revocations.js';
import { PgAzureUserGroups } from './pg-azure-user-groups.js';
import { PgTripMonitor } from './pg-trip-monitor.js';
import { PgSession } from './pg-session.js';
import { PgTrips } from './pg-trips.js';

export interface PostgresStoreOptions {
  /** GATEWAY_MAX_JSON_DEPTH, which every event written must pass (channels/outbox-event.ts). */
  readonly maxJsonDepth: number;
  /** Names this node in the outbox rows it writes (default: random per process, 12 hex digits). */
  readonly node?: string;
  /** close() ends the pool too (default true); false when the caller shares it. */
  readonly ownsPool?: boolean;
  /** How long a writer's relay has its outbox rows to itself (default 5,000 ms; GATEWAY_OUTBOX_LEASE_MS). */
  readonly leaseMs?: number;
}

export class PostgresStore implements Store {
  readonly backend = 'postgres' as const;
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
  private readonly db: PgSession;
  private readonly ownsPool: boolean;
  private closed = false;

  constructor(
    private readonly pool: PgPool,
    options: PostgresStoreOptions,
  ) {
    const node = options.node ?? randomBytes(6).toString('hex');
    const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.db = new PgSession(pool);
    this.entities = new PgEntities(this.db, node, options.maxJsonDepth, leaseMs);
    this.equipment = new PgEquipment(this.db);
    this.trips = new PgTrips(this.db, node, options.maxJsonDepth, leaseMs);
    this.log = new PgLog(this.db);
    this.outbox = new PgOutbox(this.db, node, options.maxJsonDepth, leaseMs);
    this.deadLetters = new PgDeadLetters(this.db);
    this.positions = new PgPositions(this.db);
    this.revocations = new PgRevocations(this.db);
    this.tripMonitor = new PgTripMonitor(this.db);
    this.nodes = new PgNodes(this.db);
    this.azureUserGroups = new PgAzureUserGroups(this.db);
    this.ownsPool = options.ownsPool ?? true;
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsPool) await this.pool.end();
  }
}
