/**
 * Entity channels end to end, one test per reference envelope: real REST calls, real SQLite, the
 * real bus (embedded aedes; Mosquitto in entity-nothing-lost.test.ts) and real WebSocket clients.
 */
import { describe, expect, it } from 'vitest';
import { connectBackend } from '../helpers/publisher.js';
import { startGateway } from '../helpers/gateway-process.js';
import { mintJwt } from '../helpers/tokens.js';
import { adminToken, channelEnv, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { connectStream } from '../helpers/stream-client.js';

describe('reference/003: sensors and readings over /api/v1/ws', () => {
  it('emits entity_event for create, update and delete, with offsets; an update that changes nothing emits nothing', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const token = await adminToken();
    const json = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const msgpack = await connectChannel(gw, '/api/v1/ws?channel=sensors', { protocol: 'msgpack' });
    const readings = await connectChannel(gw, '/api/v1/ws?channel=readings');
    expect(json.established).toMatchObject({ type: 'connection_established', channel: 'sensors', offset: 0 });
    const epoch = json.established.epoch as unknown as string;
    expect(epoch).toMatch(/^[0-9a-f]{12}$/);

    const created = await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 'temperatura', modelo: 'DHT22' }, token);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 1, tipo: 'temperatura', modelo: 'DHT22' });
    expect(Date.parse(created.body.created_at)).not.toBeNaN();

    const event = await json.next(isEvent);
    expect(event).toEqual({
      type: 'entity_event',
      entity_type: 'sensor',
      event_type: 'created',
      entity_id: 1,
      data: created.body,
      timestamp: expect.any(String),
      metadata: { action: 'create_sensor' },
      offset: 1,
      epoch,
    });
    expect(await msgpack.next(isEvent)).toEqual(event);
    expect(msgpack.protocol).toBe('msgpack');
    expect(Buffer.isBuffer(msgpack.raw.at(-1))).toBe(true);

    const updated = await rest(gw, 'PUT', '/api/v1/sensores/1', { modelo: 'DHT11', tipo: 'temperatura' }, token);
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ id: 1, modelo: 'DHT11', updated_fields: ['modelo'] });
    expect(await json.next(isEvent)).toMatchObject({
      event_type: 'updated',
      entity_id: 1,
      offset: 2,
      data: { modelo: 'DHT11', updated_fields: ['modelo'] },
      metadata: { action: 'update_sensor', fields_updated: ['modelo'] },
    });

    const unchanged = await rest(gw, 'PUT', '/api/v1/sensores/1', { modelo: 'DHT11' }, token);
    expect(unchanged.body.updated_fields).toEqual([]);
    const deleted = await rest(gw, 'DELETE', '/api/v1/sensores/1', undefined, token);
    expect(deleted.body).toMatchObject({ deleted: true, id: 1 });
    // The unchanged PUT emitted nothing: the next event is the delete, at the next offset.
    expect(await json.next(isEvent)).toMatchObject({ event_type: 'deleted', entity_id: 1, offset: 3, metadata: { action: 'delete_sensor' } });
    expect((await rest(gw, 'GET', '/api/v1/sensores/1', undefined, token)).status).toBe(404);

    const reading = await rest(gw, 'POST', '/api/v1/lecturas/', { sensor_id: 1, valor: 21.5, unidad: 'C' }, token);
    expect(reading.status).toBe(201);
    expect(await readings.next(isEvent)).toMatchObject({
      type: 'entity_event',
      entity_type: 'reading',
      event_type: 'created',
      entity_id: 1,
      offset: 1,
      data: { valor: 21.5 },
    });
    expect(json.count((f) => f.type === 'entity_event')).toBe(3); // readings never reach the sensors channel

    const list = await rest(gw, 'GET', '/api/v1/lecturas/?limit=10', undefined, token);
    expect(list.body).toEqual([reading.body]);

    // Every subscriber of (channel, envelope, encoding) got the same bytes.
    const second = await connectChannel(gw, '/api/v1/ws?channel=readings');
    await rest(gw, 'POST', '/api/v1/lecturas/', { sensor_id: 1, valor: 22 }, token);
    await readings.next(isEvent);
    await second.next(isEvent);
    expect(second.raw.at(-1)).toBe(readings.raw.at(-1));

    const stats = await rest(gw, 'GET', '/api/v1/ws/stats');
    expect(stats.body).toMatchObject({
      status: 'ok',
      total_connections: 4,
      epoch,
      channels: { sensors: { connections: 2, offset: 3, history: 3 }, readings: { offset: 2 } },
    });
    expect((await rest(gw, 'GET', '/api/v1/ws/stats/sensors')).body).toMatchObject({ channel: 'sensors', connections: 2, offset: 3, oldest_offset: 1 });
  });

  it('serves the unauthenticated test-sensors routes outside production only, and POST /api/v1/ws/test-event', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const client = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    expect((await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 'x' })).status).toBe(401);
    const created = await rest(gw, 'POST', '/api/v1/test-sensors/', { tipo: 'humedad' });
    expect(created.status).toBe(201);
    expect(await client.next(isEvent)).toMatchObject({ event_type: 'created', entity_id: 1, data: { tipo: 'humedad' } });

    const general = await connectChannel(gw, '/api/v1/ws'); // docs/compat/sensor-events.md: the channel defaults to general
    expect(general.established).toMatchObject({ channel: 'general' });
    expect((await rest(gw, 'POST', '/api/v1/ws/test-event', { message: 'hola' })).body).toMatchObject({ status: 'ok', channel: 'general' });
    expect(await general.next(isEvent)).toMatchObject({ type: 'entity_event', entity_type: 'test', event_type: 'test', data: { message: 'hola' } });

    const prod = await startGateway({ env: channelEnv({ ENVIRONMENT: 'production' }) });
    expect((await rest(prod, 'POST', '/api/v1/test-sensors/', { tipo: 'humedad' })).status).toBe(404);
    expect((await rest(prod, 'POST', '/api/v1/ws/test-event', {})).body.error.code).toBe('GW_ERR_FORBIDDEN_IN_PRODUCTION');
  });
});

