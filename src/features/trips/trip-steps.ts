/**
 * The trip lifecycle of docs/compat/trips.md (trucks and excavators): the fields a trip has, the steps
 * that move it, which state each step may start from, and the event each step emits, with the
 * reference's payload (the `data` of the Azure `message` frame).
 *
 *   crear ──► creado ──finalizar-carga──► carga_finalizada ──en-descarga──► en_descarga
 *                │                               │          └──finalizar──┐     │
 *                └─────────── cancelar ◄─────────┴──────────────────────────┼─────┘
 *                                                                 finalizado ◄─┘
 *   actualizar: in creado, carga_finalizada or en_descarga; terminal: finalizado, cancelado.
 */
import { GatewayError } from '../../errors/gateway-error.js';

export const TRIP_STATES = ['creado', 'carga_finalizada', 'en_descarga', 'finalizado', 'cancelado'] as const;
export type TripState = (typeof TRIP_STATES)[number];

export const TRIP_STEPS = ['crear', 'actualizar', 'finalizar-carga', 'en-descarga', 'finalizar', 'cancelar'] as const;
export type TripStep = (typeof TRIP_STEPS)[number];

interface StepSpec {
  /** States it may start from (crear: none, it starts a trip). */
  readonly from: readonly TripState[];
  /** The state it leaves the trip in; null: unchanged. */
  readonly to: TripState | null;
  readonly event: string;
  /** Azure groups the event goes to (excavators always; trucks when it frees a loading spot). */
  readonly groups: readonly string[];
  /** Timestamp field this step sets, when the request names none. */
  readonly stamps: string | null;
}

const EXCAVATORS = 'excavadoras';
const TRUCKS = 'camiones';

export const STEPS: Readonly<Record<TripStep, StepSpec>> = {
  crear: { from: [], to: 'creado', event: 'ViajeCreado', groups: [EXCAVATORS], stamps: 'HoraInicio' },
  actualizar: { from: ['creado', 'carga_finalizada', 'en_descarga'], to: null, event: 'ViajeActualizado', groups: [EXCAVATORS], stamps: null },
  'finalizar-carga': { from: ['creado'], to: 'carga_finalizada', event: 'CargaFinalizada', groups: [EXCAVATORS, TRUCKS], stamps: 'HoraFinCarga' },
  'en-descarga': { from: ['carga_finalizada'], to: 'en_descarga', event: 'ViajeEnDescarga', groups: [EXCAVATORS], stamps: 'HoraDescarga' },
  finalizar: { from: ['carga_finalizada', 'en_descarga'], to: 'finalizado', event: 'ViajeFinalizado', groups: [EXCAVATORS], stamps: 'HoraFin' },
  cancelar: { from: ['creado', 'carga_finalizada', 'en_descarga'], to: 'cancelado', event: 'ViajeCancelado', groups: [EXCAVATORS, TRUCKS], stamps: null },
};

type FieldKind = 'int' | 'text' | 'coord' | 'time';

/** The trip's fields: the reference's names (trip_data), and the snake_case names its backend's model takes. */
const FIELDS: readonly (readonly [pascal: string, snake: string, kind: FieldKind])[] = [
  ['IdJornada', 'id_jornada', 'int'],
  ['Usuario', 'usuario', 'text'],
  ['Equipo', 'equipo', 'text'],
  ['Patente', 'patente', 'text'],
  ['IdProducto', 'id_producto', 'int'],
  ['DescripcionProducto', 'descripcion_producto', 'text'],
  ['Conductor', 'conductor', 'text'],
  ['HoraInicio', 'hora_inicio', 'time'],
  ['HoraCarga', 'hora_carga', 'time'],
  ['LatitudCarga', 'latitud_carga', 'coord'],
  ['LongitudCarga', 'longitud_carga', 'coord'],
  ['HoraFinCarga', 'hora_fin_carga', 'time'],
  ['HoraDescarga', 'hora_descarga', 'time'],
  ['HoraFin', 'hora_fin', 'time'],
  ['Motivo', 'motivo', 'text'],
];

/** The fields of trip_data in ViajeCreado, in the reference's order. */
const TRIP_DATA = [
  'IdJornada',
  'Usuario',
  'Equipo',
  'Patente',
  'IdProducto',
  'DescripcionProducto',
  'Conductor',
  'HoraInicio',
  'HoraCarga',
  'LatitudCarga',
  'LongitudCarga',
];

export type TripFields = Record<string, string | number | null>;

export interface Trip {
  readonly id: number;
  readonly state: TripState;
  readonly fields: TripFields;
  readonly createdAt: string;
  readonly updatedAt: string;
}

function invalid(why: string): never {
  throw new GatewayError('GW_ERR_BODY_INVALID', why);
}

