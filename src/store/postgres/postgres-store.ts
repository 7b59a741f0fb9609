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
import type { DeadLetterRepository, EntityRepository, EquipmentRepository, Outbox, PositionRepository, Store, TripRepository } from '../store.js';
import { PgEntities } from './pg-entities.js';
import { PgEquipment } from './pg-equipment.js';
import { PgDeadLetters, PgOutbox } from './pg-outbox.js';
import type { PgPool } from './pg-pool.js';
import { PgPositions } from './pg-positions.js';
import { PgSession } from './pg-session.js';
import { PgTrips } from './pg-trips.js';

export interface PostgresStoreOptions {
  /** GATEWAY_MAX_JSON_DEPTH, which every event written must pass (channels/outbox-event.ts). */
  readonly maxJsonDepth: number;
  /** Names this node in the outbox rows it writes (default: random per process, 12 hex digits). */
  readonly node?: string;
  /** close() ends the pool too (default true); false when the caller shares it. */
  readonly ownsPool?: boolean;
}

export class PostgresStore implements Store {
  readonly backend = 'postgres' as const;
  readonly entities: EntityRepository;
  readonly equipment: EquipmentRepository;
  readonly trips: TripRepository;
  readonly outbox: Outbox;
  readonly deadLetters: DeadLetterRepository;
  readonly positions: PositionRepository;
  private readonly db: PgSession;
  private readonly ownsPool: boolean;
  private closed = false;

  constructor(
    private readonly pool: PgPool,
    options: PostgresStoreOptions,
  ) {
    const node = options.node ?? randomBytes(6).toString('hex');
    this.db = new PgSession(pool);
    this.entities = new PgEntities(this.db, node, options.maxJsonDepth);
    this.equipment = new PgEquipment(this.db);
    this.trips = new PgTrips(this.db, node, options.maxJsonDepth);
    this.outbox = new PgOutbox(this.db, node, options.maxJsonDepth);
    this.deadLetters = new PgDeadLetters(this.db);
    this.positions = new PgPositions(this.db);
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
