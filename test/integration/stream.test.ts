/**
 * /api/v1/stream end to end: real gateway process, real brokers (embedded aedes and Mosquitto),
 * real MQTT publishers, real WebSocket clients. Envelopes are compared with docs/compat/gps-stream.md.
 */
import { describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

type Broker = 'embedded' | 'mosquitto';

async function gatewayOn(broker: Broker, env: Record<string, string> = {}): Promise<GatewayProcess> {
  if (broker === 'embedded') return startGateway({ env });
  const mosquitto = await startMosquitto();
  return startGateway({ env: { MQTT_URL: mosquitto.url, ...env } });
}

describe.each<Broker>(['embedded', 'mosquitto'])('telemetry stream via %s broker', (broker) => {
  it('delivers the reference envelope in JSON, exactly', async () => {
    const gw = await gatewayOn(broker);
    const client = await connectStream(gw.ws, '?device_ids=0848086072');
    expect(client.protocol).toBe('');
    await client.next((f) => f.event === 'subscribed');
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.raw('gps/0848086072', JSON.stringify({ DEVICE_ID: '0848086072', LAT: -33.4567, LON: -70.6789, SPEED: 45 }));
    const frame = await client.next(isMessage('0848086072'));
    expect(Object.keys(frame)).toEqual(['event', 'data']);
    expect(Object.keys(frame.data)).toEqual(['timestamp', 'data']);
    expect(frame.data.timestamp).toMatch(ISO);
    expect(frame.data.data).toEqual({ DEVICE_ID: '0848086072', LAT: -33.4567, LON: -70.6789, SPEED: 45 });
    const raw = client.raw.at(-1) as string;
    expect(raw).toBe(
      `{"event":"message","data":{"timestamp":"${frame.data.timestamp}","data":{"DEVICE_ID":"0848086072","LAT":-33.4567,"LON":-70.6789,"SPEED":45}}}`,
    );
  });

  it('delivers the same envelope in msgpack when the client asks for it, and echoes the subprotocol', async () => {
    const gw = await gatewayOn(broker);
    const client = await connectStream(gw.ws, '?device_ids=M1', { protocol: 'msgpack' });
    expect(client.protocol).toBe('msgpack');
    await client.next((f) => f.event === 'subscribed');
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.position('M1', { SPEED: 7 });
    const frame = await client.next(isMessage('M1'));
    expect(Buffer.isBuffer(client.raw.at(-1))).toBe(true);
    expect(frame).toEqual({ event: 'message', data: { timestamp: expect.stringMatching(ISO), data: { DEVICE_ID: 'M1', LAT: -33.45, LON: -70.66, SPEED: 7 } } });
  });

  it('sends the last known position of each requested device first, then live updates', async () => {
    const gw = await gatewayOn(broker);
    const pub = await connectPublisher(gw.mqttUrl);
    // A watcher on another device makes sure the positions below were ingested before we connect.
    await pub.position('S1', { SPEED: 1 });
    await pub.position('S1', { SPEED: 2 });
    await pub.position('S2', { SPEED: 3 });
    await pub.position('SYNC');
    const sync = await connectStream(gw.ws, '?device_ids=SYNC');
    await sync.next(isMessage('SYNC'));

    let s1 = 2;
    for (const protocol of ['json', 'msgpack']) {
      const client = await connectStream(gw.ws, '?device_ids=S1,S2,NEVER', { protocol });
      const first = await client.next(isMessage());
      const second = await client.next(isMessage());
      const byId = Object.fromEntries([first, second].map((f) => [f.data.data.DEVICE_ID, f.data.data.SPEED]));
      expect(byId).toEqual({ S1: s1, S2: 3 });
      s1++;
      await pub.position('S1', { SPEED: s1 });
      const live = await client.next(isMessage('S1'));
      expect(live.data.data.SPEED).toBe(s1);
      expect(client.count(isMessage('NEVER'))).toBe(0);
    }
  });

  it('device_ids=* watches every device: the last position of each, then every new one, in both formats', async () => {
    const gw = await gatewayOn(broker);
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.position('A1', { SPEED: 1 });
    await pub.position('A2', { SPEED: 2 });
    await pub.position('A2', { SPEED: 3 });
    const sync = await connectStream(gw.ws, '?device_ids=A2');
    await sync.next(isMessage('A2'));
    const everything = [];
    for (const protocol of ['json', 'msgpack', 'json']) {
      // the second json socket is served from the edge's cache
      const client = await connectStream(gw.ws, '?device_ids=*', { protocol });
      expect((await client.next((f) => f.event === 'subscribed')).data).toEqual({ device_ids: ['*'] });
      const snapshot = [await client.next(isMessage()), await client.next(isMessage())].map((f) => [f.data.data.DEVICE_ID, f.data.data.SPEED]);
      expect(snapshot.sort()).toEqual([
        ['A1', 1],
        ['A2', 3],
      ]);
      everything.push(client);
    }
    await pub.position('NEW-1', { SPEED: 7 }); // a device nobody named
    await pub.position('A1', { SPEED: 8 });
    for (const client of everything) {
      expect((await client.next(isMessage())).data.data).toMatchObject({ DEVICE_ID: 'NEW-1', SPEED: 7 });
      expect((await client.next(isMessage())).data.data).toMatchObject({ DEVICE_ID: 'A1', SPEED: 8 });
    }
    // Naming devices next to * adds nothing; subscribing to one on a * socket adds nothing either.
    const mixed = await connectStream(gw.ws, '?device_ids=A1,*');
    expect((await mixed.next((f) => f.event === 'subscribed')).data).toEqual({ device_ids: ['*'] });
    for (let i = 0; i < 3; i++) await mixed.next(isMessage()); // the snapshot: A1, A2, NEW-1
    await pub.position('A2', { SPEED: 9 });
    expect((await mixed.next(isMessage())).data.data).toMatchObject({ DEVICE_ID: 'A2', SPEED: 9 });
    expect(mixed.count(isMessage())).toBe(4); // each once
    // Leaving * stops everything.
    everything[0].send({ action: 'unsubscribe', device_ids: ['*'] });
    await everything[0].next((f) => f.event === 'unsubscribed');
    await pub.position('A1', { SPEED: 10 });
    await everything[1].next((f) => f.event === 'message' && f.data.data.SPEED === 10);
    expect(everything[0].count((f) => f.event === 'message' && f.data.data.SPEED === 10)).toBe(0);
  });

  it("device_ids=*&batch=1 sends the snapshot and then every interval's positions as one batch message", async () => {
    const gw = await gatewayOn(broker);
    const pub = await connectPublisher(gw.mqttUrl);
    const latest = new Map<string, number>();
    const publish = async (id: string, speed: number) => {
      await pub.position(id, { SPEED: speed });
      latest.set(id, speed);
    };
    await publish('B1', 1);
    await publish('B2', 2);
    const sync = await connectStream(gw.ws, '?device_ids=B2');
    await sync.next(isMessage('B2'));
    for (const protocol of ['json', 'msgpack']) {
      const client = await connectStream(gw.ws, '?device_ids=*&batch=1', { protocol });
      expect((await client.next((f) => f.event === 'subscribed')).data).toEqual({ device_ids: ['*'], batch_ms: 100 });
      const snapshot = await client.next((f) => f.event === 'batch'); // the last position of each device, in one message
      expect(snapshot.data.map((m: any) => [m.event, m.data.data.DEVICE_ID, m.data.data.SPEED]).sort()).toEqual(
        [...latest].map(([id, speed]) => ['message', id, speed]).sort(),
      );
      for (let n = 0; n < 20; n++) await publish(`B${n % 3}`, 100 + n);
      const live: any[] = [];
      while (live.length < 20) live.push(...(await client.next((f) => f.event === 'batch')).data);
      expect(live.map((m) => m.data.data.SPEED)).toEqual(Array.from({ length: 20 }, (_, n) => 100 + n)); // all of them, in order
      expect(client.count((f) => f.event === 'message')).toBe(0); // never one by one
    }
    for (const [query, message] of [
      ['?device_ids=B1&batch=1', 'batch=1 needs device_ids=*'],
      ['?device_ids=*&batch=yes', 'batch must be 0 or 1'],
    ]) {
      const refused = await connectStream(gw.ws, query);
      expect((await refused.next((f) => f.event === 'error')).data).toMatchObject({ code: 'GW_ERR_BATCH_INVALID', message: expect.stringContaining(message) });
      expect((await refused.closed).code).toBe(4500);
    }
  });

  it('lets a client subscribe and unsubscribe on an open connection', async () => {
    const gw = await gatewayOn(broker);
    const pub = await connectPublisher(gw.mqttUrl);
    const client = await connectStream(gw.ws, '?device_ids=D1');
    await client.next((f) => f.event === 'subscribed');
    await pub.position('D2', { SPEED: 20 });
    client.send({ action: 'subscribe', device_ids: ['D2'] });
    expect((await client.next((f) => f.event === 'subscribed')).data).toEqual({ device_ids: ['D2'] });
    // D2 already had a position: it arrives as the snapshot.
    expect((await client.next(isMessage('D2'))).data.data.SPEED).toBe(20);
    client.send({ action: 'unsubscribe', device_ids: ['D1'] });
    expect((await client.next((f) => f.event === 'unsubscribed')).data).toEqual({ device_ids: ['D1'] });
    await pub.position('D1', { SPEED: 99 });
    await pub.position('D2', { SPEED: 21 });
    expect((await client.next(isMessage())).data.data).toMatchObject({ DEVICE_ID: 'D2', SPEED: 21 });
    expect(client.count(isMessage('D1'))).toBe(0);
    client.send({ action: 'ping' });
    await client.next((f) => f.event === 'pong');
  });
});

describe('telemetry stream behaviour', () => {
  it('sends the keep-alive ping event at the configured interval', async () => {
    const gw = await startGateway({ env: { GATEWAY_KEEPALIVE_MS: '100' } });
    const json = await connectStream(gw.ws, '?device_ids=K1');
    const msgpack = await connectStream(gw.ws, '?device_ids=K1', { protocol: 'msgpack' });
    expect(await json.next((f) => f.event === 'ping')).toEqual({ event: 'ping', data: { type: 'keep-alive' } });
    expect(await msgpack.next((f) => f.event === 'ping')).toEqual({ event: 'ping', data: { type: 'keep-alive' } });
    // One ping per interval: four pings span at least two and a half intervals (a second
    // publisher on the keep-alive topic once sent every ping twice, back to back).
    const started = Date.now();
    for (let i = 0; i < 4; i++) await json.next((f) => f.event === 'ping');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('reports stats with the reference fields, plus metrics, health and readiness', async () => {
    const gw = await startGateway();
    const pub = await connectPublisher(gw.mqttUrl);
    const a = await connectStream(gw.ws, '?device_ids=T1,T2');
    const b = await connectStream(gw.ws, '?device_ids=T1', { protocol: 'msgpack' });
    await a.next((f) => f.event === 'subscribed');
    await b.next((f) => f.event === 'subscribed');
    await pub.position('T1');
    await a.next(isMessage('T1'));
    await b.next(isMessage('T1'));
    const stats = await gw.stats();
    expect(stats).toMatchObject({
      total_messages_processed: 1,
      active_subscribers: 3,
      devices_being_monitored: 2,
      connections: 2,
      mqtt: { connected: true },
      ingest: { messages_received_total: 1, frames_encoded_total: 2 },
    });
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(metrics).toMatch(/^gateway_connections 2$/m);
    expect(metrics).toMatch(/^gateway_telemetry_messages_processed_total 1$/m);
    expect(metrics).toContain('# TYPE gateway_deliveries_total counter');
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gw.http}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('encodes each message once per wire format, however many sockets watch it', async () => {
    const gw = await startGateway();
    const pub = await connectPublisher(gw.mqttUrl);
    const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => connectStream(gw.ws, '?device_ids=E1', { protocol: i % 2 ? 'msgpack' : 'json' })));
    await Promise.all(clients.map((c) => c.next((f) => f.event === 'subscribed')));
    for (let i = 0; i < 5; i++) await pub.position('E1', { SEQ: i });
    await Promise.all(clients.map((c) => c.next((f) => f.event === 'message' && f.data.data.SEQ === 4)));
    const stats = await gw.stats();
    expect(stats.ingest.frames_encoded_total).toBe(10);
    expect(stats.deliveries_total).toBe(100);
  });

  it('serves every connection from several edge threads on one port', async () => {
    const gw = await startGateway({ env: { GATEWAY_THREADS: '2' } });
    const pub = await connectPublisher(gw.mqttUrl);
    const clients = await Promise.all(Array.from({ length: 16 }, () => connectStream(gw.ws, '?device_ids=W1')));
    await Promise.all(clients.map((c) => c.next((f) => f.event === 'subscribed')));
    await pub.position('W1', { N: 1 });
    await Promise.all(clients.map((c) => c.next(isMessage('W1'))));
    const stats = await gw.stats();
    expect(stats.edge_threads).toBe(2);
    expect(stats.connections).toBe(16);
    expect(stats.devices_being_monitored).toBe(1);
  });

  it('runs ingest inside the one edge thread (GATEWAY_INGEST_THREAD=edge): snapshot, live frames in both formats, a clean exit', async () => {
    const gw = await startGateway({ env: { GATEWAY_THREADS: '1', GATEWAY_INGEST_THREAD: 'edge' } });
    expect((await fetch(`${gw.http}/readyz`)).status).toBe(200);
    const pub = await connectPublisher(gw.mqttUrl);
    const first = await connectStream(gw.ws, '?device_ids=IN1');
    await first.next((f) => f.event === 'subscribed');
    await pub.position('IN1', { N: 1 });
    await first.next(isMessage('IN1'));
    // A later client gets the last position first (the snapshot), then live, in msgpack too.
    const packed = await connectStream(gw.ws, '?device_ids=IN1', { protocol: 'msgpack' });
    expect(((await packed.next(isMessage('IN1'))).data as { data: { N: number } }).data.N).toBe(1);
    await pub.position('IN1', { N: 2 });
    for (const c of [first, packed]) expect(((await c.next(isMessage('IN1'))).data as { data: { N: number } }).data.N).toBe(2);
    const stats = await gw.stats();
    expect(stats.edge_threads).toBe(1);
    expect(stats.ingest.frames_encoded_total).toBeGreaterThanOrEqual(3);
    const exit = gw.stop('SIGTERM');
    expect((await first.closed).code).toBe(1001);
    expect(await exit).toBe(0);
    expect(gw.logs.find((l) => l.msg === 'gateway closed')?.stuck).toEqual([]);
  });

  it('shuts down gracefully: readiness goes away, clients get 1001, the process exits 0', async () => {
    const gw = await startGateway();
    const clients = await Promise.all([connectStream(gw.ws, '?device_ids=G1'), connectStream(gw.ws, '?device_ids=G2', { protocol: 'msgpack' })]);
    const exit = gw.stop('SIGTERM');
    const closes = await Promise.all(clients.map((c) => c.closed));
    expect(closes.map((c) => c.code)).toEqual([1001, 1001]);
    expect(await exit).toBe(0);
    expect(gw.logs.some((l) => l.msg === 'gateway closed')).toBe(true);
  });
});