describe('reference/004: /ws/{channel} realtime_update and notification', () => {
  it('delivers realtime_update from REST, the publish API and MQTT, and notifications to their user only', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const token = await adminToken();
    const pets = await connectChannel(gw, '/ws/pets');
    const reservations = await connectChannel(gw, '/ws/reservations', { protocol: 'msgpack' });
    const user123 = await connectChannel(gw, '/ws/users?user_id=123');
    const user999 = await connectChannel(gw, '/ws/users?user_id=999');

    const pet = await rest(gw, 'POST', '/api/v1/pets/', { name: 'Luna', species: 'Perro', breed: 'Golden Retriever', age: 3, user_id: 123 }, token);
    expect(pet.body).toMatchObject({ pet_id: 1, name: 'Luna' });
    expect(await pets.next(isEvent)).toEqual({
      type: 'realtime_update',
      entity_type: 'pets',
      action: 'created',
      data: pet.body,
      timestamp: expect.any(String),
      offset: 1,
      epoch: expect.any(String),
    });

    // A backend with its own database publishes over HTTP...
    const update = { type: 'realtime_update', entity_type: 'reservations', action: 'updated', data: { reservation_id: 1, user_id: 123, status: 'confirmed' } };
    const published = await rest(gw, 'POST', '/api/v1/channels/reservations/events', update, token);
    expect(published).toMatchObject({ status: 202, body: { status: 'accepted', channel: 'reservations' } });
    expect(await reservations.next(isEvent)).toMatchObject({ ...update, offset: 1 });

    // ...or over MQTT, on the channel's topic.
    const publisher = await connectBackend(gw.mqttUrl);
    await publisher.control('gateway/channels/reservations', JSON.stringify({ ...update, action: 'cancelled' }));
    expect(await reservations.next(isEvent)).toMatchObject({ action: 'cancelled', offset: 2 });

    const notification = { type: 'notification', notification_type: 'pet_created', user_id: '123', data: { pet_name: 'Luna', pet_id: 1 } };
    await rest(gw, 'POST', '/api/v1/channels/users/events', notification, token);
    await rest(gw, 'POST', '/api/v1/channels/users/events', { type: 'notification', notification_type: 'maintenance', data: { title: 'everyone' } }, token);
    expect(await user123.next(isEvent)).toMatchObject({ ...notification, offset: 1, timestamp: expect.any(String) });
    expect(await user123.next(isEvent)).toMatchObject({ notification_type: 'maintenance', offset: 2 });
    // User 999 sees the channel-wide notification first: the one for 123 never reached it.
    expect(await user999.next(isEvent)).toMatchObject({ notification_type: 'maintenance', offset: 2 });
  });
});

