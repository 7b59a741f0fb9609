/**
 * Equipment and trips (docs/compat/trips.md), on the store pool. A trip step, its event in the outbox
 * (channel `viajes`, so it gets an offset, history and recovery, and reaches the Azure groups) and
 * its row in trip_events are one transaction: a refused step (illegal transition, unknown truck,
 * event over 1 MB) writes nothing and emits nothing.
 */
import type { Statement } from 'better-sqlite3';
import { TRIPS_CHANNEL } from '../../channels/channel-config.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { STEPS, tripFieldsOf, tripIdOf, tripJson, type Trip, type TripFields, type TripStep } from '../trip-steps.js';
import { newTrip, steppedTrip, tripEvent, tripOf, type TripRecord } from './trip-changes.js';
import type { Db } from '../../../store/database.js';
import { SqliteLogAppender } from '../../../store/sqlite/sqlite-log.js';
import type { LogRow } from '../../../store/store.js';

const EQUIPMENT_KINDS = ['truck', 'excavator'] as const;
export type EquipmentKind = (typeof EQUIPMENT_KINDS)[number];

export interface Equipment {
  readonly code: string;
  readonly kind: EquipmentKind;
  readonly active: boolean;
  readonly description: string | null;
  readonly updated_at: string;
}

/** Equipment as a REST PUT or the seed file gives it: the store stamps `updated_at`. */
export type EquipmentInput = Omit<Equipment, 'updated_at'>;

export const EQUIPMENT_CODE = /^[A-Za-z0-9_.:-]{1,64}$/;

type TripRow = TripRecord;

interface EquipmentRow {
  code: string;
  kind: string;
  active: number;
  description: string | null;
  updated_at: string;
}

/** Validates an equipment record (the REST body or a seed file entry). */
export function parseEquipment(value: unknown, code?: string): EquipmentInput {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new GatewayError('GW_ERR_BODY_INVALID', 'Equipment must be an object {"code","kind","active"}');
  const e = value as Record<string, unknown>;
  const c = code ?? e.code;
  if (typeof c !== 'string' || !EQUIPMENT_CODE.test(c)) throw new GatewayError('GW_ERR_BODY_INVALID', '"code" must be 1-64 letters, digits, _ . : -');
  if (!EQUIPMENT_KINDS.includes(e.kind as EquipmentKind)) throw new GatewayError('GW_ERR_BODY_INVALID', '"kind" must be truck or excavator');
  if (e.active !== undefined && typeof e.active !== 'boolean') throw new GatewayError('GW_ERR_BODY_INVALID', '"active" must be true or false');
  if (e.description !== undefined && e.description !== null && (typeof e.description !== 'string' || e.description.length > 500)) {
    throw new GatewayError('GW_ERR_BODY_INVALID', '"description" must be a string of at most 500 characters');
  }
  return { code: c, kind: e.kind as EquipmentKind, active: e.active !== false, description: (e.description as string | undefined) ?? null };
}

/**
 * The equipment, if it exists (`e` not null), is active and (when given) of this kind; throws
 * otherwise (docs/compat/trips.md validate_equipment). Pure, so every store driver refuses alike.
 */
export function usableEquipment(code: string, e: Equipment | null, kind?: EquipmentKind): Equipment {
  if (e === null) throw new GatewayError('GW_ERR_EQUIPMENT_UNKNOWN', `Invalid User ID: no equipment ${JSON.stringify(code.slice(0, 64))}`);
  if (!e.active) throw new GatewayError('GW_ERR_EQUIPMENT_INACTIVE', `Equipment ${code} is not active`);
  if (kind !== undefined && e.kind !== kind) throw new GatewayError('GW_ERR_BODY_INVALID', `Equipment ${code} is a ${e.kind}, not a ${kind}`);
  return e;
}

const equipmentOf = (row: EquipmentRow): Equipment => ({
  code: row.code,
  kind: row.kind as EquipmentKind,
  active: row.active === 1,
  description: row.description,
  updated_at: row.updated_at,
});

export class TripStore {
  private readonly selectTrip: Statement<[number], TripRow>;
  private readonly insertTrip: Statement<[string, string, string, string]>;
  private readonly updateTrip: Statement<[string, string, string, number]>;
  private readonly listTrips: Statement<[number, number], TripRow>;
  private readonly insertTripEvent: Statement<[number, string, number]>;
  private readonly log: SqliteLogAppender;
  private readonly selectEquipment: Statement<[string], EquipmentRow>;
  private readonly allEquipment: Statement<[], EquipmentRow>;
  private readonly upsertEquipment: Statement<[string, string, number, string | null, string]>;
  private readonly deleteEquipment: Statement<[string]>;

