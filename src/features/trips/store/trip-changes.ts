/**
 * What a trip step computes, apart from the database: the trip after the step and the `viajes`
 * event it writes, with the refusals of docs/compat/trips.md (illegal transition, event over the
 * 1 MB Azure limit, too deep). Pure, so every store driver (src/store/sqlite/, src/store/postgres/)
 * answers and refuses byte for byte alike.
 */
import { MAX_MESSAGE_BYTES } from '../../azure/commands.js';
import { entityEventJson } from '../../channels/channel-event.js';
import { checkOutboxEvent } from '../../channels/outbox-event.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { checkTransition, eventPayload, STEPS, type Trip, type TripFields, type TripState, type TripStep } from '../trip-steps.js';

/** A trip as a store keeps it: the state, the fields as JSON text, the two ISO times. */
export interface TripRecord {
  readonly id: number;
  readonly state: string;
  readonly data: string;
  readonly created_at: string;
  readonly updated_at: string;
}

export function tripOf(row: TripRecord): Trip {
  return { id: row.id, state: row.state as TripState, fields: JSON.parse(row.data) as TripFields, createdAt: row.created_at, updatedAt: row.updated_at };
}

/** The state and fields of a trip that `crear` makes (its id is the store's). */
export function newTrip(fields: TripFields, now: string): { state: TripState; fields: TripFields } {
  return { state: STEPS.crear.to!, fields: { ...fields, HoraInicio: fields.HoraInicio ?? now } };
}

/**
 * A step other than `crear` on `current`: the trip after it and the fields it changed, or null for
 * an `actualizar` that changes nothing. Throws GW_ERR_TRIP_TRANSITION when the step is illegal.
 */
export function steppedTrip(step: TripStep, current: Trip, fields: TripFields, now: string): { trip: Trip; changed: TripFields } | null {
  const spec = STEPS[step];
  checkTransition(current, step);
  let changed = fields;
  if (step === 'actualizar') {
    changed = Object.fromEntries(Object.entries(fields).filter(([k, v]) => JSON.stringify(current.fields[k] ?? null) !== JSON.stringify(v)));
    if (Object.keys(changed).length === 0) return null;
  }
  const stamp = spec.stamps !== null && fields[spec.stamps] === undefined ? { [spec.stamps]: now } : {};
  return { trip: { ...current, state: spec.to ?? current.state, fields: { ...current.fields, ...changed, ...stamp }, updatedAt: now }, changed };
}

/** The step's event on `viajes`, checked (over 1 MB: GW_ERR_MESSAGE_TOO_LARGE; then checkOutboxEvent). */
export function tripEvent(step: TripStep, trip: Trip, changed: TripFields, now: string, maxJsonDepth: number): string {
  const spec = STEPS[step];
  const event = entityEventJson({
    entityType: 'viaje',
    action: spec.event,
    entityId: trip.id,
    data: eventPayload(step, trip, changed, now),
    timestamp: now,
    metadata: { groups: [...spec.groups], estado: trip.state },
  });
  if (Buffer.byteLength(event) > MAX_MESSAGE_BYTES) {
    throw new GatewayError(
      'GW_ERR_MESSAGE_TOO_LARGE',
      `Message Too Large: the ${spec.event} event would be ${Buffer.byteLength(event)} bytes, over the 1 MB Azure Web PubSub limit; compress or paginate`,
    );
  }
  checkOutboxEvent(event, maxJsonDepth, 'GW_ERR_BODY_INVALID', `The ${spec.event} event`);
  return event;
}