describe('reference/002: /ws/connect users get the channel events their roles allow', () => {
  it('sends task_event to a supervisor, not to a viewer, and a user notification to its user', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const supervisor = await connectStream(gw.ws, `?token=${await mintJwt('7', { roles: ['supervisor'] })}`, { path: '/ws/connect' });
    const viewer = await connectStream(gw.ws, `?token=${await mintJwt('8', { roles: ['viewer'] })}`, { path: '/ws/connect' });
    await supervisor.next((f) => f.type === 'connection_established');
    await viewer.next((f) => f.type === 'connection_established');
    const token = await adminToken();

    const task = await rest(gw, 'POST', '/api/v1/tareas/', { titulo: 'Patrulla norte', estado: 'pendiente' }, token);
    expect(await supervisor.next((f) => f.type === 'task_event')).toMatchObject({
      type: 'task_event',
      action: 'created',
      entity_id: 1,
      channel: 'tasks',
      data: task.body,
      offset: 1,
    });
    await rest(gw, 'PUT', '/api/v1/efectivos/1', { disponible: false }, token); // 404: none yet
    await rest(gw, 'POST', '/api/v1/efectivos/', { nombre: 'Ana', disponible: true }, token);
    expect(await supervisor.next((f) => f.type === 'efectivo_event')).toMatchObject({ action: 'created', data: { nombre: 'Ana' } });

    await rest(
      gw,
      'POST',
      '/api/v1/channels/users/events',
      { type: 'notification', notification_type: 'success', user_id: '8', data: { message: 'ok' } },
      token,
    );
    expect(await viewer.next((f) => f.type === 'notification')).toMatchObject({ notification_type: 'success', user_id: '8' });
    expect(viewer.count((f) => f.type === 'task_event' || f.type === 'efectivo_event')).toBe(0);
    expect(supervisor.count((f) => f.type === 'notification')).toBe(0);
  });
});

describe('channels with GATEWAY_AUTH_REQUIRED=channels', () => {
  it('refuses a missing token, refuses a channel the roles may not see, and takes the user from the token', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_AUTH_REQUIRED: 'rest,channels' }) });
    const anonymous = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    expect(anonymous.established).toMatchObject({ type: 'error', data: { code: 'GW_ERR_TOKEN_MISSING' } });
    expect((await anonymous.closed).code).toBe(1008);

    const viewerToken = await mintJwt('55', { roles: ['viewer'] });
    const forbidden = await connectChannel(gw, `/ws/pets?token=${viewerToken}`);
    expect(forbidden.established).toMatchObject({ type: 'error', data: { code: 'GW_ERR_FORBIDDEN' } });
    expect((await forbidden.closed).code).toBe(1008);
    const allowed = await connectChannel(gw, '/api/v1/ws?channel=sensors', { headers: { authorization: `Bearer ${viewerToken}` } });
    expect(allowed.established).toMatchObject({ type: 'connection_established', channel: 'sensors' });

    // user_id in the query is ignored when a token names the user.
    const admin = await adminToken();
    const mine = await connectChannel(gw, `/ws/users?token=${admin}&user_id=55`);
    await rest(gw, 'POST', '/api/v1/channels/users/events', { type: 'notification', notification_type: 'for-55', user_id: '55', data: {} }, admin);
    await rest(gw, 'POST', '/api/v1/channels/users/events', { type: 'notification', notification_type: 'for-admin', user_id: 'admin-1', data: {} }, admin);
    expect(await mine.next(isEvent)).toMatchObject({ notification_type: 'for-admin', offset: 2 });
  });
});

describe('several edge threads', () => {
  it('delivers every event to subscribers on both threads and recovers on either', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_THREADS: '2' }) });
    const token = await adminToken();
    // Enough connections that SO_REUSEPORT spreads them over both edge threads.
    const clients = await Promise.all(Array.from({ length: 8 }, () => connectChannel(gw, '/api/v1/ws?channel=sensors')));
    const epoch = (clients[0].established as any).epoch as string;
    for (let i = 1; i <= 10; i++) await rest(gw, 'POST', '/api/v1/sensores/', { tipo: `t${i}` }, token);
    for (const c of clients) {
      await c.next((f) => (f as any).offset === 10);
      expect(c.frames.filter(isEvent).map((f: any) => f.offset)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    }
    const back = await Promise.all(Array.from({ length: 8 }, () => connectChannel(gw, `/ws/sensors?since=4&epoch=${epoch}`)));
    for (const c of back) {
      expect(c.established).toMatchObject({ recovered: true, replayed: 6, epoch });
      await c.next((f) => (f as any).offset === 10);
    }
    const stats = await rest(gw, 'GET', '/api/v1/ws/stats');
    expect(stats.body.total_connections).toBe(16);
    // Per-channel counts are the answering thread's: fewer than 16 means the other thread has some.
    expect(stats.body.channels.sensors.connections).toBeLessThan(16);
  });
});
