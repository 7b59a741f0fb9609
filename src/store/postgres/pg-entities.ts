/**
 * Entities on PostgreSQL (the `entities`, `sequences` and `outbox` tables of migration 1).
 *
 *   create  one statement, its own transaction: the collection's next id (the sequences row, locked
 *           until the commit, so concurrent creates on any connection get distinct ids and a failed
 *           one takes none), the entity and its outbox row. The event is built in JS before the id
 *           is known, with a placeholder where the id goes, and the statement puts the id in; the
 *           row is locked only while the server runs the statement, never across a round trip
 *           (with BEGIN … COMMIT around three round trips, 8 writers spent most of their time
 *           queued on it); prepared once per connection, as its planning cost more than its
 *           run. An event that might be refused (near the size limit, too deep) is done
 *           the slow way instead, in a transaction that knows the id before checking: the refusal
 *           names the id, as on SQLite, and takes none.
 *   update  a read without a lock, the change computed as on SQLite, then the entity and its
 *   delete  outbox row in one statement that applies only if the row's `version` is still the one
 *           read (compare-and-set: under READ COMMITTED a plain read-modify-write would let two
 *           concurrent PUTs lose one and misreport `updated_fields`). Two round trips, no lock held
 *           across them. A lost race is done again under `SELECT … FOR UPDATE` in a transaction,
 *           which cannot lose: a row written by many at once costs them a queue, never a refusal.
 *
 * Results, events and refusals come from entity-changes.ts, shared with the SQLite driver.
 */
import { randomBytes } from 'node:crypto';
import type { CollectionSpec } from '../../features/channels/channel-config.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { entityEvent, entityOf, updatedEntity, type Entity } from '../../features/channels/store/entity-changes.js';
import type { EntityRepository, OutboxEvent } from '../store.js';
import { appendCtes } from './pg-log.js';
import { literal, type PgSession, type Queryable } from './pg-session.js';

interface Row {
  id: string;
  data: string;
  version: string;
  created_at: string;
  updated_at: string;
}

const COLUMNS = 'id, data, version, created_at, updated_at';

/** The next id of a `sequences` row, for a transaction's first round trip. */
export function nextIdStatement(key: string): string {
  return `INSERT INTO sequences (collection, last_id) VALUES (${literal(key)}, 1)
    ON CONFLICT (collection) DO UPDATE SET last_id = sequences.last_id + 1 RETURNING last_id`;
}

/** The same with the key as $1, for a statement with parameters. */
const NEXT_ID = `INSERT INTO sequences (collection, last_id) VALUES ($1::text, 1)
    ON CONFLICT (collection) DO UPDATE SET last_id = sequences.last_id + 1 RETURNING last_id`;

type Updated = { entity: Entity; updatedFields: string[]; event: OutboxEvent | null } | null;
type Deleted = { entity: Entity; event: OutboxEvent } | null;
const LOST = Symbol('lost the compare-and-set');

export class PgEntities implements EntityRepository {
  constructor(
    private readonly db: PgSession,
    private readonly node: string,
    private readonly maxJsonDepth: number,
    private readonly leaseMs: number,
  ) {}

  private entity(c: CollectionSpec, row: Row): Entity {
    return entityOf(c, Number(row.id), JSON.parse(row.data) as Entity, row.created_at, row.updated_at);
  }