  constructor(
    private readonly db: Db,
    private readonly maxJsonDepth: number,
  ) {
    this.selectTrip = db.prepare('SELECT id, state, data, created_at, updated_at FROM trips WHERE id = ?');
    this.insertTrip = db.prepare('INSERT INTO trips (state, data, created_at, updated_at) VALUES (?, ?, ?, ?)');
    this.updateTrip = db.prepare('UPDATE trips SET state = ?, data = ?, updated_at = ? WHERE id = ?');
    this.listTrips = db.prepare('SELECT id, state, data, created_at, updated_at FROM trips ORDER BY id DESC LIMIT ? OFFSET ?');
    this.insertTripEvent = db.prepare('INSERT INTO trip_events (trip_id, event, at) VALUES (?, ?, ?)');
    this.log = new SqliteLogAppender(db);
    this.selectEquipment = db.prepare('SELECT code, kind, active, description, updated_at FROM equipment WHERE code = ?');
    this.allEquipment = db.prepare('SELECT code, kind, active, description, updated_at FROM equipment ORDER BY code');
    this.upsertEquipment = db.prepare(`INSERT INTO equipment (code, kind, active, description, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (code) DO UPDATE SET kind = excluded.kind, active = excluded.active, description = excluded.description, updated_at = excluded.updated_at`);
    this.deleteEquipment = db.prepare('DELETE FROM equipment WHERE code = ?');
  }

  /**
   * One step of a trip's lifecycle. Returns the reply body (`{"id"}` for crear, the trip otherwise)
   * and whether an event was written. Throws GatewayError (nothing written) when refused.
   */
  step(step: TripStep, body: unknown): { body: Record<string, unknown>; wroteEvent: boolean } {
    const fields = tripFieldsOf(body, step);
    return this.db.transaction(() => {
      const now = new Date().toISOString();
      let trip: Trip;
      let changed: TripFields = fields;
      if (step === 'crear') {
        this.usable(fields.Equipo as string, 'truck');
        const made = newTrip(fields, now);
        const { lastInsertRowid } = this.insertTrip.run(made.state, JSON.stringify(made.fields), now, now);
        trip = { id: Number(lastInsertRowid), state: made.state, fields: made.fields, createdAt: now, updatedAt: now };
      } else {
        const row = this.selectTrip.get(tripIdOf(body as Record<string, unknown>));
        if (row === undefined) throw new GatewayError('GW_ERR_TRIP_NOT_FOUND', `No trip ${tripIdOf(body as Record<string, unknown>)}`);
        const current = tripOf(row);
        const stepped = steppedTrip(step, current, fields, now);
        if (stepped === null) return { body: tripJson(current), wroteEvent: false };
        ({ trip, changed } = stepped);
        this.updateTrip.run(trip.state, JSON.stringify(trip.fields), now, trip.id);
      }
      this.log.append(TRIPS_CHANNEL, tripEvent(step, trip, changed, now, this.maxJsonDepth));
      this.insertTripEvent.run(trip.id, STEPS[step].event, Date.now());
      return { body: step === 'crear' ? { id: trip.id } : tripJson(trip), wroteEvent: true };
    })();
  }

  /** Runs step() and returns, with its result, the log row it committed (SqliteLogAppender.capture). */
  logging<T>(write: () => T): [T, LogRow | null] {
    return this.log.capture(write);
  }

  getTrip(id: number): Record<string, unknown> {
    const trip = this.findTrip(id);
    if (trip === null) throw new GatewayError('GW_ERR_TRIP_NOT_FOUND', `No trip ${id}`);
    return trip;
  }

  /** The trip as the REST API shows it, or null when there is none. */
  findTrip(id: number): Record<string, unknown> | null {
    const row = this.selectTrip.get(id);
    return row === undefined ? null : tripJson(tripOf(row));
  }

  trips(skip: number, limit: number): Record<string, unknown>[] {
    return this.listTrips.all(limit, skip).map((row) => tripJson(tripOf(row)));
  }

  /** The equipment, if it exists, is active and (when given) of this kind; throws otherwise (usableEquipment). */
  usable(code: string, kind?: EquipmentKind): Equipment {
    return usableEquipment(code, this.findEquipment(code), kind);
  }

  findEquipment(code: string): Equipment | null {
    const row = this.selectEquipment.get(code);
    return row === undefined ? null : equipmentOf(row);
  }

  equipment(code?: string): Equipment[] {
    if (code === undefined) return this.allEquipment.all().map(equipmentOf);
    const e = this.findEquipment(code);
    if (e === null) throw new GatewayError('GW_ERR_EQUIPMENT_UNKNOWN', `No equipment ${JSON.stringify(code.slice(0, 64))}`);
    return [e];
  }

  saveEquipment(list: readonly EquipmentInput[]): Equipment[] {
    const now = new Date().toISOString();
    return this.db.transaction(() =>
      list.map((e) => {
        this.upsertEquipment.run(e.code, e.kind, e.active ? 1 : 0, e.description, now);
        return { ...e, updated_at: now };
      }),
    )();
  }

  removeEquipment(code: string): boolean {
    return this.deleteEquipment.run(code).changes > 0;
  }
}
