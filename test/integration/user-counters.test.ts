/**
 * GET /ws/stats `metrics.total_messages_sent` (docs/compat/user-hub.md) counts every frame sent to
 * /ws/connect sockets: bus events, the channel events their roles may see, their notifications,
 * heartbeats and the replies (connection_established, pong). Compared with what real clients got.
 */
import { describe, expect, it } from 'vitest';
import { startGateway } from '../helpers/gateway-process.js';
import { adminToken, channelEnv, rest } from '../helpers/channels.js';
import { connectBackend } from '../helpers/publisher.js';
import { connectStream, type Frame, type StreamClient } from '../helpers/stream-client.js';
import { mintJwt } from '../helpers/tokens.js';

/** Waits until the client has a frame matching `predicate`, in whatever order the frames came. */
async function received(client: StreamClient, predicate: (f: Frame) => boolean): Promise<void> {
  while (!client.frames.some(predicate)) await client.next(() => true, 5000);
}

describe('/ws/stats total_messages_sent', () => {
  it('regression: channel events and notifications delivered to /ws/connect sockets were not counted', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_HEARTBEAT_MS: '1500' }) });
    const viewer = await connectStream(gw.ws, `?token=${await mintJwt('8', { roles: ['viewer'] })}`, { path: '/ws/connect' });
    const supervisor = await connectStream(gw.ws, `?token=${await mintJwt('7', { roles: ['supervisor'] })}`, { path: '/ws/connect', protocol: 'msgpack' });
    const clients = [viewer, supervisor];
    await Promise.all(clients.map((c) => c.next((f) => f.type === 'connection_established')));
    const admin = await adminToken();

    // Channel events: sensors reach the viewer, tasks the supervisor.
    const sensor = await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 'temperatura', modelo: 'DHT22' }, admin);
    await rest(gw, 'PUT', `/api/v1/sensores/${sensor.body.id}`, { modelo: 'DHT11' }, admin);
    await rest(gw, 'DELETE', `/api/v1/sensores/${sensor.body.id}`, undefined, admin);
    await rest(gw, 'POST', '/api/v1/tareas/', { titulo: 'Patrulla', estado: 'pendiente' }, admin);
    // Notifications: one user's, and one for everyone on a channel the viewer may see.
    await rest(gw, 'POST', '/api/v1/channels/users/events', { type: 'notification', notification_type: 'for-8', user_id: '8', data: {} }, admin);
    await rest(gw, 'POST', '/api/v1/channels/sensors/events', { type: 'notification', notification_type: 'all-sensors', data: {} }, admin);
    // A bus event to everyone, and a pong.
    const pub = await connectBackend(gw.mqttUrl);
    await pub.control('gateway/events/all', JSON.stringify({ type: 'system_event', data: { id: 1 } }));
    viewer.send({ type: 'ping' });

    await received(viewer, (f) => f.type === 'sensor_event' && f.action === 'deleted');
    await received(viewer, (f) => f.type === 'notification' && f.notification_type === 'for-8');
    await received(viewer, (f) => f.type === 'notification' && f.notification_type === 'all-sensors');
    await received(viewer, (f) => f.type === 'system_event');
    await received(viewer, (f) => f.type === 'pong');
    await received(supervisor, (f) => f.type === 'task_event');
    await received(supervisor, (f) => f.type === 'system_event');
    expect(viewer.count((f) => f.type === 'sensor_event')).toBe(3);
    expect(supervisor.count((f) => f.type === 'sensor_event' || f.type === 'notification')).toBe(0);

    // Heartbeats count too. One may go out between reading the counter and counting the frames:
    // then read again (an undercount never settles; an overcount never arrives).
    await Promise.all(clients.map((c) => c.next((f) => f.type === 'ping', 5000)));
    const total = () => viewer.frames.length + supervisor.frames.length;
    let counted = -1;
    for (let attempt = 0; attempt < 5 && counted !== total(); attempt++) {
      counted = (await rest(gw, 'GET', '/ws/stats')).body.stats.metrics.total_messages_sent as number;
      while (total() < counted) await Promise.race(clients.map((c) => c.next(() => true, 5000)));
    }
    expect(counted).toBe(total());
  });
});
