/**
 * The entity collections and event channels, as configuration (GATEWAY_CHANNELS): every reference
 * system is the same code with other names. A collection is served over REST at
 * `/api/v1/<path>/` and its writes become events on its channel; a channel is what WebSocket
 * clients subscribe to, with its own history bounds.
 *
 * The built-in default serves all three references:
 *   docs/compat/sensor-events.md  sensores → sensors, lecturas → readings (+ test-sensors), channel general
 *   docs/compat/pet-care.md  pets, reservations, payments, invoices, medical_history, services, employees,
 *                  activity_logs, and users for per-user notifications
 *   docs/compat/user-hub.md  tareas → tasks (task_event), efectivos → efectivos (efectivo_event)
 */
type FieldType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array';

export interface FieldSpec {
  readonly type: FieldType;
  readonly required?: boolean;
  readonly maxLength?: number;
  readonly min?: number;
  readonly max?: number;
  readonly enum?: readonly string[];
}

export interface CollectionSpec {
  /** URL segment: `/api/v1/<path>/`. */
  readonly path: string;
  /** Channel its events go to. */
  readonly channel: string;
  /** `entity_type` of its events (docs/compat/sensor-events.md uses the singular, docs/compat/pet-care.md the channel name). */
  readonly entityType: string;
  /** Name of the id in the entity's JSON (`id`; docs/compat/pet-care.md's payloads say `pet_id`). */
  readonly idField: string;
  /** The fields a body may carry; null: any fields (a free-form object). */
  readonly fields: Readonly<Record<string, FieldSpec>> | null;
  /** Unauthenticated twin served outside production (docs/compat/sensor-events.md's `test-sensors`). */
  readonly testPath: string | null;
}

export interface ChannelSpec {
  readonly name: string;
  readonly historySize: number;
  readonly historyTtlS: number;
  /**
   * Its events also go to this Azure Web PubSub hub, to the groups each event's `metadata.groups`
   * names (the trips channel: docs/compat/trips.md). null: channel subscribers only.
   */
  readonly azureHub: string | null;
}

/** The channel of trip events (docs/compat/trips.md); always present, bound to GATEWAY_TRIPS_HUB. */
export const TRIPS_CHANNEL = 'viajes';

export interface ChannelsConfig {
  readonly collections: readonly CollectionSpec[];
  readonly channels: readonly ChannelSpec[];
}

const NAME = /^[a-z][a-z0-9_-]{0,63}$/;
const FIELD_TYPES: readonly FieldType[] = ['string', 'integer', 'number', 'boolean', 'object', 'array'];

const str = (maxLength: number, required = false): FieldSpec => ({ type: 'string', maxLength, required });
const int = (required = false, min = 0): FieldSpec => ({ type: 'integer', required, min });
const num = (required = false): FieldSpec => ({ type: 'number', required });

/** The default as JSON-shaped data (the same shape GATEWAY_CHANNELS takes). */
export const DEFAULT_CHANNELS = {
  collections: [
    {
      path: 'sensores',
      channel: 'sensors',
      entity_type: 'sensor',
      test_path: 'test-sensors',
      fields: { tipo: str(100, true), modelo: str(100), ubicacion: str(200), descripcion: str(1000), activo: { type: 'boolean' } },
    },
    {
      path: 'lecturas',
      channel: 'readings',
      entity_type: 'reading',
      fields: { sensor_id: int(true, 1), valor: num(true), unidad: str(20), medido_en: str(40) },
    },
    {
      path: 'pets',
      channel: 'pets',
      entity_type: 'pets',
      id_field: 'pet_id',
      fields: { name: str(100, true), species: str(50), breed: str(100), age: int(), user_id: int() },
    },
    {
      path: 'reservations',
      channel: 'reservations',
      entity_type: 'reservations',
      id_field: 'reservation_id',
      fields: {
        user_id: int(true),
        service_id: int(),
        pet_id: int(),
        checkin_date: str(40),
        checkout_date: str(40),
        status: { type: 'string', enum: ['pending', 'confirmed', 'cancelled', 'completed'] },
      },
    },
    ...['payments', 'invoices', 'medical_history', 'services', 'employees', 'activity_logs'].map((name) => ({
      path: name,
      channel: name,
      entity_type: name,
      id_field: `${name.replace(/s$/, '').replace(/_history$/, '_record')}_id`,
      fields: null,
    })),
    {
      path: 'tareas',
      channel: 'tasks',
      entity_type: 'task',
      fields: {
        titulo: str(200, true),
        descripcion: str(2000),
        estado: { type: 'string', enum: ['pendiente', 'en_progreso', 'completada', 'cancelada'] },
        asignado_a: int(),
        prioridad: int(),
      },
    },
    { path: 'efectivos', channel: 'efectivos', entity_type: 'efectivo', fields: { nombre: str(200, true), disponible: { type: 'boolean' }, rol: str(50) } },
  ],
  channels: { general: {}, users: {} },
};

function fail(why: string): never {
  throw new Error(why);
}

