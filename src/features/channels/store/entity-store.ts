/**
 * Entities of every collection, and their events. Each write and its event are one transaction: the
 * event is in the channel log and the outbox exactly when the entity change is in the table, so a crash or a broker
 * outage can delay an event but never lose it or publish one for a write that did not happen.
 * Runs on the store pool's threads (pool/store-task.ts), never on an edge.
 */
import type { Statement } from 'better-sqlite3';
import type { CollectionSpec } from '../channel-config.js';
import { checkOutboxEvent } from '../outbox-event.js';
import type { Db } from '../../../store/database.js';
import { SqliteLogAppender } from '../../../store/sqlite/sqlite-log.js';
import type { LogRow, Position } from '../../../store/store.js';
import { entityEvent, entityOf, updatedEntity, type Entity, type EntityAction } from './entity-changes.js';

export type { Entity };

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

export class EntityStore {
  private readonly nextId: Statement<[string]>;
  private readonly insert: Statement<[string, number, string, string, string]>;
  private readonly select: Statement<[string, number], Row>;
  private readonly page: Statement<[string, number, number], Row>;
  private readonly change: Statement<[string, string, string, number]>;
  private readonly remove: Statement<[string, number]>;
  private readonly log: SqliteLogAppender;

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
    this.log = new SqliteLogAppender(db);
  }

  private entity(c: CollectionSpec, row: Row): Entity {
    return entityOf(c, row.id, JSON.parse(row.data) as Entity, row.created_at, row.updated_at);
  }

  /** Inside the write's transaction: a refusal here writes neither the entity nor the event. */
  private event(c: CollectionSpec, action: EntityAction, id: number, data: Entity, fieldsUpdated?: string[]): void {
    this.log.append(c.channel, entityEvent(c, action, id, data, this.maxJsonDepth, fieldsUpdated));
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
      const entity = entityOf(c, id, fields, now, now);
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
      const { next, updatedFields } = updatedEntity(current, fields);
      if (updatedFields.length === 0) return { entity: this.entity(c, row), updatedFields };
      const now = new Date().toISOString();
      this.change.run(JSON.stringify(next), now, c.path, id);
      const entity = entityOf(c, id, next, row.created_at, now);
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

  /** Runs one of the writes above and returns, with its result, the log row it committed (SqliteLogAppender.capture). */
  logging<T>(write: () => T): [T, LogRow | null] {
    return this.log.capture(write);
  }

  /** An event from the publish API: into the log and the outbox, so a broker outage delays it and loses nothing. */
  publish(channel: string, payloadJson: string): Position {
    checkOutboxEvent(payloadJson, this.maxJsonDepth, 'GW_ERR_EVENT_INVALID', 'The event');
    return this.db.transaction(() => this.log.append(channel, payloadJson))();
  }
}
