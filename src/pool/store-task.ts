/**
 * Piscina task: one store operation on a pool thread. Each thread opens its own store (src/store/
 * store.ts: SQLite, one connection per thread, or PostgreSQL, a pg.Pool of the thread's share of
 * GATEWAY_DATABASE_POOL_SIZE) once; the write, its outbox row and the serialised reply all happen
 * here, off the edges. The task is async and awaits the store. On SQLite a thread runs one task at
 * a time; on PostgreSQL as many as it has connections (store-service.ts), so a task never waits
 * for a connection but when the pool is broken or the availability probe holds one.
 *
 * A refusal, an unreachable database (GW_ERR_STORE_UNAVAILABLE) and a connection wait that timed
 * out (GW_ERR_OVERLOADED) are replies, never thrown: the main thread counts them and marks the
 * store unavailable (store-service.ts).
 */
import { createLogger } from '../log/logger.js';
import { openStore } from '../store/open-store.js';
import { parseEquipment, usableEquipment } from '../features/trips/store/trip-store.js';
import { GatewayError } from '../errors/gateway-error.js';
import { isTripTask, type StoreReply, type StoreTask, type StoreWorkerData, type TripTask } from './store-protocol.js';
import { poolData } from './pool-data.js';
import type { OutboxEvent } from '../store/store.js';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const { dataDir, database, logLevel, collections, maxJsonDepth, testHooks } = poolData<StoreWorkerData>();
const brokenMark = join(dataDir, 'test-hook-store-pool-broken');
if (testHooks.includes('fail-pool-start')) throw new Error('test hook fail-pool-start: this store pool thread fails as it starts');
if (testHooks.includes('bus') && existsSync(brokenMark)) throw new Error('test hook crash-store-pool: this replacement store pool thread fails as it starts');
const store = openStore({ dataDir, maxJsonDepth, database }, createLogger(logLevel, 'store-pool').child({ component: 'store' }));
const byPath = new Map(collections.map((c) => [c.path, c]));

const ok = (status: number, value: unknown, wroteEvent = false): StoreReply => ({ ok: true, status, body: JSON.stringify(value), wroteEvent });

/** A write's reply; with the row it logged when the driver gave it (ingest's local fast path). */
const wrote = (status: number, value: unknown, event: OutboxEvent | null): StoreReply =>
  event?.logged === undefined ? ok(status, value, event !== null) : { ok: true, status, body: JSON.stringify(value), wroteEvent: true, events: [event.logged] };

/** Trips and equipment. */
async function tripTask(task: TripTask): Promise<StoreReply> {
  switch (task.op) {
    case 'trip-step': {
      const result = await store.trips.step(task.step, task.body);
      return wrote(200, result.body, result.event);
    }
    case 'trip-get': {
      const trip = await store.trips.get(task.id);
      if (trip === null) throw new GatewayError('GW_ERR_TRIP_NOT_FOUND', `No trip ${task.id}`);
      return ok(200, trip);
    }
    case 'trip-list':
      return ok(200, await store.trips.list(task.skip, task.limit));
    case 'equipment-list':
      return ok(200, await store.equipment.list());
    case 'equipment-get': {
      const e = await store.equipment.get(task.code);
      if (e === null) throw new GatewayError('GW_ERR_EQUIPMENT_UNKNOWN', `No equipment ${JSON.stringify(task.code.slice(0, 64))}`);
      return ok(200, e);
    }
    case 'equipment-put':
      return ok(200, (await store.equipment.save([parseEquipment(task.body, task.code)]))[0]);
    case 'equipment-delete':
      if (!(await store.equipment.remove(task.code)))
        throw new GatewayError('GW_ERR_EQUIPMENT_UNKNOWN', `No equipment ${JSON.stringify(task.code.slice(0, 64))}`);
      return ok(200, { deleted: true, code: task.code });
    case 'equipment-check':
      return ok(200, usableEquipment(task.code, await store.equipment.get(task.code)));
  }
}

