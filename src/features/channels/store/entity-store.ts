/**
 * Entities of every collection, and the outbox. Each write and its event are one transaction: the
 * event row is in the outbox exactly when the entity change is in the table, so a crash or a broker
 * outage can delay an event but never lose it or publish one for a write that did not happen.
 * Runs on the store pool's threads (pool/store-task.ts), never on an edge.
 */
import type { Statement } from 'better-sqlite3';
import type { CollectionSpec } from '../channel-config.js';
import { entityEventJson } from '../channel-event.js';
import { checkOutboxEvent } from '../outbox-event.js';
import type { Db } from '../../../store/database.js';

export type Entity = Record<string, unknown>;

interface Row {
  id: number;
  data: string;
  created_at: string;
  updated_at: string;
}

export interface UpdateResult {
  readonly entity: Entity;
  /** Fields whose value changed; empty: nothing changed and no event was written. */
  readonly updatedFields: string[];
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
/** A stored field by name: own properties only (`constructor` is not a field of every entity). */
const fieldOf = (entity: Entity, name: string) => (Object.hasOwn(entity, name) ? entity[name] : undefined);

export class EntityStore {
  private readonly nextId: Statement<[string]>;
  private readonly insert: Statement<[string, number, string, string, string]>;
  private readonly select: Statement<[string, number], Row>;
  private readonly page: Statement<[string, number, number], Row>;
  private readonly change: Statement<[string, string, string, number]>;
  private readonly remove: Statement<[string, number]>;
  private readonly enqueue: Statement<[string, string, number]>;

  /** `maxJsonDepth`: GATEWAY_MAX_JSON_DEPTH, which every event written must pass (checkOutboxEvent). */
  constructor(
    private readonly db: Db,
    private readonly maxJsonDepth: number,
  ) {
    this.nextId = db.prepare(`INSERT INTO sequences (collection, last_id) VALUES (?, 1)
      ON CONFLICT (collection) DO UPDATE SET last_id = last_id + 1 RETURNING last_id`);
    this.insert = db.prepare('INSERT INTO entities (collection, id, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?)');
    this.select = db.prepare('SELECT id, data, created_at, updated_at FROM entities WHERE collection = ? AND id = ?');
    this.page = db.prepare('SELECT id, data, created_at, updated_at FROM entities WHERE collection = ? ORDER BY id LIMIT ? OFFSET ?');
    this.change = db.prepare('UPDATE entities SET data = ?, updated_at = ? WHERE collection = ? AND id = ?');
    this.remove = db.prepare('DELETE FROM entities WHERE collection = ? AND id = ?');
    this.enqueue = db.prepare('INSERT INTO outbox (channel, payload, created_at) VALUES (?, ?, ?)');
  }

  private entity(c: CollectionSpec, row: Row): Entity {
    return { [c.idField]: row.id, ...(JSON.parse(row.data) as Entity), created_at: row.created_at, updated_at: row.updated_at };
  }

  private event(c: CollectionSpec, action: 'created' | 'updated' | 'deleted', id: number, data: Entity, fieldsUpdated?: string[]): void {
    const verb = { created: 'create', updated: 'update', deleted: 'delete' }[action];
    const json = entityEventJson({
      entityType: c.entityType,
      action,
      entityId: id,
      data,
      timestamp: new Date().toISOString(),
      metadata: { action: `${verb}_${c.entityType}`, ...(fieldsUpdated ? { fields_updated: fieldsUpdated } : {}) },
    });
    // Inside the write's transaction: a refusal here writes neither the entity nor the event.
    checkOutboxEvent(json, this.maxJsonDepth, 'GW_ERR_BODY_INVALID', `The ${action} event of ${c.path} ${id}`);
    this.enqueue.run(c.channel, json, Date.now());
  }

  list(c: CollectionSpec, skip: number, limit: number): Entity[] {
    return this.page.all(c.path, limit, skip).map((row) => this.entity(c, row));
  }

  get(c: CollectionSpec, id: number): Entity | null {
    const row = this.select.get(c.path, id);
    return row ? this.entity(c, row) : null;
  }

  create(c: CollectionSpec, fields: Entity): Entity {
    return this.db.transaction(() => {
      const { last_id: id } = this.nextId.get(c.path) as { last_id: number };
      const now = new Date().toISOString();
      this.insert.run(c.path, id, JSON.stringify(fields), now, now);
      const entity = { [c.idField]: id, ...fields, created_at: now, updated_at: now };
      this.event(c, 'created', id, entity);
      return entity;
    })();
  }

  /** null: no such entity. An update that changes nothing writes nothing and emits nothing. */
  update(c: CollectionSpec, id: number, fields: Entity): UpdateResult | null {
    return this.db.transaction((): UpdateResult | null => {
      const row = this.select.get(c.path, id);
      if (!row) return null;
      const current = JSON.parse(row.data) as Entity;
      const updatedFields = Object.keys(fields).filter((k) => !sameValue(fieldOf(current, k), fields[k]));
      if (updatedFields.length === 0) return { entity: this.entity(c, row), updatedFields };
      const next = { ...current };
      for (const k of updatedFields) {
        if (fields[k] === null) delete next[k];
        // defineProperty, not `next[k] =`: assigning a key named __proto__ would set the prototype.
        else Object.defineProperty(next, k, { value: fields[k], enumerable: true, writable: true, configurable: true });
      }
      const now = new Date().toISOString();
      this.change.run(JSON.stringify(next), now, c.path, id);
      const entity = { [c.idField]: id, ...next, created_at: row.created_at, updated_at: now };
      this.event(c, 'updated', id, { ...entity, updated_fields: updatedFields }, updatedFields);
      return { entity, updatedFields };
    })();
  }

  /** The deleted entity, or null when there was none. */
  delete(c: CollectionSpec, id: number): Entity | null {
    return this.db.transaction((): Entity | null => {
      const row = this.select.get(c.path, id);
      if (!row) return null;
      this.remove.run(c.path, id);
      const entity = this.entity(c, row);
      this.event(c, 'deleted', id, entity);
      return entity;
    })();
  }

  /** An event from the publish API: into the outbox, so a broker outage delays it and loses nothing. */
  publish(channel: string, payloadJson: string): void {
    checkOutboxEvent(payloadJson, this.maxJsonDepth, 'GW_ERR_EVENT_INVALID', 'The event');
    this.enqueue.run(channel, payloadJson, Date.now());
  }
}
