/**
 * Trips on PostgreSQL. Ids come from the `sequences` row `#trips` (no collection can be named so),
 * taken in the creating transaction: as on SQLite, a refused `crear` takes no id, and the same
 * requests give the same ids on both drivers.
 *
 *   crear       BEGIN + the truck + the next id, in one round trip; the checks (usableEquipment,
 *               tripEvent) in JS; the trip, its outbox row and its trip_events row in one
 *               statement; COMMIT.
 *   the others  a read without a lock, the step and its checks in JS (steppedTrip, tripEvent), then
 *               one statement that applies only if the trip's `version` is still the one read: two
 *               nodes stepping one trip at once cannot both pass checkTransition (compare-and-set;
 *               a lost race is done again under SELECT … FOR UPDATE, checks included).
 */
import { TRIPS_CHANNEL } from '../../features/channels/channel-config.js';
import { newTrip, steppedTrip, tripEvent, tripOf } from '../../features/trips/store/trip-changes.js';
import { usableEquipment } from '../../features/trips/store/trip-store.js';
import { STEPS, tripFieldsOf, tripIdOf, tripJson, type Trip, type TripFields, type TripStep } from '../../features/trips/trip-steps.js';
import { GatewayError } from '../../errors/gateway-error.js';
import type { OutboxEvent, TripRepository } from '../store.js';
import { nextIdStatement } from './pg-entities.js';
import { appendCtes } from './pg-log.js';
import { equipmentOf, SELECT_EQUIPMENT, type EquipmentRow } from './pg-equipment.js';
import { literal, type PgSession, type Queryable } from './pg-session.js';

/** The `sequences` key of trip ids. */
const TRIP_SEQUENCE = '#trips';

interface Row {
  id: string;
  state: string;
  data: string;
  version: string;
  created_at: string;
  updated_at: string;
}

const COLUMNS = 'id, state, data, version, created_at, updated_at';

type Stepped = { body: Record<string, unknown>; event: OutboxEvent | null };
const LOST = Symbol('lost the compare-and-set');

const recordOf = (row: Row): Trip => tripOf({ ...row, id: Number(row.id) });

export class PgTrips implements TripRepository {
  constructor(
    private readonly db: PgSession,
    private readonly node: string,
    private readonly maxJsonDepth: number,
    private readonly leaseMs: number,
  ) {}

  async step(step: TripStep, body: unknown): Promise<Stepped> {
    const fields = tripFieldsOf(body, step);
    if (step === 'crear') return this.create(fields);
    const id = tripIdOf(body as Record<string, unknown>);
    const first = await this.stepFrom(this.db, step, id, fields, await this.row(id));
    if (first !== LOST) return first;
    // Lost the race to another writer: again under the row's lock, which cannot lose.
    const locked = `SELECT ${COLUMNS} FROM trips WHERE id = ${Math.trunc(id)} FOR UPDATE`;
    return this.db.transaction(locked, async (client, [row]) => {
      const again = await this.stepFrom(client, step, id, fields, (row.rows[0] as Row | undefined) ?? null);
      if (again === LOST) throw new Error(`trip ${id} changed while locked`); // cannot happen
      return again;
    });
  }

  /** The step written on `row` (the version read), or LOST when the trip changed since. */
  private async stepFrom(q: Queryable, step: TripStep, id: number, fields: TripFields, row: Row | null): Promise<Stepped | typeof LOST> {
    if (row === null) throw new GatewayError('GW_ERR_TRIP_NOT_FOUND', `No trip ${id}`);
    const current = recordOf(row);
    const now = new Date().toISOString();
    const stepped = steppedTrip(step, current, fields, now);
    if (stepped === null) return { body: tripJson(current), event: null };
    const { trip, changed } = stepped;
    const event = tripEvent(step, trip, changed, now, this.maxJsonDepth);
    const at = Date.now();
    const { rows } = await q.query<{ n: number }>(
      `WITH t AS (UPDATE trips SET state = $2, data = $3, updated_at = $4, version = version + 1 WHERE id = $1 AND version = $5 RETURNING id),
            ${appendCtes('t', { node: '$6::text', channel: '$7::text', event: '$8::text', at: '$9::bigint' }, this.leaseMs)},
            v AS (INSERT INTO trip_events (trip_id, event, at) SELECT id, $10::text, $9::bigint FROM t)
       SELECT count(*)::int AS n FROM t`,
      [id, trip.state, JSON.stringify(trip.fields), now, row.version, this.node, TRIPS_CHANNEL, event, at, STEPS[step].event],
    );
    return rows[0].n === 1 ? { body: tripJson(trip), event: { channel: TRIPS_CHANNEL } } : LOST;
  }

  private async create(fields: TripFields): Promise<Stepped> {
    const code = fields.Equipo as string;
    const first = `${SELECT_EQUIPMENT}${literal(code)}; ${nextIdStatement(TRIP_SEQUENCE)}`;
    const id = await this.db.transaction(first, async (client, [truck, next]) => {
      // A refusal here rolls back the id taken with the truck: no id is spent on a refused crear.
      usableEquipment(code, truck.rows[0] ? equipmentOf(truck.rows[0] as EquipmentRow) : null, 'truck');
      const tripId = Number((next.rows[0] as { last_id: string }).last_id);
      const now = new Date().toISOString();
      const made = newTrip(fields, now);
      const trip: Trip = { id: tripId, state: made.state, fields: made.fields, createdAt: now, updatedAt: now };
      const event = tripEvent('crear', trip, fields, now, this.maxJsonDepth);
      const at = Date.now();
      await client.query(
        `WITH t AS (INSERT INTO trips (id, state, data, version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4) RETURNING id),
              ${appendCtes('t', { node: '$5::text', channel: '$6::text', event: '$7::text', at: '$8::bigint' }, this.leaseMs)}
         INSERT INTO trip_events (trip_id, event, at) VALUES ($1, $9, $8)`,
        [tripId, trip.state, JSON.stringify(trip.fields), now, this.node, TRIPS_CHANNEL, event, at, STEPS.crear.event],
      );
      return tripId;
    });
    return { body: { id }, event: { channel: TRIPS_CHANNEL } };
  }

  private async row(id: number): Promise<Row | null> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM trips WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }

  async get(id: number) {
    const row = await this.row(id);
    return row === null ? null : tripJson(recordOf(row));
  }

  async list(skip: number, limit: number) {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM trips ORDER BY id DESC LIMIT $1 OFFSET $2`, [limit, skip]);
    return rows.map((row) => tripJson(recordOf(row)));
  }
}
