/**
 * The shipped Mosquitto setup (mosquitto/secure.conf + mosquitto/acl) with a real Mosquitto and a
 * password file made by mosquitto_passwd: the gateway logs in as `gateway`, devices may publish
 * telemetry only, control topics are the gateway's and backends'. Also mqtts:// with a CA and a
 * client certificate made by openssl at test time.
 */
import { readFileSync } from 'node:fs';
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { connectPublisher } from '../helpers/publisher.js';
import { CONTROL_PUBLISHES, busClient, publishAttempt } from '../helpers/bus-probes.js';
import { adminToken, channelEnv, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { connectStream, isMessage, type Frame } from '../helpers/stream-client.js';
import { mintJwt } from '../helpers/tokens.js';

const USERS = { gateway: 'gateway-pw-1', 'truck-7': 'truck-7-pw', backend: 'backend-pw-1' };
const DEVICE = { username: 'truck-7', password: USERS['truck-7'] };
const BACKEND = { username: 'backend', password: USERS.backend };

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${gw.http}/metrics`)).text();
  const match = new RegExp(`^gateway_${name} (\\d+)`, 'm').exec(text);
  if (!match) throw new Error(`no metric ${name}`);
  return Number(match[1]);
}

describe('Mosquitto with mosquitto/secure.conf and mosquitto/acl', () => {
  it('regression: the gateway logs in as its user; a device publish to every control topic never reaches the gateway, anonymous clients are refused, device telemetry and backend events flow', async () => {
    const mosquitto = await startMosquitto({ users: USERS });
    const gw = await startGateway({ env: channelEnv({ MQTT_URL: mosquitto.url, GATEWAY_MQTT_USERNAME: 'gateway', GATEWAY_MQTT_PASSWORD: USERS.gateway }) });
    const connecting = await gw.waitForLog((l) => l.msg === 'mqtt connecting');
    expect(connecting).toMatchObject({ username: 'gateway', tls: false });
    expect(gw.logs.some((l) => JSON.stringify(l).includes(USERS.gateway))).toBe(false);

    const refused = await connectAsync(mosquitto.url, { reconnectPeriod: 0 }).then(
      async (c) => {
        await c.endAsync(true);
        return 0;
      },
      (e: { code?: number }) => e.code,
    );
    expect(refused).toBe(5);

    const sensors = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const user = await connectStream(gw.ws, `?token=${encodeURIComponent(await mintJwt('u1', { roles: ['admin'] }))}`, { path: '/ws/connect' });
    await user.next((f: Frame) => f.type === 'connection_established');
    // A device that subscribes to everything reads nothing.
    const spy = await busClient(mosquitto.url, DEVICE);
    const spied: string[] = [];
    spy.on('message', (topic) => spied.push(topic));
    await spy.subscribeAsync('#');

    for (const { topic, payload } of CONTROL_PUBLISHES) {
      // Mosquitto drops a refused publish silently for MQTT 3.1.1 clients: the connection stays open.
      expect(await publishAttempt(mosquitto.url, DEVICE, topic, payload), topic).toBe('open');
    }
    const created = await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 'temperatura' }, await adminToken());
    expect(created.status).toBe(201);
    expect(await sensors.next(isEvent)).toMatchObject({ entity_type: 'sensor', event_type: 'created', entity_id: 1, offset: 1 });
    const backend = await connectPublisher(mosquitto.url, BACKEND);
    await backend.control('gateway/events/all', JSON.stringify({ type: 'system_event', data: { n: 1 } }));
    expect((await user.next((f: Frame) => f.type === 'system_event')).data).toEqual({ n: 1 });
    expect(user.count((f) => JSON.stringify(f).includes('FORGED-PAYLOAD'))).toBe(0);
    expect(await metric(gw, 'events_received_total')).toBe(1); // the REST write's event only
    expect(await metric(gw, 'azure_commands_total')).toBe(0);
    expect(await metric(gw, 'control_rejected_total')).toBe(0);

    const stream = await connectStream(gw.ws, '?device_ids=T-7');
    await stream.next((f) => f.event === 'subscribed');
    const device = await connectPublisher(mosquitto.url, DEVICE);
    await device.position('T-7');
    await stream.next(isMessage('T-7'));
    // The ACL grants devices no read at all: the spy got neither the control traffic that went
    // through the broker (the backend's event, the outbox's channel event) nor telemetry.
    expect(spied).toEqual([]);
  });

  it('a gateway with a wrong password stays disconnected and says so', async () => {
    const mosquitto = await startMosquitto({ users: USERS });
    const gw = await startGateway({
      waitForMqtt: false,
      env: {
        MQTT_URL: mosquitto.url,
        GATEWAY_MQTT_USERNAME: 'gateway',
        GATEWAY_MQTT_PASSWORD: 'wrong',
        GATEWAY_MQTT_RECONNECT_MIN_MS: '50',
        GATEWAY_MQTT_RECONNECT_MAX_MS: '200',
      },
    });
    await gw.waitForLog((l) => l.msg === 'mqtt error' && /Not authorized|Bad username/i.test(String(l.err)));
    expect((await gw.stats()).mqtt.connected).toBe(false);
  });

  it('connects over mqtts:// with GATEWAY_MQTT_CA and a client certificate (GATEWAY_MQTT_CERT/_KEY); telemetry flows', async () => {
    const mosquitto = await startMosquitto({ users: USERS, tls: { requireCertificate: true } });
    const tls = mosquitto.tls!;
    const gw = await startGateway({
      env: {
        MQTT_URL: tls.url,
        GATEWAY_MQTT_USERNAME: 'gateway',
        GATEWAY_MQTT_PASSWORD: USERS.gateway,
        GATEWAY_MQTT_CA: tls.ca,
        GATEWAY_MQTT_CERT: tls.clientCert,
        GATEWAY_MQTT_KEY: tls.clientKey,
      },
    });
    expect(await gw.waitForLog((l) => l.msg === 'mqtt connecting')).toMatchObject({ tls: { ca: 'GATEWAY_MQTT_CA', clientCertificate: true } });
    const stream = await connectStream(gw.ws, '?device_ids=T-8');
    await stream.next((f) => f.event === 'subscribed');
    const device = await connectPublisher(tls.url, DEVICE, { ca: readFileSync(tls.ca), cert: readFileSync(tls.clientCert), key: readFileSync(tls.clientKey) });
    await device.position('T-8');
    await stream.next(isMessage('T-8'));
  });

  it('refuses mqtts:// to a broker whose certificate the CA did not sign (no GATEWAY_MQTT_CA: system CAs)', async () => {
    const mosquitto = await startMosquitto({ users: USERS, tls: { requireCertificate: false } });
    const gw = await startGateway({
      waitForMqtt: false,
      env: { MQTT_URL: mosquitto.tls!.url, GATEWAY_MQTT_USERNAME: 'gateway', GATEWAY_MQTT_PASSWORD: USERS.gateway },
    });
    await gw.waitForLog((l) => l.msg === 'mqtt error' && /certificate/i.test(String(l.err)));
    expect((await gw.stats()).mqtt.connected).toBe(false);
  });
});
