/**
 * docs/compat/sensor-events.md compatibility on a real gateway with real `ws` clients: its own test
 * (`test_websocket_no_auth.py`) counts "5 events (connection + stats + 3 CRUD)" on
 * /api/v1/ws?channel=sensors, and its authenticated variant is /api/v1/ws/secure.
 */
import { describe, expect, it } from 'vitest';
import { startGateway } from '../helpers/gateway-process.js';
import { adminToken, channelEnv, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { mintJwt } from '../helpers/tokens.js';

const statsFrame = (fields: Record<string, unknown>) => ({
  type: 'stats',
  data: {
    channel: 'sensors',
    connections: expect.any(Number),
    epoch: expect.any(String),
    offset: expect.any(Number),
    oldest_offset: expect.any(Number),
    history: expect.any(Number),
    ...fields,
  },
  timestamp: expect.any(String),
});

describe('reference/003: /api/v1/ws', () => {
  it('regression: sent no stats frame; the reference test counts 5 events (connection + stats + 3 CRUD)', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const client = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const created = await rest(gw, 'POST', '/api/v1/test-sensors/', { tipo: 'temperatura', modelo: 'DHT22' });
    expect(created.status).toBe(201);
    expect((await rest(gw, 'PUT', `/api/v1/test-sensors/${created.body.id}`, { modelo: 'DHT11' })).status).toBe(200);
    expect((await rest(gw, 'DELETE', `/api/v1/test-sensors/${created.body.id}`)).status).toBe(200);
    await client.next((f) => f.type === 'entity_event' && (f as any).event_type === 'deleted');
    expect(client.frames.map((f) => f.type)).toEqual(['connection_established', 'stats', 'entity_event', 'entity_event', 'entity_event']);
    expect(client.frames[1]).toEqual(statsFrame({ connections: 1, offset: 0, oldest_offset: 1, history: 0 }));
    expect(client.frames.slice(2).map((f) => (f as any).event_type)).toEqual(['created', 'updated', 'deleted']);
  });

  it('sends stats after connection_established and before a replay; stats is not an event', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const first = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    for (const modelo of ['A', 'B', 'C']) await rest(gw, 'POST', '/api/v1/test-sensors/', { tipo: 't', modelo });
    const seen = await first.next(isEvent);
    await first.next((f) => isEvent(f) && (f as any).offset === 3);
    expect(first.frames.filter((f) => f.type === 'stats')).toHaveLength(1);
    expect(isEvent(first.frames[1])).toBe(false);

    const back = await connectChannel(gw, `/api/v1/ws?channel=sensors&since=${(seen as any).offset}&epoch=${(seen as any).epoch}`);
    await back.next((f) => isEvent(f) && (f as any).offset === 3);
    expect(back.frames.map((f) => f.type)).toEqual(['connection_established', 'stats', 'entity_event', 'entity_event']);
    expect(back.frames[0]).toMatchObject({ recovered: true, replayed: 2 });
    expect(back.frames[1]).toEqual(statsFrame({ connections: 2, offset: 3, oldest_offset: 1, history: 3 }));

    // docs/compat/pet-care.md's /ws/{channel} is unchanged: no stats frame.
    const pets = await connectChannel(gw, '/ws/pets');
    await rest(
      gw,
      'POST',
      '/api/v1/channels/pets/events',
      { type: 'realtime_update', entity_type: 'pets', action: 'created', data: { pet_id: 1, name: 'Luna' } },
      await adminToken(),
    );
    await pets.next(isEvent);
    expect(pets.frames.map((f) => f.type)).toEqual(['connection_established', 'realtime_update']);
  });
});

describe('reference/003: /api/v1/ws/secure', () => {
  it('regression: answered 404; it is /api/v1/ws with a JWT always required and the ACL checked', async () => {
    // Channels need no token here (GATEWAY_AUTH_REQUIRED=rest): /api/v1/ws/secure needs one anyway.
    const gw = await startGateway({ env: channelEnv() });
    const anonymous = await connectChannel(gw, '/api/v1/ws/secure?channel=sensors');
    expect(anonymous.established).toMatchObject({ type: 'error', data: { code: 'GW_ERR_TOKEN_MISSING' } });
    expect((await anonymous.closed).code).toBe(1008);
    const bad = await connectChannel(gw, '/api/v1/ws/secure?channel=sensors&token=garbage');
    expect(bad.established).toMatchObject({ type: 'error', data: { code: 'GW_ERR_TOKEN_INVALID' } });
    expect((await bad.closed).code).toBe(1008);

    const viewer = await mintJwt('55', { roles: ['viewer'] });
    const forbidden = await connectChannel(gw, `/api/v1/ws/secure?channel=tasks&token=${viewer}`);
    expect(forbidden.established).toMatchObject({ type: 'error', data: { code: 'GW_ERR_FORBIDDEN' } });
    expect((await forbidden.closed).code).toBe(1008);

    const client = await connectChannel(gw, '/api/v1/ws/secure?channel=sensors&user_id=99', { headers: { authorization: `Bearer ${viewer}` } });
    expect(client.established).toMatchObject({ type: 'connection_established', channel: 'sensors' });
    await rest(gw, 'POST', '/api/v1/test-sensors/', { tipo: 'humedad', modelo: 'X' });
    // The token's user gets its notifications; user_id in the query is ignored.
    await rest(
      gw,
      'POST',
      '/api/v1/channels/sensors/events',
      { type: 'notification', notification_type: 'for-99', user_id: '99', data: {} },
      await adminToken(),
    );
    await rest(
      gw,
      'POST',
      '/api/v1/channels/sensors/events',
      { type: 'notification', notification_type: 'for-55', user_id: '55', data: {} },
      await adminToken(),
    );
    await client.next((f) => f.type === 'notification');
    expect(client.frames.map((f) => f.type)).toEqual(['connection_established', 'stats', 'entity_event', 'notification']);
    expect(client.frames[3]).toMatchObject({ notification_type: 'for-55', user_id: '55' });
  });
});
