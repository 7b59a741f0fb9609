/**
 * The one event shape behind every channel envelope. What arrives (a CRUD write's event, the
 * publish API, a backend publishing on MQTT) is one of the references' envelopes; it is parsed
 * into a ChannelEvent once, and each endpoint family renders its own envelope from it
 * (channels/envelopes.ts):
 *
 *   {"type":"entity_event","entity_type","event_type","entity_id","data","metadata"?,"timestamp"?}   docs/compat/sensor-events.md
 *   {"type":"realtime_update","entity_type","action","data","timestamp"?}                          docs/compat/pet-care.md
 *   {"type":"notification","notification_type","user_id"?,"data"?,"timestamp"?}                    docs/compat/pet-care.md
 */
import { GatewayError } from '../../errors/gateway-error.js';

interface EntityChange {
  readonly kind: 'entity';
  readonly entityType: string;
  /** created | updated | deleted, or whatever the publisher names. */
  readonly action: string;
  readonly entityId: string | number | null;
  readonly data: Record<string, unknown>;
  readonly metadata: Record<string, unknown> | null;
  readonly timestamp: string;
}

interface UserNotification {
  readonly kind: 'notification';
  readonly notificationType: string;
  /** null: every subscriber of the channel. */
  readonly userId: string | null;
  readonly data: Record<string, unknown>;
  readonly timestamp: string;
}

export type ChannelEvent = EntityChange | UserNotification;

const NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

function invalid(message: string): never {
  throw new GatewayError('GW_ERR_EVENT_INVALID', message);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function name(value: unknown, field: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) invalid(`"${field}" must be a name of 1-128 characters (letters, digits, _ . : -)`);
  return value;
}

function timestampOf(value: unknown, at: number): string {
  if (value === undefined || value === null) return new Date(at).toISOString();
  if (typeof value !== 'string' || value.length > 40 || Number.isNaN(Date.parse(value))) invalid('"timestamp" must be an ISO 8601 date when given');
  return value;
}

/**
 * Parses one of the three reference envelopes; throws GW_ERR_EVENT_INVALID naming the field. `at`
 * (ms): the timestamp of an event without one (the time it was logged, so every node renders the same).
 */
export function parseChannelEvent(value: unknown, at = Date.now()): ChannelEvent {
  if (!isObject(value)) invalid('An event must be a JSON object with a "type"');
  switch (value.type) {
    case 'entity_event':
    case 'realtime_update': {
      const entityEvent = value.type === 'entity_event';
      const action = name(entityEvent ? value.event_type : value.action, entityEvent ? 'event_type' : 'action');
      if (!isObject(value.data)) invalid('"data" must be an object');
      const entityId = value.entity_id ?? null;
      if (entityId !== null && typeof entityId !== 'number' && typeof entityId !== 'string') invalid('"entity_id" must be a number or a string');
      if (value.metadata !== undefined && value.metadata !== null && !isObject(value.metadata)) invalid('"metadata" must be an object');
      return {
        kind: 'entity',
        entityType: name(value.entity_type, 'entity_type'),
        action,
        entityId,
        data: value.data,
        metadata: (value.metadata as Record<string, unknown> | undefined) ?? null,
        timestamp: timestampOf(value.timestamp, at),
      };
    }
    case 'notification': {
      const userId = value.user_id ?? null;
      if (userId !== null && typeof userId !== 'number' && typeof userId !== 'string') invalid('"user_id" must be a string or a number');
      const data = value.data ?? {};
      if (!isObject(data)) invalid('"data" must be an object');
      return {
        kind: 'notification',
        notificationType: name(value.notification_type, 'notification_type'),
        userId: userId === null ? null : name(String(userId), 'user_id'),
        data,
        timestamp: timestampOf(value.timestamp, at),
      };
    }
    default:
      invalid(`"type" must be entity_event, realtime_update or notification (got ${JSON.stringify(String(value.type).slice(0, 40))})`);
  }
}

/** The docs/compat/sensor-events.md envelope of a CRUD write, as the store writes it to the outbox. */
export function entityEventJson(change: Omit<EntityChange, 'kind'>): string {
  return JSON.stringify({
    type: 'entity_event',
    entity_type: change.entityType,
    event_type: change.action,
    entity_id: change.entityId,
    data: change.data,
    timestamp: change.timestamp,
    metadata: change.metadata ?? undefined,
  });
}