function parseField(where: string, value: unknown): FieldSpec {
  if (value === null || typeof value !== 'object') fail(`${where} must be an object such as {"type":"string"}`);
  const f = value as Record<string, unknown>;
  if (!FIELD_TYPES.includes(f.type as FieldType)) fail(`${where}.type must be one of ${FIELD_TYPES.join(', ')}`);
  for (const key of ['maxLength', 'min', 'max'] as const) {
    if (f[key] !== undefined && typeof f[key] !== 'number') fail(`${where}.${key} must be a number`);
  }
  if (f.enum !== undefined && (!Array.isArray(f.enum) || f.enum.some((v) => typeof v !== 'string'))) fail(`${where}.enum must be a list of strings`);
  return {
    type: f.type as FieldType,
    required: f.required === true,
    maxLength: f.maxLength as number | undefined,
    min: f.min as number | undefined,
    max: f.max as number | undefined,
    enum: f.enum as string[] | undefined,
  };
}

/**
 * Validates the configuration (JSON-shaped) and fills in defaults. Errors say what is wrong and
 * where, for the config loader to prefix with the variable's name.
 */
export function parseChannelsConfig(value: unknown, defaults: { historySize: number; historyTtlS: number }, tripsHub: string): ChannelsConfig {
  if (value === null || typeof value !== 'object' || !Array.isArray((value as { collections?: unknown }).collections)) {
    fail('must be an object with a "collections" list (and optionally a "channels" object)');
  }
  const raw = value as { collections: unknown[]; channels?: unknown };
  const paths = new Set<string>();
  const collections = raw.collections.map((item, i): CollectionSpec => {
    const where = `collections[${i}]`;
    if (item === null || typeof item !== 'object') fail(`${where} must be an object`);
    const c = item as Record<string, unknown>;
    for (const key of ['path', 'channel'] as const) {
      if (typeof c[key] !== 'string' || !NAME.test(c[key] as string)) fail(`${where}.${key} must be a lowercase name (a-z, 0-9, _ and -, at most 64)`);
    }
    const path = c.path as string;
    const testPath = c.test_path === undefined ? null : c.test_path;
    if (testPath !== null && (typeof testPath !== 'string' || !NAME.test(testPath))) fail(`${where}.test_path must be a lowercase name`);
    for (const p of [path, testPath]) {
      if (p === null) continue;
      if (paths.has(p)) fail(`${where}: the path "${p}" is used twice`);
      if (['stream', 'public', 'ws', 'channels'].includes(p)) fail(`${where}: the path "${p}" is reserved`);
      paths.add(p);
    }
    let fields: Record<string, FieldSpec> | null = null;
    if (c.fields !== null && c.fields !== undefined) {
      if (typeof c.fields !== 'object' || Array.isArray(c.fields)) fail(`${where}.fields must be an object of field specs, or null for free-form`);
      fields = Object.fromEntries(
        Object.entries(c.fields as Record<string, unknown>).map(([name, spec]) => [name, parseField(`${where}.fields.${name}`, spec)]),
      );
    }
    const idField = c.id_field ?? 'id';
    if (typeof idField !== 'string' || idField === '') fail(`${where}.id_field must be a name`);
    if (fields && idField in fields) fail(`${where}.fields must not include the id field "${idField}"`);
    const entityType = c.entity_type ?? c.channel;
    if (typeof entityType !== 'string' || entityType === '') fail(`${where}.entity_type must be a name`);
    return { path, channel: c.channel as string, entityType, idField, fields, testPath: testPath as string | null };
  });

  const overrides = (raw.channels ?? {}) as Record<string, unknown>;
  if (typeof overrides !== 'object' || Array.isArray(overrides))
    fail('"channels" must be an object of channel name → {history_size, history_ttl_s, azure_hub}');
  const names = new Set([...collections.map((c) => c.channel), ...Object.keys(overrides), TRIPS_CHANNEL]);
  const channels = [...names].map((name): ChannelSpec => {
    if (!NAME.test(name)) fail(`channel "${name}" must be a lowercase name (a-z, 0-9, _ and -, at most 64)`);
    const o = (overrides[name] ?? {}) as Record<string, unknown>;
    const size = o.history_size ?? defaults.historySize;
    const ttl = o.history_ttl_s ?? defaults.historyTtlS;
    if (!Number.isInteger(size) || (size as number) < 0 || (size as number) > 1_000_000)
      fail(`channels.${name}.history_size must be a whole number 0..1000000`);
    if (!Number.isInteger(ttl) || (ttl as number) < 1) fail(`channels.${name}.history_ttl_s must be a whole number of seconds, at least 1`);
    const hub = o.azure_hub ?? (name === TRIPS_CHANNEL ? tripsHub : null);
    if (hub !== null && typeof hub !== 'string') fail(`channels.${name}.azure_hub must be a hub name`);
    return { name, historySize: size as number, historyTtlS: ttl as number, azureHub: hub as string | null };
  });
  return { collections, channels };
}