function fieldValue(name: string, kind: FieldKind, value: unknown): string | number | null {
  if (value === null) return null;
  switch (kind) {
    case 'int':
      if (!Number.isSafeInteger(value)) invalid(`"${name}" must be a whole number`);
      return value as number;
    case 'coord':
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      if (typeof value !== 'string' || !/^-?\d{1,3}(\.\d{1,12})?$/.test(value)) invalid(`"${name}" must be a coordinate such as "-23.456"`);
      return value;
    case 'time':
      if (typeof value !== 'string' || value.length > 40 || Number.isNaN(Date.parse(value))) invalid(`"${name}" must be an ISO 8601 time`);
      return value;
    case 'text':
      if (typeof value !== 'string' || value.length > 10_000_000) invalid(`"${name}" must be a string`);
      return value;
  }
}

/** The id a step names: `id_movimiento` or `IdMovimiento`. */
export function tripIdOf(body: Record<string, unknown>): number {
  const id = body.id_movimiento ?? body.IdMovimiento;
  if (!Number.isSafeInteger(id) || (id as number) < 1) invalid('"id_movimiento" (or "IdMovimiento") must be the trip\'s id, a positive whole number');
  return id as number;
}

/** The trip fields a request body carries (either spelling), validated; unknown fields are refused. */
export function tripFieldsOf(body: unknown, step: TripStep): TripFields {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) invalid('The body must be a JSON object');
  const fields: TripFields = {};
  const known = new Set(['id_movimiento', 'IdMovimiento']);
  for (const [pascal, snake, kind] of FIELDS) {
    known.add(pascal).add(snake);
    const value = (body as Record<string, unknown>)[snake] ?? (body as Record<string, unknown>)[pascal];
    if (value !== undefined) fields[pascal] = fieldValue(snake, kind, value);
  }
  const unknown = Object.keys(body).find((k) => !known.has(k));
  if (unknown !== undefined) invalid(`Unknown field "${unknown.slice(0, 64)}"`);
  if (step === 'crear') {
    for (const required of ['Equipo', 'Patente']) {
      if (typeof fields[required] !== 'string' || fields[required] === '') invalid(`"${required === 'Equipo' ? 'equipo' : 'patente'}" is required`);
    }
  }
  if (step !== 'crear' && step !== 'actualizar' && Object.keys(fields).some((k) => k !== STEPS[step].stamps && k !== 'Motivo')) {
    invalid(`${step} takes only id_movimiento${STEPS[step].stamps ? ` and ${STEPS[step].stamps}` : ''}${step === 'cancelar' ? ' and motivo' : ''}`);
  }
  return fields;
}

/** Throws GW_ERR_TRIP_TRANSITION when `step` may not start from the trip's state. */
export function checkTransition(trip: Trip, step: TripStep): void {
  const spec = STEPS[step];
  if (!spec.from.includes(trip.state)) {
    throw new GatewayError('GW_ERR_TRIP_TRANSITION', `Trip ${trip.id} is ${trip.state}: ${step} is allowed only from ${spec.from.join(', ')}`);
  }
}

/** The reference's payload of a step's event (the `data` of the message frame). */
export function eventPayload(step: TripStep, trip: Trip, changed: TripFields, timestamp: string): Record<string, unknown> {
  const f = trip.fields;
  const head = { data: STEPS[step].event };
  const tail = { equipo: f.Equipo, timestamp };
  switch (step) {
    case 'crear':
      return { ...head, trip_data: { IdMovimiento: trip.id, ...Object.fromEntries(TRIP_DATA.map((k) => [k, f[k] ?? null])) }, ...tail };
    case 'actualizar':
      return { ...head, IdMovimiento: trip.id, ...changed, Patente: f.Patente, ...tail };
    case 'finalizar-carga':
      return { ...head, IdMovimiento: trip.id, Patente: f.Patente, HoraFinCarga: f.HoraFinCarga, ...tail };
    case 'en-descarga':
      return { ...head, IdMovimiento: trip.id, Patente: f.Patente, HoraDescarga: f.HoraDescarga, ...tail };
    case 'finalizar':
      return { ...head, IdMovimiento: trip.id, Patente: f.Patente, ...tail };
    case 'cancelar':
      return { ...head, IdMovimiento: trip.id, Patente: f.Patente, ...(f.Motivo ? { Motivo: f.Motivo } : {}), ...tail };
  }
}

/** A trip as the REST API shows it. */
export function tripJson(trip: Trip): Record<string, unknown> {
  return { IdMovimiento: trip.id, estado: trip.state, ...trip.fields, created_at: trip.createdAt, updated_at: trip.updatedAt };
}
