/**
 * Bad input to the entity channels: each kind gets a clear error (status or close code and a
 * GW_ERR_* naming what is wrong), is counted, writes nothing, and the gateway keeps serving.
 */
import { describe, expect, it } from 'vitest';
import { connectBackend } from '../helpers/publisher.js';
import { eventually, startGateway } from '../helpers/gateway-process.js';
import { mintJwt } from '../helpers/tokens.js';
import { adminToken, channelEnv, connectChannel, isEvent, rest } from '../helpers/channels.js';

describe('REST bad input', () => {
  it('refuses unknown collections, invalid ids, invalid and oversized bodies, invalid JSON and missing grants, writing nothing', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_MAX_BODY_BYTES: '1024' }) });
    const token = await adminToken();
    const watcher = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const error = async (method: string, path: string, body: unknown, expected: number, code: string, message?: RegExp, auth = token) => {
      const reply = await rest(gw, method, path, body, auth);
      expect(reply.status, `${method} ${path}`).toBe(expected);
      expect(reply.body.error.code, `${method} ${path}`).toBe(code);
      if (message) expect(reply.body.error.message).toMatch(message);
    };

    await error('GET', '/api/v1/unknown-things/', undefined, 404, 'GW_ERR_NOT_FOUND');
    await error('POST', '/api/v1/unknown-things/', { a: 1 }, 404, 'GW_ERR_NOT_FOUND');
    for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999']) {
      await error('GET', `/api/v1/sensores/${id}`, undefined, 400, 'GW_ERR_ID_INVALID');
      await error('PUT', `/api/v1/sensores/${id}`, { modelo: 'x' }, 400, 'GW_ERR_ID_INVALID');
      await error('DELETE', `/api/v1/sensores/${id}`, undefined, 400, 'GW_ERR_ID_INVALID');
    }
    await error('GET', '/api/v1/sensores/42', undefined, 404, 'GW_ERR_ENTITY_NOT_FOUND');
    await error('PUT', '/api/v1/sensores/42', { modelo: 'x' }, 404, 'GW_ERR_ENTITY_NOT_FOUND');
    await error('DELETE', '/api/v1/sensores/42', undefined, 404, 'GW_ERR_ENTITY_NOT_FOUND');
    await error('POST', '/api/v1/sensores/', { modelo: 'DHT22' }, 400, 'GW_ERR_BODY_INVALID', /"tipo" is required/);
    await error('POST', '/api/v1/sensores/', { tipo: 5 }, 400, 'GW_ERR_BODY_INVALID', /"tipo" must be a string/);
    await error('POST', '/api/v1/sensores/', { tipo: 'x', color: 'red' }, 400, 'GW_ERR_BODY_INVALID', /Unknown field "color"/);
    await error('POST', '/api/v1/sensores/', { tipo: 'x', id: 7 }, 400, 'GW_ERR_BODY_INVALID', /"id" is set by the gateway/);
    await error('POST', '/api/v1/sensores/', { tipo: 'x', activo: 'yes' }, 400, 'GW_ERR_BODY_INVALID', /"activo" must be true or false/);
    await error('POST', '/api/v1/sensores/', [{ tipo: 'x' }], 400, 'GW_ERR_BODY_INVALID', /JSON object/);
    await error('POST', '/api/v1/lecturas/', { sensor_id: 0, valor: 1 }, 400, 'GW_ERR_BODY_INVALID', /"sensor_id" must be at least 1/);
    await error('POST', '/api/v1/lecturas/', { sensor_id: 1.5, valor: 1 }, 400, 'GW_ERR_BODY_INVALID', /"sensor_id" must be a whole number/);
    await error('POST', '/api/v1/sensores/', '{"tipo": "x"', 400, 'GW_ERR_BODY_INVALID', /not valid JSON/);
    await error('POST', '/api/v1/sensores/', { tipo: 'x'.repeat(2000) }, 413, 'GW_ERR_BODY_TOO_LARGE');
    await error('GET', '/api/v1/sensores/?limit=5000', undefined, 400, 'GW_ERR_QUERY_INVALID', /limit/);
    await error('POST', '/api/v1/sensores/', { tipo: 'x' }, 401, 'GW_ERR_TOKEN_MISSING', undefined, '');
    await error('POST', '/api/v1/sensores/', { tipo: 'x' }, 401, 'GW_ERR_TOKEN_INVALID', undefined, 'not-a-jwt');
    const viewer = await mintJwt('v', { roles: ['viewer'] });
    expect((await rest(gw, 'GET', '/api/v1/sensores/', undefined, viewer)).status).toBe(200); // may read...
    await error('POST', '/api/v1/sensores/', { tipo: 'x' }, 403, 'GW_ERR_FORBIDDEN', /write to channel sensors/, viewer); // ...not write
    await error('GET', '/api/v1/pets/', undefined, 403, 'GW_ERR_FORBIDDEN', /read channel pets/, viewer);

    // The publish API validates the event against the reference envelopes.
    await error('POST', '/api/v1/channels/nope/events', { type: 'notification', notification_type: 'x' }, 404, 'GW_ERR_CHANNEL_UNKNOWN');
    await error('POST', '/api/v1/channels/users/events', { type: 'shout' }, 400, 'GW_ERR_EVENT_INVALID', /"type" must be/);
    await error(
      'POST',
      '/api/v1/channels/users/events',
      { type: 'realtime_update', entity_type: 'pets', action: 'created', data: 5 },
      400,
      'GW_ERR_EVENT_INVALID',
      /"data"/,
    );
    await error('POST', '/api/v1/channels/users/events', { type: 'notification' }, 400, 'GW_ERR_EVENT_INVALID', /notification_type/);

    // Nothing was written and nothing was emitted: the first good write is entity 1 at offset 1.
    expect((await rest(gw, 'GET', '/api/v1/sensores/', undefined, token)).body).toEqual([]);
    await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 'ok' }, token);
    expect(await watcher.next(isEvent)).toMatchObject({ entity_id: 1, offset: 1 });
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(Number(/gateway_rest_errors_total (\d+)/.exec(metrics)![1])).toBe(37);
    expect(Number(/gateway_http_not_found_total (\d+)/.exec(metrics)![1])).toBe(2); // the unknown collection
  });
});

