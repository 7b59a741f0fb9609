/**
 * The embedded broker locked down (issue 14, "the bus"): real gateway process, real mqtt.js clients,
 * real WebSocket subscribers. Anonymous and device clients may publish telemetry and nothing on a
 * control topic; refusals are counted and logged without payloads; the backend login still works.
 */
import { execFile } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, eventually, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { BACKEND_BUS_ENV, BACKEND_LOGIN, DEVICE_LOGIN, connectBackend, connectPublisher } from '../helpers/publisher.js';
import { CONTROL_FILTERS, CONTROL_PUBLISHES, publishAttempt, subscribeAttempt } from '../helpers/bus-probes.js';
import { adminToken, channelEnv, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { connectStream, isMessage, type Frame } from '../helpers/stream-client.js';
import { mintJwt } from '../helpers/tokens.js';

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${gw.http}/metrics`)).text();
  const match = new RegExp(`^gateway_${name} (\\d+)`, 'm').exec(text);
  if (!match) throw new Error(`no metric ${name}`);
  return Number(match[1]);
}

const isType = (type: string) => (f: Frame) => f.type === type;

describe('embedded broker: control topics are closed to anonymous and device clients', () => {
  it('regression: an anonymous publish to gateway/channels/sensors (and every other control topic) is refused, counted, never delivered; a REST write still arrives', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const sensors = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const user = await connectStream(gw.ws, `?token=${encodeURIComponent(await mintJwt('u1', { roles: ['admin'] }))}`, { path: '/ws/connect' });
    await user.next(isType('connection_established'));

    let refused = 0;
    for (const login of [undefined, DEVICE_LOGIN]) {
      for (const { topic, payload } of CONTROL_PUBLISHES) {
        expect(await publishAttempt(gw.mqttUrl, login, topic, payload), `${login?.username ?? 'anonymous'} on ${topic}`).toBe('closed');
        refused++;
      }
    }
    expect((await gw.stats()).broker.publishes_refused_total).toBe(refused);
    expect(await metric(gw, 'broker_publishes_refused_total')).toBe(refused);
    const refusal = await gw.waitForLog((l) => l.msg === 'broker refused a publish (the client is disconnected)');
    expect(refusal).toMatchObject({ topic: expect.stringMatching(/^gateway\//), bytes: expect.any(Number) });
    expect(gw.logs.some((l) => JSON.stringify(l).includes('FORGED-PAYLOAD'))).toBe(false);

    // Nothing reached the bus: the next channel event is the REST write, at offset 1, and the user's
    // next event is the backend's.
    const created = await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 'temperatura' }, await adminToken());
    expect(created.status).toBe(201);
    expect(await sensors.next(isEvent)).toMatchObject({ entity_type: 'sensor', event_type: 'created', entity_id: 1, offset: 1 });
    const backend = await connectBackend(gw.mqttUrl);
    await backend.control('gateway/events/all', JSON.stringify({ type: 'system_event', data: { n: 1 } }));
    expect((await user.next(isType('system_event'))).data).toEqual({ n: 1 });
    expect(sensors.count(isEvent)).toBe(1);
    expect(user.count((f) => JSON.stringify(f).includes('FORGED-PAYLOAD'))).toBe(0);
    expect((await gw.stats()).ingest).toBeDefined();
    expect(await metric(gw, 'events_received_total')).toBe(1);
    expect(await metric(gw, 'azure_commands_total')).toBe(0);
    expect(await metric(gw, 'control_rejected_total')).toBe(0);
  });

  it('regression: anonymous and device subscriptions that could read a control topic are refused (SUBACK 0x80) and counted; telemetry ones are granted', async () => {
    const gw = await startGateway({ env: channelEnv() });
    for (const login of [undefined, DEVICE_LOGIN]) {
      expect(await subscribeAttempt(gw.mqttUrl, login, CONTROL_FILTERS)).toEqual(CONTROL_FILTERS.map(() => 128));
      expect(await subscribeAttempt(gw.mqttUrl, login, ['gps/#', 'gps/+', 'devices/x/commands'])).toEqual([0, 0, 0]);
    }
    expect(await subscribeAttempt(gw.mqttUrl, BACKEND_LOGIN, ['gateway/#'])).toEqual([0]);
    expect((await gw.stats()).broker.subscribes_refused_total).toBe(2 * CONTROL_FILTERS.length);
    await gw.waitForLog((l) => l.msg === 'broker refused a subscription' && l.filter === '#');
  });

  it('anonymous and device telemetry still flows; a device may not publish outside the telemetry topics', async () => {
    const gw = await startGateway({ env: { ...BACKEND_BUS_ENV } });
    const client = await connectStream(gw.ws, '?device_ids=T-1,T-2');
    await client.next((f) => f.event === 'subscribed');
    const anonymous = await connectPublisher(gw.mqttUrl);
    await anonymous.position('T-1');
    expect((await client.next(isMessage('T-1'))).data.data.DEVICE_ID).toBe('T-1');
    const device = await connectPublisher(gw.mqttUrl, DEVICE_LOGIN);
    await device.position('T-2');
    expect((await client.next(isMessage('T-2'))).data.data.DEVICE_ID).toBe('T-2');
    expect(await publishAttempt(gw.mqttUrl, DEVICE_LOGIN, 'elsewhere/T-2', '{}')).toBe('closed');
    expect((await gw.stats()).broker.publishes_refused_total).toBe(1);
  });
});

describe('embedded broker: binding and logins', () => {
  it('binds 127.0.0.1 by default and says what is open to whom in one line', async () => {
    const gw = await startGateway({ env: { GATEWAY_BROKER_HOST: '' } });
    const line = await gw.waitForLog((l) => l.msg === 'embedded MQTT broker listening');
    expect(line).toMatchObject({
      host: '127.0.0.1',
      reachableFrom: 'this machine only',
      anonymous: 'may publish telemetry only (gps/#)',
      users: { device: 0, backend: 0 },
      controlTopicsOpenTo: 'the gateway and backend users only',
      controlTopics: ['gateway/channels/#', 'gateway/events/#', 'gateway/azure/#', 'gateway/azure-presence/#', 'gateway/revocations/#', 'gateway/watchdog/#'],
    });
    const port = line.port as number;
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    if (external) {
      const err = await connectAsync(`mqtt://${external.address}:${port}`, { reconnectPeriod: 0, connectTimeout: 2000 }).then(
        async (c) => {
          await c.endAsync(true);
          return undefined;
        },
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).toBe('ECONNREFUSED');
    }
  });

  it('regression: bound to 0.0.0.0 without logins, the broker refuses anonymous clients instead of being an open broker, and warns', async () => {
    const gw = await startGateway({ env: { GATEWAY_BROKER_HOST: '0.0.0.0' } });
    expect(await gw.waitForLog((l) => l.msg === 'embedded MQTT broker listening')).toMatchObject({
      host: '0.0.0.0',
      reachableFrom: 'the network',
      anonymous: 'refused',
    });
    await gw.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('no device can connect'));
    const code = await connectAsync(gw.mqttUrl, { reconnectPeriod: 0 }).then(
      async (c) => {
        await c.endAsync(true);
        return 0;
      },
      (e: { code?: number }) => e.code,
    );
    expect(code).toBe(5);
    expect((await gw.stats()).mqtt.connected).toBe(true);
  });

  it("regression: with GATEWAY_BROKER_USERS set, anonymous clients, wrong passwords and a device taking the gateway's client id are refused and counted; an scrypt login works", async () => {
    // The entry as `npm run broker-user` prints it.
    const entry = await new Promise<string>((resolve, reject) => {
      const child = execFile(process.execPath, [`${REPO_ROOT}dist/scripts/broker-user.js`, '--user', 'truck-7', '--role', 'device'], (err, stdout) =>
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- execFile's error is an Error; its type (an Omit<> of ExecException) only hides that
        err ? reject(err) : resolve(stdout),
      );
      child.stdin!.end('truck-7-password\n');
    });
    const users = { ...JSON.parse(entry), erp: { role: 'backend', secret: 'erp-secret-1' } };
    expect(users['truck-7'].password_hash).toMatch(/^scrypt:16384:8:1:/);
    const gw = await startGateway({ env: { GATEWAY_MQTT_CLIENT_ID: 'gateway-node-a', GATEWAY_BROKER_USERS: JSON.stringify(users) } });
    const line = await gw.waitForLog((l) => l.msg === 'embedded MQTT broker listening');
    expect(line).toMatchObject({ anonymous: 'refused', users: { device: 1, backend: 1 } });
    const refusedWith = (options: Record<string, unknown>) =>
      connectAsync(gw.mqttUrl, { reconnectPeriod: 0, ...options }).then(
        async (c) => {
          await c.endAsync(true);
          return 0;
        },
        (e: { code?: number }) => e.code,
      );
    expect(await refusedWith({})).toBe(5);
    expect(await refusedWith({ username: 'truck-7', password: 'wrong' })).toBe(4);
    expect(await refusedWith({ username: 'gateway', password: 'guess' })).toBe(4);
    expect(await refusedWith({ username: 'truck-7', password: 'truck-7-password', clientId: 'gateway-node-a' })).toBe(2);
    expect((await gw.stats()).broker.connects_refused_total).toBe(4);
    expect((await gw.stats()).mqtt.connected).toBe(true); // the gateway's own session survived

    const client = await connectStream(gw.ws, '?device_ids=T-7');
    await client.next((f) => f.event === 'subscribed');
    const device = await connectPublisher(gw.mqttUrl, { username: 'truck-7', password: 'truck-7-password' });
    await device.position('T-7');
    await client.next(isMessage('T-7'));
    const erp = await connectPublisher(gw.mqttUrl, { username: 'erp', password: 'erp-secret-1' });
    const channel = await connectChannel(gw, '/api/v1/ws?channel=general');
    await erp.control('gateway/channels/general', JSON.stringify({ type: 'notification', notification_type: 'from-erp', data: {} }));
    expect(await channel.next(isEvent)).toMatchObject({ notification_type: 'from-erp', offset: 1 });
    await eventually(async () => (await gw.stats()).broker.publishes_refused_total === 0, 1000, 'no refusals');
    expect(gw.logs.some((l) => JSON.stringify(l).includes('truck-7-password') || JSON.stringify(l).includes('erp-secret-1'))).toBe(false);
  });
});
