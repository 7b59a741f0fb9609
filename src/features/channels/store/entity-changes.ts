/**
 * What an entity write computes, apart from the database: the entity as the REST API answers it,
 * the fields an update changes, and the event each write puts in the outbox. Pure, so every store
 * driver (src/store/sqlite/, src/store/postgres/) answers and refuses byte for byte alike.
 */
import type { CollectionSpec } from '../channel-config.js';
import { entityEventJson } from '../channel-event.js';
import { checkOutboxEvent } from '../outbox-event.js';

export type Entity = Record<string, unknown>;

export type EntityAction = 'created' | 'updated' | 'deleted';

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
/** A stored field by name: own properties only (`constructor` is not a field of every entity). */
const fieldOf = (entity: Entity, name: string) => (Object.hasOwn(entity, name) ? entity[name] : undefined);

/** The entity as the API shows it: its id first, its stored fields in their order, then the times. */
export function entityOf(c: CollectionSpec, id: number, data: Entity, createdAt: string, updatedAt: string): Entity {
  return { [c.idField]: id, ...data, created_at: createdAt, updated_at: updatedAt };
}

/**
 * The stored fields after an update: `fields` over `current`, a field set to null removed.
 * `updatedFields` empty: nothing changed (and nothing is to be written).
 */
export function updatedEntity(current: Entity, fields: Entity): { next: Entity; updatedFields: string[] } {
  const updatedFields = Object.keys(fields).filter((k) => !sameValue(fieldOf(current, k), fields[k]));
  const next = { ...current };
  for (const k of updatedFields) {
    if (fields[k] === null) delete next[k];
    // defineProperty, not `next[k] =`: assigning a key named __proto__ would set the prototype.
    else Object.defineProperty(next, k, { value: fields[k], enumerable: true, writable: true, configurable: true });
  }
  return { next, updatedFields };
}

/**
 * The event of a write, checked as ingest will check it (checkOutboxEvent): a refusal throws
 * GatewayError, and the caller, still inside the write's transaction, writes nothing.
 */
export function entityEvent(c: CollectionSpec, action: EntityAction, id: number, data: Entity, maxJsonDepth: number, fieldsUpdated?: string[]): string {
  const verb = { created: 'create', updated: 'update', deleted: 'delete' }[action];
  const json = entityEventJson({
    entityType: c.entityType,
    action,
    entityId: id,
    data,
    timestamp: new Date().toISOString(),
    metadata: { action: `${verb}_${c.entityType}`, ...(fieldsUpdated ? { fields_updated: fieldsUpdated } : {}) },
  });
  checkOutboxEvent(json, maxJsonDepth, 'GW_ERR_BODY_INVALID', `The ${action} event of ${c.path} ${id}`);
  return json;
}