describe('channel socket bad input', () => {
  it('closes unknown channels and bad or future `since` with 4500, and answers stale or foreign epochs with recovered:false', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const token = await adminToken();
    const unknown = await connectChannel(gw, '/api/v1/ws?channel=nope');
    expect(unknown.established).toMatchObject({ type: 'error', data: { code: 'GW_ERR_CHANNEL_UNKNOWN' } });
    expect((unknown.established as any).data.message).toMatch(/channels: sensors, readings/);
    expect((await unknown.closed).code).toBe(4500);
    expect((await connectChannel(gw, '/ws/nope')).established).toMatchObject({ data: { code: 'GW_ERR_CHANNEL_UNKNOWN' } });

    const live = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const epoch = (live.established as any).epoch as string;
    for (const query of ['since=abc&epoch=' + epoch, 'since=1', 'since=-1&epoch=' + epoch, `since=1&epoch=${'x'.repeat(100)}`, 'epoch=' + epoch]) {
      const bad = await connectChannel(gw, `/api/v1/ws?channel=sensors&${query}`);
      expect(bad.established, query).toMatchObject({ type: 'error', data: { code: 'GW_ERR_SINCE_INVALID' } });
      expect((await bad.closed).code).toBe(4500);
    }
    await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 'x' }, token);
    await live.next(isEvent);
    const future = await connectChannel(gw, `/api/v1/ws?channel=sensors&since=5&epoch=${epoch}`);
    expect(future.established).toMatchObject({ type: 'error', data: { code: 'GW_ERR_SINCE_INVALID' } });
    expect((future.established as any).data.message).toMatch(/ahead of channel sensors's last offset 1/);
    expect((await future.closed).code).toBe(4500);
    // A stale epoch (from an earlier database) is not an error: the client is told to resync.
    const stale = await connectChannel(gw, '/api/v1/ws?channel=sensors&since=5&epoch=0123456789ab');
    expect(stale.established).toMatchObject({ type: 'connection_established', recovered: false, reason: 'epoch_changed', offset: 1, epoch });

    // The bystander kept its connection through all of it.
    await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 'y' }, token);
    expect(await live.next(isEvent)).toMatchObject({ offset: 2 });
  });

  it('answers bad frames with an error frame, keeps the connection, and closes with 4501 only after many', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_MAX_BAD_FRAMES: '6' }) });
    const client = await connectChannel(gw, '/ws/pets', { protocol: 'msgpack' });
    const errors = () => client.count((f) => f.type === 'error');
    for (const frame of ['not json', '[1,2]', '{"no":"type"}', '{"type":"shout"}', '{"type":"refresh_token"}']) {
      client.send(frame);
      await client.next((f) => f.type === 'error');
    }
    expect(client.frames.filter((f) => f.type === 'error').map((f: any) => f.data.code)).toEqual([
      'GW_ERR_FRAME_INVALID',
      'GW_ERR_FRAME_INVALID',
      'GW_ERR_FRAME_INVALID',
      'GW_ERR_UNKNOWN_ACTION',
      'GW_ERR_FRAME_INVALID',
    ]);
    client.ws.send(Buffer.from([0xc1, 0xff, 0x00])); // msgpack garbage
    await eventually(async () => errors() >= 6, 5000, 'the sixth error frame');
    client.send({ type: 'ping' });
    await client.next((f) => f.type === 'pong');
    client.send('{"type":"shout"}');
    expect((await client.closed).code).toBe(4501);

    const big = await connectChannel(gw, '/ws/pets');
    big.send({ type: 'ping', pad: 'x'.repeat(5000) });
    expect((await big.closed).code).toBe(1009);
  });

  it('counts and drops malformed events on the MQTT channel topics, and keeps delivering good ones', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const client = await connectChannel(gw, '/ws/reservations');
    const publisher = await connectBackend(gw.mqttUrl);
    await publisher.control('gateway/channels/reservations', 'not json');
    await publisher.control('gateway/channels/reservations', JSON.stringify({ type: 'realtime_update', action: 'x', data: {} }));
    // A position of another store (another cluster on this broker, or an old database).
    await publisher.control(
      'gateway/channels/reservations',
      '{"position":{"offset":1,"epoch":"ffffffffffff","at":1},"type":"notification","notification_type":"x","data":{}}',
    );
    await publisher.control('gateway/channels/no-such-channel', JSON.stringify({ type: 'notification', notification_type: 'x' }));
    await publisher.control(
      'gateway/channels/reservations',
      JSON.stringify({ type: 'realtime_update', entity_type: 'reservations', action: 'created', data: { reservation_id: 9 } }),
    );
    expect(await client.next(isEvent)).toMatchObject({ action: 'created', offset: 1, data: { reservation_id: 9 } });
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(metrics).toMatch(/gateway_events_rejected_total 4\b/);
  });
});
