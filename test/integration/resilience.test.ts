/**
 * Slow consumers and broker restarts: a stalled client is conflated (then closed past the hard
 * limit) while a fast client keeps every message; a broker restart resumes the stream by itself.
 */
import { describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { eventually, startGateway } from '../helpers/gateway-process.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';
import { startFastReader } from '../helpers/fast-reader.js';

const PAD = 'p'.repeat(8000); // 8 KB positions fill socket buffers quickly

describe('slow consumers', () => {
  it('conflates a stalled client to the latest position while a fast client receives every message', async () => {
    const gw = await startGateway({ env: { GATEWAY_WS_MAX_BACKPRESSURE: '262144', GATEWAY_SLOW_CONSUMER_TIMEOUT_MS: '60000' } });
    const total = 3000; // ~24 MB: more than the kernel's loopback buffers hold
    const fast = startFastReader(`${gw.ws}/api/v1/stream?device_ids=C1`, total);
    const slow = await connectStream(gw.ws, '?device_ids=C1');
    await fast.ready;
    await slow.next((f) => f.event === 'subscribed');
    (slow.ws as unknown as { _socket: Socket })._socket.pause();

    const pub = await connectPublisher(gw.mqttUrl);
    for (let i = 1; i <= total; i++) await pub.position('C1', { SEQ: i, PAD });
    const seqs = await fast.done;
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));

    await eventually(async () => (await gw.stats()).conflations_total >= 1, 10_000, 'a conflation');
    (slow.ws as unknown as { _socket: Socket })._socket.resume();
    // After draining, the stalled client gets the latest position.
    await slow.next((f) => f.event === 'message' && f.data.data.SEQ === total, 30_000);
    const slowSeqs = slow.frames.filter(isMessage()).map((f) => f.data.data.SEQ as number);
    expect(slowSeqs.length).toBeLessThan(total);
    // Positions never go backwards, even across the conflation.
    for (let i = 1; i < slowSeqs.length; i++) expect(slowSeqs[i]).toBeGreaterThanOrEqual(slowSeqs[i - 1]);
    const stats = await gw.stats();
    expect(stats.drops_total).toBeGreaterThan(0);
    expect(stats.slow_consumer_closes_total).toBe(0);
  });

  it("conflates a stalled device_ids=*&batch=1 client to each device's latest position, and counts what it skipped", async () => {
    const gw = await startGateway({ env: { GATEWAY_WS_MAX_BACKPRESSURE: '262144', GATEWAY_SLOW_CONSUMER_TIMEOUT_MS: '60000' } });
    const total = 3000;
    const devices = ['M1', 'M2', 'M3', 'M4'];
    const fast = startFastReader(`${gw.ws}/api/v1/stream?device_ids=${devices[0]}`, total); // M1 has the last SEQ
    const slow = await connectStream(gw.ws, '?device_ids=*&batch=1');
    await fast.ready;
    await slow.next((f) => f.event === 'subscribed');
    (slow.ws as unknown as { _socket: Socket })._socket.pause();
    const pub = await connectPublisher(gw.mqttUrl);
    for (let i = 1; i <= total; i++) await pub.position(devices[i % devices.length], { SEQ: i, PAD });
    await fast.done;
    await eventually(async () => (await gw.stats()).conflations_total >= 1, 10_000, 'a conflation');
    (slow.ws as unknown as { _socket: Socket })._socket.resume();
    // After draining: every device's last position arrives (in a batch), none goes backwards.
    const last = (id: string) => Math.max(...Array.from({ length: total }, (_, k) => k + 1).filter((i) => devices[i % devices.length] === id));
    const seen = () =>
      slow.frames
        .filter((f) => f.event === 'batch')
        .flatMap((f) => f.data)
        .map((m: any) => m.data.data);
    await eventually(
      async () => devices.every((id) => seen().some((d: any) => d.DEVICE_ID === id && d.SEQ === last(id))),
      30_000,
      "every device's latest position",
    );
    for (const id of devices) {
      const seqs = seen()
        .filter((d: any) => d.DEVICE_ID === id)
        .map((d: any) => d.SEQ as number);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
    }
    expect(seen().length).toBeLessThan(total);
    expect((await gw.stats()).drops_total).toBeGreaterThan(0);
  });

  it('closes a client that stays stalled past the hard limit with 4000, and keeps serving the others', async () => {
    const gw = await startGateway({ env: { GATEWAY_WS_MAX_BACKPRESSURE: '65536', GATEWAY_SLOW_CONSUMER_TIMEOUT_MS: '300' } });
    const fast = await connectStream(gw.ws, '?device_ids=H1');
    const slow = await connectStream(gw.ws, '?device_ids=H1');
    await fast.next((f) => f.event === 'subscribed');
    await slow.next((f) => f.event === 'subscribed');
    const socket = (slow.ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const pub = await connectPublisher(gw.mqttUrl);
    let i = 0;
    while ((await gw.stats()).slow_consumer_closes_total === 0) {
      for (let k = 0; k < 50; k++) await pub.position('H1', { SEQ: ++i, PAD });
      if (i > 20_000) throw new Error('the stalled client was never closed');
    }
    socket.resume();
    expect((await slow.closed).code).toBe(4000);
    await pub.position('H1', { SEQ: ++i });
    await fast.next((f) => f.event === 'message' && f.data.data.SEQ === i, 30_000);
  });
});

describe('broker restart', () => {
  it('resumes the stream by itself after Mosquitto restarts, and readiness follows the connection', async () => {
    const mosquitto = await startMosquitto();
    const gw = await startGateway({ env: { MQTT_URL: mosquitto.url, GATEWAY_MQTT_RECONNECT_MIN_MS: '50', GATEWAY_MQTT_RECONNECT_MAX_MS: '500' } });
    const client = await connectStream(gw.ws, '?device_ids=R1');
    await client.next((f) => f.event === 'subscribed');
    const before = await connectPublisher(mosquitto.url);
    await before.position('R1', { PHASE: 'before' });
    await client.next(isMessage('R1'));

    await mosquitto.stop();
    await gw.waitForLog((l) => l.msg === 'mqtt disconnected; reconnecting');
    expect((await fetch(`${gw.http}/readyz`)).status).toBe(503);
    const subscribedAgain = gw.logs.filter((l) => l.msg === 'mqtt subscribed').length + 1;
    await mosquitto.start();
    await eventually(async () => gw.logs.filter((l) => l.msg === 'mqtt subscribed').length >= subscribedAgain, 15_000, 'resubscribe');

    const after = await connectPublisher(mosquitto.url);
    await after.position('R1', { PHASE: 'after' });
    expect((await client.next(isMessage('R1'), 10_000)).data.data.PHASE).toBe('after');
    expect((await fetch(`${gw.http}/readyz`)).status).toBe(200);
    const stats = await gw.stats();
    expect(stats.mqtt.reconnects_total).toBeGreaterThanOrEqual(1);
    expect(stats.mqtt.connected).toBe(true);
  });
});

describe('a port already in use', () => {
  it('stops the start at once with the reason, instead of waiting on the thread that could not listen', async () => {
    const first = await startGateway();
    const failure = await startGateway({ env: { PORT: String(first.port) } }).then(
      () => null,
      (err: Error) => err.message,
    );
    expect(failure).toMatch(/edge 0 could not listen on 127\.0\.0\.1:\d+/);
    expect(failure).not.toMatch(/did not close in time/); // its thread closed when asked, it was not killed at the deadline
    expect((await fetch(`${first.http}/healthz`)).status).toBe(200); // the first one is untouched
  });
});