  private async row(c: CollectionSpec, id: number): Promise<Row | null> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM entities WHERE collection = $1 AND id = $2`, [c.path, id]);
    return rows[0] ?? null;
  }

  /** The row locked until the transaction ends (`id` is a safe integer: the REST layer parsed it). */
  private lockedRow(c: CollectionSpec, id: number): string {
    return `SELECT ${COLUMNS} FROM entities WHERE collection = ${literal(c.path)} AND id = ${Math.trunc(id)} FOR UPDATE`;
  }

  async list(c: CollectionSpec, skip: number, limit: number): Promise<Entity[]> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM entities WHERE collection = $1 ORDER BY id LIMIT $2 OFFSET $3`, [c.path, limit, skip]);
    return rows.map((row) => this.entity(c, row));
  }

  async get(c: CollectionSpec, id: number): Promise<Entity | null> {
    const row = await this.row(c, id);
    return row ? this.entity(c, row) : null;
  }

  async create(c: CollectionSpec, fields: Entity) {
    const now = new Date().toISOString();
    const parts = this.eventAroundId(c, fields, now);
    if (parts === null) return this.createLocked(c, fields);
    const { rows } = await this.db.write<{ id: string }>(
      `WITH seq AS (${NEXT_ID}),
       e AS (INSERT INTO entities (collection, id, data, version, created_at, updated_at)
             SELECT $1::text, last_id, $2::text, 1, $3::text, $3::text FROM seq RETURNING id),
       ${appendCtes('e', { node: '$4::text', channel: '$5::text', event: 'array_to_string($6::text[], e.id::text)', at: '$7::bigint' }, this.leaseMs)}
       SELECT id FROM e`,
      [c.path, JSON.stringify(fields), now, this.node, c.channel, parts, Date.now()],
      'entity-create',
    );
    return { entity: entityOf(c, Number(rows[0].id), fields, now, now), event: { channel: c.channel } };
  }

  /**
   * The created event split where the id goes (joined with the id, it is entityEvent's JSON for
   * that id), or null when it might be refused or the split is not certain: the placeholder (a
   * fresh random string, its JSON longer than any id) is in the entity's data, or the event with
   * it is refused (the event with a real id is no larger, and no deeper).
   */
  private eventAroundId(c: CollectionSpec, fields: Entity, now: string): string[] | null {
    const mark = randomBytes(12).toString('hex');
    const placeholder = mark as unknown as number; // a string where entityEvent puts the id
    let json: string;
    try {
      json = entityEvent(c, 'created', placeholder, entityOf(c, placeholder, fields, now, now), this.maxJsonDepth);
    } catch (err) {
      if (err instanceof GatewayError) return null;
      throw err;
    }
    const parts = json.split(JSON.stringify(mark));
    // entity_id, and the id field of the data unless the stored fields have one of their own.
    return parts.length === (Object.hasOwn(fields, c.idField) ? 2 : 3) ? parts : null;
  }

  /** The create in a transaction that takes the id first: the event is checked with it. */
  private async createLocked(c: CollectionSpec, fields: Entity) {
    const entity = await this.db.transaction(nextIdStatement(c.path), async (client, [next]) => {
      const id = Number((next.rows[0] as { last_id: string }).last_id);
      const now = new Date().toISOString();
      const made = entityOf(c, id, fields, now, now);
      const event = entityEvent(c, 'created', id, made, this.maxJsonDepth); // a refusal rolls back: no id taken
      await client.query(
        `WITH e AS (INSERT INTO entities (collection, id, data, version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4) RETURNING id),
         ${appendCtes('e', { node: '$5::text', channel: '$6::text', event: '$7::text', at: '$8::bigint' }, this.leaseMs)}
         SELECT 1`,
        [c.path, id, JSON.stringify(fields), now, this.node, c.channel, event, Date.now()],
      );
      return made;
    });
    return { entity, event: { channel: c.channel } };
  }

  async update(c: CollectionSpec, id: number, fields: Entity): Promise<Updated> {
    const first = await this.updateFrom(this.db, c, id, fields, await this.row(c, id));
    if (first !== LOST) return first;
    return this.db.transaction(this.lockedRow(c, id), async (client, [locked]) => {
      const again = await this.updateFrom(client, c, id, fields, (locked.rows[0] as Row | undefined) ?? null);
      if (again === LOST) throw new Error(`entities ${c.path} ${id} changed while locked`); // cannot happen
      return again;
    });
  }

  /** The update written on `row` (the version read), or LOST when the row changed since. */
  private async updateFrom(q: Queryable, c: CollectionSpec, id: number, fields: Entity, row: Row | null): Promise<Updated | typeof LOST> {
    if (!row) return null;
    const { next, updatedFields } = updatedEntity(JSON.parse(row.data) as Entity, fields);
    if (updatedFields.length === 0) return { entity: this.entity(c, row), updatedFields, event: null };
    const now = new Date().toISOString();
    const entity = entityOf(c, id, next, row.created_at, now);
    const event = entityEvent(c, 'updated', id, { ...entity, updated_fields: updatedFields }, this.maxJsonDepth, updatedFields);
    const { rowCount } = await q.query(
      `WITH e AS (UPDATE entities SET data = $3, updated_at = $4, version = version + 1
                  WHERE collection = $1 AND id = $2 AND version = $5 RETURNING id),
       ${appendCtes('e', { node: '$6::text', channel: '$7::text', event: '$8::text', at: '$9::bigint' }, this.leaseMs)}
       SELECT id FROM e`,
      [c.path, id, JSON.stringify(next), now, row.version, this.node, c.channel, event, Date.now()],
    );
    return rowCount === 1 ? { entity, updatedFields, event: { channel: c.channel } } : LOST;
  }

  async delete(c: CollectionSpec, id: number): Promise<Deleted> {
    const first = await this.deleteFrom(this.db, c, id, await this.row(c, id));
    if (first !== LOST) return first;
    return this.db.transaction(this.lockedRow(c, id), async (client, [locked]) => {
      const again = await this.deleteFrom(client, c, id, (locked.rows[0] as Row | undefined) ?? null);
      if (again === LOST) throw new Error(`entities ${c.path} ${id} changed while locked`); // cannot happen
      return again;
    });
  }

  private async deleteFrom(q: Queryable, c: CollectionSpec, id: number, row: Row | null): Promise<Deleted | typeof LOST> {
    if (!row) return null;
    const entity = this.entity(c, row);
    const event = entityEvent(c, 'deleted', id, entity, this.maxJsonDepth);
    const { rowCount } = await q.query(
      `WITH e AS (DELETE FROM entities WHERE collection = $1 AND id = $2 AND version = $3 RETURNING id),
       ${appendCtes('e', { node: '$4::text', channel: '$5::text', event: '$6::text', at: '$7::bigint' }, this.leaseMs)}
       SELECT id FROM e`,
      [c.path, id, row.version, this.node, c.channel, event, Date.now()],
    );
    return rowCount === 1 ? { entity, event: { channel: c.channel } } : LOST;
  }
}