/** Every refusal (a GatewayError, nothing written) is answered as such; anything else is the pool's 500. */
export default async function run(task: StoreTask): Promise<StoreReply> {
  try {
    return await serve(task);
  } catch (err) {
    if (err instanceof GatewayError) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
}

const PONG: StoreReply = { ok: true, status: 200, body: '', wroteEvent: false };

async function serve(task: StoreTask): Promise<StoreReply> {
  // The watchdog's probe answers without the store (docs/design/cluster-store.md §5.3).
  if (task.op === 'ping') return PONG;
  if (task.op === 'store-ping') {
    await store.ping();
    return PONG;
  }
  if (task.op === 'test-crash') {
    if (!testHooks.includes('bus')) return { ok: false, code: 'GW_ERR_NOT_FOUND', message: 'No such store operation' };
    if (task.replacementsFail) writeFileSync(brokenMark, '');
    process.exit(1); // in a worker thread: ends this thread only, as a crash would
  }
  if (task.op === 'revocation-put') {
    await store.revocations.revoke(task.jti, task.expiresAt);
    return PONG;
  }
  if (task.op === 'azure-user-group-add') {
    await store.azureUserGroups.add(task.hub, task.userId, task.group, { perUser: task.perUser, max: task.max });
    return PONG;
  }
  if (task.op === 'azure-user-group-remove') {
    await store.azureUserGroups.remove(task.hub, task.userId, task.group);
    return PONG;
  }
  if (task.op === 'azure-user-group-remove-user') {
    await store.azureUserGroups.removeUser(task.hub, task.userId);
    return PONG;
  }
  if (task.op === 'cluster-nodes') {
    const nodes = await store.nodes.live(task.ttlMs);
    const uniqueUsers = task.uniqueUsers === undefined ? null : await store.nodes.uniqueUsers(task.ttlMs, task.uniqueUsers);
    return ok(200, { nodes, unique_users: uniqueUsers });
  }
  if (task.op === 'positions-put') {
    await store.positions.putJson(task.json);
    return PONG;
  }
  if (isTripTask(task)) return tripTask(task);
  if (task.op === 'dead-letters') {
    const page = await store.deadLetters.page(task.skip, task.limit);
    const total = await store.deadLetters.count();
    const items = page.map((d) => ({
      id: d.id,
      channel: d.channel,
      reason: d.reason,
      bytes: d.bytes,
      created_at: new Date(d.created_at).toISOString(),
      dead_lettered_at: new Date(d.dead_at).toISOString(),
    }));
    return ok(200, { total, skip: task.skip, limit: task.limit, dead_letters: items });
  }
  if (task.op === 'publish') {
    return wrote(202, { status: 'accepted', channel: task.channel }, await store.outbox.publish(task.channel, task.payload));
  }
  const c = byPath.get(task.collection);
  if (!c) return { ok: false, code: 'GW_ERR_NOT_FOUND', message: `No collection ${task.collection}` };
  const missing = (id: number): StoreReply => ({ ok: false, code: 'GW_ERR_ENTITY_NOT_FOUND', message: `${c.path} ${id} does not exist` });
  switch (task.op) {
    case 'list':
      return ok(200, await store.entities.list(c, task.skip, task.limit));
    case 'get': {
      const entity = await store.entities.get(c, task.id);
      return entity ? ok(200, entity) : missing(task.id);
    }
    case 'create': {
      const created = await store.entities.create(c, task.fields);
      return wrote(201, created.entity, created.event);
    }
    case 'update': {
      const result = await store.entities.update(c, task.id, task.fields);
      if (!result) return missing(task.id);
      return wrote(200, { ...result.entity, updated_fields: result.updatedFields }, result.event);
    }
    case 'delete': {
      const result = await store.entities.delete(c, task.id);
      return result ? wrote(200, { deleted: true, [c.idField]: task.id, entity: result.entity }, result.event) : missing(task.id);
    }
  }
}
