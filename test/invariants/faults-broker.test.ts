/**
 * Fault scenarios on the bus and the clients, against the real gateway and a real Mosquitto:
 * the broker restarted three times during a burst of REST writes, and hundreds of clients cut
 * mid-stream (after the handshake, inside an upgrade request, inside a frame) while others keep
 * receiving. Each asserts nothing lost, nothing duplicated, and counters equal to what the
 * clients saw. (One restart with one client: integration/entity-nothing-lost.test.ts.)
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { connectAsync } from 'mqtt';
import { eventually, startGateway } from '../helpers/gateway-process.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { adminToken, channelEnv } from '../helpers/channels.js';
import { mintJwt } from '../helpers/tokens.js';
import { Bystander } from './bystander.js';
import { duplicates, isEvent, metrics, offsetsOf, range, startWriters } from './fault-helpers.js';
import { Rng } from './prng.js';
import { encodeFrame, OP } from '../helpers/raw-ws.js';

const established = (f: any) => f?.type === 'connection_established';

describe('broker restarts during a burst of REST writes', () => {
  it('every acknowledged write reaches every subscriber once, in offset order, through three Mosquitto restarts; a client cut in an outage recovers the rest with since; counters exact', async () => {
    const mosquitto = await startMosquitto();
    const gw = await startGateway({
      env: channelEnv({ MQTT_URL: mosquitto.url, GATEWAY_MQTT_RECONNECT_MIN_MS: '50', GATEWAY_MQTT_RECONNECT_MAX_MS: '300', GATEWAY_OUTBOX_LEASE_MS: '300' }),
    });
    const token = await adminToken();
    const json = await Bystander.open('json subscriber', `${gw.ws}/api/v1/ws?channel=readings`, 'json', established);
    const msgpack = await Bystander.open('msgpack subscriber', `${gw.ws}/ws/readings`, 'msgpack', established);
    const user = await Bystander.open(
      '/ws/connect user',
      `${gw.ws}/ws/connect?token=${await mintJwt('u-restarts', { roles: ['admin'] })}`,
      'json',
      established,
    );
    const cut = await Bystander.open('subscriber cut during an outage', `${gw.ws}/api/v1/ws?channel=readings`, 'json', established);
    const epoch = json.frames[0].epoch as string;

    const total = 600;
    let inFlightAtCut = 0;
    const writes = startWriters(() => gw.http, token, { writers: 6, total });
    for (let outage = 1; outage <= 3; outage++) {
      await json.waitFor((f) => isEvent(f) && f.offset >= outage * 120, 20_000);
      await mosquitto.stop(); // mid-burst: rows in flight, the rest piling up in the outbox
      const before = writes.acked.length;
      if (outage === 2) {
        // Cut it once it has what the others have. Writes go on during the outage and still reach
        // the sockets without the bus (delivered on this node at once, or read from the log).
        await eventually(async () => offsetsOf(cut).at(-1) === offsetsOf(json).at(-1), 5000, 'the cut client caught up');
        const caughtUp = offsetsOf(json).at(-1) ?? 0;
        cut.ws.terminate();
        // Once the gateway has seen the cut, nothing more is handed to that socket: deliveries stay countable.
        await eventually(async () => (await metrics(gw)).gateway_channel_connections === 2, 10_000, 'the cut noticed');
        // What reached the cut socket before the gateway noticed (handed to uWS, counted, never read
        // by the client) has an offset of a write committed by then: at most the writes answered so
        // far and the 6 still waiting for their answer (an event can reach the sockets before the
        // writer reads its 201).
        inFlightAtCut = Math.max(0, writes.acked.length + 6 - caughtUp);
      }
      await eventually(async () => writes.acked.length >= Math.min(total, before + 40), 15_000, `writes during outage ${outage}`);
      await mosquitto.start();
    }
    await writes.done;
    expect(writes.refused).toEqual([]);
    expect(writes.unknown).toBe(0);
    expect(writes.acked).toHaveLength(total);

    const seenByCut = offsetsOf(cut);
    const back = await Bystander.open(
      'the cut subscriber, back',
      `${gw.ws}/api/v1/ws?channel=readings&since=${seenByCut.at(-1) ?? 0}&epoch=${epoch}`,
      'json',
      established,
    );
    expect(back.frames[0]).toMatchObject({ recovered: true });
    for (const b of [json, msgpack, back]) expect(await b.waitFor((f) => isEvent(f) && f.offset === total, 30_000), b.name).toBe(true);
    expect(await user.waitFor((f) => isEvent(f) && f.offset === total, 10_000)).toBe(true);

    for (const b of [json, msgpack, user]) {
      expect(offsetsOf(b), b.name).toEqual(range(1, total));
      expect(b.violations(), b.name).toEqual([]);
    }
    // Entity ids are given in the write's transaction, like the outbox row: offset order is id order.
    expect(json.frames.filter(isEvent).map((f) => f.entity_id)).toEqual(range(1, total));
    expect([...writes.acked].sort((a, b) => a - b)).toEqual(range(1, total));
    expect([...seenByCut, ...offsetsOf(back)]).toEqual(range(1, total));

    const m = await metrics(gw);
    expect.soft(m.gateway_events_published_total, 'events_published_total').toBe(total);
    expect(m.gateway_mqtt_reconnects_total).toBeGreaterThanOrEqual(3);
    // Every event frame handed to a socket (channel routes and /ws/connect), replays included, is one the clients above received.
    const received = [json, msgpack, user, back].reduce((n, b) => n + b.frames.filter(isEvent).length, seenByCut.length);
    expect.soft(m.gateway_channel_deliveries_total, 'channel_deliveries_total').toBeGreaterThanOrEqual(received);
    expect.soft(m.gateway_channel_deliveries_total, 'channel_deliveries_total').toBeLessThanOrEqual(received + inFlightAtCut);
    // total_messages_sent (docs/compat/user-hub.md) counts every frame delivered to /ws/connect sockets: the
    // events, and connection_established and any heartbeat or reply.
    expect.soft(m.gateway_user_messages_sent_total, 'user_messages_sent_total').toBe(user.frames.length);
    await eventually(async () => (await metrics(gw)).gateway_outbox_pending === 0, 15_000, 'an empty outbox');
  }, 90_000);
});

describe('client cuts', () => {
  it('200 clients cut mid-stream, 50 inside an upgrade and 50 inside a frame leave the others every event and position once, in order; the gauges come back exact', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_CONNECT_RATE_PER_IP: '100000', GATEWAY_CONNECT_BURST_PER_IP: '100000' }) });
    const token = await adminToken();
    const rng = new Rng(13);
    const events = 300;
    const positions = 300;
    const keepers = [
      ...(await Promise.all([0, 1, 2].map((i) => Bystander.open(`channel keeper ${i}`, `${gw.ws}/ws/general`, i % 2 === 0 ? 'json' : 'msgpack', established)))),
      ...(await Promise.all(
        [0, 1, 2].map((i) =>
          Bystander.open(`stream keeper ${i}`, `${gw.ws}/api/v1/stream?device_ids=CUT-1`, i % 2 === 0 ? 'json' : 'msgpack', (f) => f?.event === 'subscribed'),
        ),
      )),
    ];
    // Each cut client drops its TCP connection (no close frame) after a seeded number of frames.
    const cutters: Bystander[] = [];
    for (let i = 0; i < 100; i++) {
      cutters.push(await Bystander.open(`channel cutter ${i}`, `${gw.ws}/ws/general`, i % 2 === 0 ? 'json' : 'msgpack', established));
      cutters.push(
        await Bystander.open(
          `stream cutter ${i}`,
          `${gw.ws}/api/v1/stream?device_ids=CUT-1`,
          i % 2 === 0 ? 'json' : 'msgpack',
          (f) => f?.event === 'subscribed',
        ),
      );
    }
    const cutAt = cutters.map(() => rng.int(1, 250));
    const watchers = cutters.map((b, i) => b.waitFor((f) => (isEvent(f) || f?.event === 'message') && --cutAt[i] <= 0, 60_000).then(() => b.ws.terminate()));

    const bus = await connectAsync(gw.mqttUrl, { reconnectPeriod: 0 });
    const burst = (async () => {
      for (let i = 1; i <= Math.max(events, positions); i++) {
        if (i <= positions) await bus.publishAsync('gps/CUT-1', JSON.stringify({ DEVICE_ID: 'CUT-1', SEQ: i }));
        if (i <= events) {
          const res = await fetch(`${gw.http}/api/v1/channels/general/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ type: 'realtime_update', entity_type: 'cuts', action: 'created', data: { i } }),
          });
          if (res.status !== 202) throw new Error(`publish ${i}: ${res.status}`);
        }
      }
    })();
    // Cuts inside the handshake and inside a frame, while the burst runs.
    const raw = Array.from(
      { length: 100 },
      (_, i) =>
        new Promise<void>((resolve) => {
          const s = connect(gw.port, '127.0.0.1', () => {
            const upgrade = `GET /ws/general HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
            if (i < 50) {
              s.end(upgrade.slice(0, rng.int(5, upgrade.length - 5)));
              s.destroy();
              resolve();
              return;
            }
            s.write(upgrade);
            s.once('data', () => {
              const frame = encodeFrame(OP.text, Buffer.from('{"type":"ping","pad":"' + 'x'.repeat(2000) + '"}'));
              s.write(frame.subarray(0, rng.int(2, frame.length - 1)));
              s.destroy();
              resolve();
            });
          });
          s.on('error', () => resolve());
        }),
    );
    await Promise.all([burst, ...raw]);
    await bus.endAsync();
    await Promise.all(watchers);

    for (const k of keepers) {
      const last = k.name.startsWith('channel')
        ? (f: any) => isEvent(f) && f.offset === events
        : (f: any) => f?.event === 'message' && f.data.data.SEQ === positions;
      expect(await k.waitFor(last, 20_000), k.name).toBe(true);
      if (k.name.startsWith('channel')) expect(offsetsOf(k), k.name).toEqual(range(1, events));
      else
        expect(
          k.frames.filter((f) => f?.event === 'message').map((f) => f.data.data.SEQ),
          k.name,
        ).toEqual(range(1, positions));
      expect(k.violations(), k.name).toEqual([]);
    }
    // What each cut client got before the cut, it got in order, without a hole or a copy.
    for (const c of cutters) {
      const seen = c.name.startsWith('channel') ? offsetsOf(c) : c.frames.filter((f) => f?.event === 'message').map((f) => f.data.data.SEQ as number);
      expect(seen, c.name).toEqual(range(1, seen.length));
      expect(duplicates(seen)).toEqual([]);
    }
    await eventually(
      async () => {
        const m = await metrics(gw);
        return m.gateway_channel_connections === 3 && m.gateway_connections === 3;
      },
      10_000,
      'the gauges back to the keepers',
    );
    expect((await fetch(`${gw.http}/readyz`)).status).toBe(200);
  }, 90_000);
});
