/**
 * The outbox under a broker outage, with a real Mosquitto: writes go on while the broker is down,
 * and once it is back every event arrives once, in order (the relay publishes what was not seen
 * back from the bus again; receivers drop the copies).
 */
import { describe, expect, it } from 'vitest';
import { eventually, startGateway, tempDataDir } from '../helpers/gateway-process.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { adminToken, channelEnv, connectChannel, isEvent, rest } from '../helpers/channels.js';

describe('broker outage during a burst of writes', () => {
  it('delivers every event once, in order, after Mosquitto is stopped and restarted', async () => {
    const mosquitto = await startMosquitto();
    const gw = await startGateway({
      env: channelEnv({
        MQTT_URL: mosquitto.url,
        GATEWAY_MQTT_RECONNECT_MIN_MS: '50',
        GATEWAY_MQTT_RECONNECT_MAX_MS: '300',
        GATEWAY_OUTBOX_LEASE_MS: '300',
      }),
    });
    const token = await adminToken();
    const client = await connectChannel(gw, '/api/v1/ws?channel=readings');
    const total = 800;
    let written = 0;
    // Eight writers at once, so that events are in flight when the broker goes away.
    const writer = async () => {
      while (written < total) {
        written++;
        const reply = await rest(gw, 'POST', '/api/v1/lecturas/', { sensor_id: 1, valor: written }, token);
        if (reply.status !== 201) throw new Error(`a write answered ${reply.status}`);
      }
    };
    const writes = Promise.all(Array.from({ length: 8 }, writer));

    await client.next((f) => (f as any).offset === 50, 10_000);
    await mosquitto.stop(); // mid-burst: some events are in flight, the rest pile up in the outbox
    const writtenAtStop = written;
    await eventually(async () => written >= Math.min(total, writtenAtStop + 100), 15_000, 'writes while the broker is down');
    const seenWhileDown = client.frames.filter(isEvent).length;
    expect(written).toBeGreaterThan(seenWhileDown); // the outage really held events back
    await mosquitto.start();
    await writes;
    await client.next((f) => (f as any).offset === total, 20_000);

    const events = client.frames.filter(isEvent) as any[];
    expect(events.map((f) => f.offset)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    // Entity ids are given in the write's transaction, like the outbox row: event order is id order.
    expect(events.map((f) => f.entity_id)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(metrics).toMatch(/gateway_events_published_total 800\b/);
    expect(metrics).toMatch(/gateway_outbox_published_total \d+/);
    await eventually(async () => /gateway_outbox_pending 0\b/.test(await (await fetch(`${gw.http}/metrics`)).text()), 10_000, 'an empty outbox');
  });
});

describe('outbox across a gateway restart', () => {
  it('publishes after a restart the events written while the broker was unreachable', async () => {
    const mosquitto = await startMosquitto();
    await mosquitto.stop();
    const dataDir = tempDataDir();
    const env = channelEnv({ MQTT_URL: mosquitto.url, GATEWAY_DATA_DIR: dataDir, GATEWAY_MQTT_RECONNECT_MIN_MS: '50', GATEWAY_MQTT_RECONNECT_MAX_MS: '200' });
    const token = await adminToken();
    const first = await startGateway({ env, waitForMqtt: false });
    for (let i = 1; i <= 20; i++) expect((await rest(first, 'POST', '/api/v1/pets/', { name: `p${i}` }, token)).status).toBe(201);
    expect(await first.stop()).toBe(0); // 20 events in the outbox, none published

    await mosquitto.start();
    const second = await startGateway({ env });
    const client = await connectChannel(second, '/ws/pets?since=0&epoch=' + (await rest(second, 'GET', '/api/v1/ws/stats')).body.epoch);
    await client.next((f) => (f as any).offset === 20, 10_000);
    expect(client.frames.filter(isEvent).map((f: any) => f.data.pet_id)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
