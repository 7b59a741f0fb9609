/**
 * Piscina task: one store operation on a pool thread. Each thread opens its own SQLite connection
 * once; the write, its outbox row and the serialised reply all happen here, off the edges.
 */
import { openDatabase } from '../store/database.js';
import { DeadLetters } from '../features/channels/store/dead-letters.js';
import { EntityStore } from '../features/channels/store/entity-store.js';
import { parseEquipment, TripStore } from '../features/trips/store/trip-store.js';
import { PositionStore } from '../features/telemetry/store/position-store.js';
import { GatewayError } from '../errors/gateway-error.js';
import { isTripTask, type StoreReply, type StoreTask, type StoreWorkerData, type TripTask } from './store-protocol.js';
import { poolData } from './pool-data.js';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const { dataDir, collections, maxJsonDepth, testHooks } = poolData<StoreWorkerData>();
const brokenMark = join(dataDir, 'test-hook-store-pool-broken');
if (testHooks.includes('fail-pool-start')) throw new Error('test hook fail-pool-start: this store pool thread fails as it starts');
if (testHooks.includes('bus') && existsSync(brokenMark)) throw new Error('test hook crash-store-pool: this replacement store pool thread fails as it starts');
const db = openDatabase(dataDir);
const store = new EntityStore(db, maxJsonDepth);
const trips = new TripStore(db, maxJsonDepth);
const deadLetters = new DeadLetters(db);
const positions = new PositionStore(db);
const byPath = new Map(collections.map((c) => [c.path, c]));

const ok = (status: number, value: unknown, wroteEvent = false): StoreReply => ({ ok: true, status, body: JSON.stringify(value), wroteEvent });

/** Trips and equipment. */
function tripTask(task: TripTask): StoreReply {
  switch (task.op) {
    case 'trip-step': {
      const result = trips.step(task.step, task.body);
      return ok(200, result.body, result.wroteEvent);
    }
    case 'trip-get':
      return ok(200, trips.getTrip(task.id));
    case 'trip-list':
      return ok(200, trips.trips(task.skip, task.limit));
    case 'equipment-list':
      return ok(200, trips.equipment());
    case 'equipment-get':
      return ok(200, trips.equipment(task.code)[0]);
    case 'equipment-put':
      return ok(200, trips.saveEquipment([parseEquipment(task.body, task.code)])[0]);
    case 'equipment-delete':
      if (!trips.removeEquipment(task.code)) throw new GatewayError('GW_ERR_EQUIPMENT_UNKNOWN', `No equipment ${JSON.stringify(task.code.slice(0, 64))}`);
      return ok(200, { deleted: true, code: task.code });
    case 'equipment-check':
      return ok(200, trips.usable(task.code));
  }
}

/** Every refusal (a GatewayError, nothing written) is answered as such; anything else is the pool's 500. */
export default function run(task: StoreTask): StoreReply {
  try {
    return serve(task);
  } catch (err) {
    if (err instanceof GatewayError) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
}

const PONG: StoreReply = { ok: true, status: 200, body: '', wroteEvent: false };

function serve(task: StoreTask): StoreReply {
  if (task.op === 'ping') return PONG;
  if (task.op === 'test-crash') {
    if (!testHooks.includes('bus')) return { ok: false, code: 'GW_ERR_NOT_FOUND', message: 'No such store operation' };
    if (task.replacementsFail) writeFileSync(brokenMark, '');
    process.exit(1); // in a worker thread: ends this thread only, as a crash would
  }
  if (task.op === 'positions-put') {
    positions.putJson(task.json);
    return PONG;
  }
  if (isTripTask(task)) return tripTask(task);
  if (task.op === 'dead-letters') {
    const items = deadLetters.page(task.skip, task.limit).map((d) => ({
      id: d.id,
      channel: d.channel,
      reason: d.reason,
      bytes: d.bytes,
      created_at: new Date(d.created_at).toISOString(),
      dead_lettered_at: new Date(d.dead_at).toISOString(),
    }));
    return ok(200, { total: deadLetters.count(), skip: task.skip, limit: task.limit, dead_letters: items });
  }
  if (task.op === 'publish') {
    store.publish(task.channel, task.payload);
    return ok(202, { status: 'accepted', channel: task.channel }, true);
  }
  const c = byPath.get(task.collection);
  if (!c) return { ok: false, code: 'GW_ERR_NOT_FOUND', message: `No collection ${task.collection}` };
  const missing = (id: number): StoreReply => ({ ok: false, code: 'GW_ERR_ENTITY_NOT_FOUND', message: `${c.path} ${id} does not exist` });
  switch (task.op) {
    case 'list':
      return ok(200, store.list(c, task.skip, task.limit));
    case 'get': {
      const entity = store.get(c, task.id);
      return entity ? ok(200, entity) : missing(task.id);
    }
    case 'create':
      return ok(201, store.create(c, task.fields), true);
    case 'update': {
      const result = store.update(c, task.id, task.fields);
      if (!result) return missing(task.id);
      return ok(200, { ...result.entity, updated_fields: result.updatedFields }, result.updatedFields.length > 0);
    }
    case 'delete': {
      const entity = store.delete(c, task.id);
      return entity ? ok(200, { deleted: true, [c.idField]: task.id, entity }, true) : missing(task.id);
    }
  }
}
