/**
 * History and recovery on the event channels: `since` replays exactly the missed events, says
 * `recovered: false` (never a partial replay) when it cannot, survives a gateway restart, and a
 * stalled client is closed with 4000 rather than skipped. Each "nothing lost" test counts.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually, startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';
import { adminToken, channelEnv, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { connectStream, type Frame } from '../helpers/stream-client.js';

const offsets = (frames: Frame[]) => frames.filter(isEvent).map((f) => (f as any).offset as number);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const match = new RegExp(`^gateway_${name} (\\d+)`, 'm').exec(await (await fetch(`${gw.http}/metrics`)).text());
  if (!match) throw new Error(`no metric ${name}`);
  return Number(match[1]);
}

describe('since recovery', () => {
  it('replays exactly the missed events, then live ones; says recovered:false past the history and for another epoch', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_HISTORY_SIZE: '20' }) });
    const token = await adminToken();
    // A 201 means the event is in the outbox; the watcher tells when it has gone through the bus.
    const watcher = await connectChannel(gw, '/ws/sensors');
    const published = (offset: number) => watcher.next((f) => (f as any).offset === offset);
    const first = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const epoch = (first.established as any).epoch as string;
    for (let i = 1; i <= 5; i++) await rest(gw, 'POST', '/api/v1/sensores/', { tipo: `t${i}` }, token);
    await first.next((f) => (f as any).offset === 5);
    first.ws.close();
    for (let i = 6; i <= 10; i++) await rest(gw, 'POST', '/api/v1/sensores/', { tipo: `t${i}` }, token);
    await published(10);

    const back = await connectChannel(gw, `/api/v1/ws?channel=sensors&since=5&epoch=${epoch}`);
    expect(back.established).toMatchObject({ recovered: true, replayed: 5, offset: 10, epoch });
    await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't11' }, token);
    await back.next((f) => (f as any).offset === 11);
    expect(offsets(back.frames)).toEqual(range(6, 11));
    expect(back.frames.filter(isEvent).map((f) => (f as any).data.tipo)).toEqual(range(6, 11).map((i) => `t${i}`));

    // Caught up: since = head replays nothing and is still "recovered".
    const current = await connectChannel(gw, `/ws/sensors?since=11&epoch=${epoch}`);
    expect(current.established).toMatchObject({ recovered: true, replayed: 0, offset: 11 });

    for (let i = 12; i <= 40; i++) await rest(gw, 'POST', '/api/v1/sensores/', { tipo: `t${i}` }, token);
    await published(40);
    const tooOld = await connectChannel(gw, `/api/v1/ws?channel=sensors&since=3&epoch=${epoch}`);
    expect(tooOld.established).toMatchObject({ recovered: false, reason: 'history_exceeded', offset: 40 });
    const foreign = await connectChannel(gw, '/api/v1/ws?channel=sensors&since=3&epoch=ffffffffffff');
    expect(foreign.established).toMatchObject({ recovered: false, reason: 'epoch_changed', epoch });
    await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't41' }, token);
    // No partial replay: the first event either gets is the live one.
    expect(await tooOld.next(isEvent)).toMatchObject({ offset: 41 });
    expect(await foreign.next(isEvent)).toMatchObject({ offset: 41 });
    expect(tooOld.frames.filter(isEvent)).toHaveLength(1);
    await published(41);
    const stats = await rest(gw, 'GET', '/api/v1/ws/stats/sensors');
    expect(stats.body).toMatchObject({ offset: 41, history: 20, oldest_offset: 22 });
  });

  it('keeps the epoch, offsets and history across a gateway restart', async () => {
    const dataDir = tempDataDir();
    const env = channelEnv({ GATEWAY_DATA_DIR: dataDir });
    const token = await adminToken();
    const gw = await startGateway({ env });
    const client = await connectChannel(gw, '/ws/pets');
    const epoch = (client.established as any).epoch as string;
    for (let i = 1; i <= 3; i++) await rest(gw, 'POST', '/api/v1/pets/', { name: `p${i}` }, token);
    await client.next((f) => (f as any).offset === 3);
    await rest(gw, 'POST', '/api/v1/pets/', { name: 'p4' }, token);
    await client.next((f) => (f as any).offset === 4);
    expect(await gw.stop()).toBe(0);

    const again = await startGateway({ env });
    const back = await connectChannel(again, `/ws/pets?since=3&epoch=${epoch}`);
    expect(back.established).toMatchObject({ recovered: true, replayed: 1, offset: 4, epoch });
    expect(await back.next(isEvent)).toMatchObject({ offset: 4, data: { name: 'p4', pet_id: 4 } });
    await rest(again, 'POST', '/api/v1/pets/', { name: 'p5' }, token);
    expect(await back.next(isEvent)).toMatchObject({ offset: 5, data: { pet_id: 5 } });
  });
});

describe('the recovered rule: never recovered:true with a hole', () => {
  it('regression: a history row dropped by the age bound out of order (stamped while the clock was behind) is a hole at restart: since before it is recovered:false, after it a full replay', async () => {
    const dataDir = tempDataDir();
    const env = channelEnv({ GATEWAY_DATA_DIR: dataDir });
    const token = await adminToken();
    const gw = await startGateway({ env });
    const client = await connectChannel(gw, '/ws/pets');
    const epoch = (client.established as any).epoch as string;
    for (let i = 1; i <= 5; i++) await rest(gw, 'POST', '/api/v1/pets/', { name: `p${i}` }, token);
    await client.next((f) => (f as any).offset === 5);
    expect(await gw.stop()).toBe(0);
    // Row 3 was taken while the wall clock was two hours behind (then stepped forward): older than
    // GATEWAY_HISTORY_TTL_S, so the history read back at start holds 1, 2, 4, 5 under head 5.
    const history = new Database(join(dataDir, 'gateway.sqlite'));
    expect(history.prepare("UPDATE channel_log SET at = at - 7200000 WHERE channel = 'pets' AND offset = 3").run().changes).toBe(1);
    history.close();

    const again = await startGateway({ env });
    // Before the fix: recovered:true, replayed 3, the replay 2, 4, 5 (event 3 missing).
    const before = await connectChannel(again, `/ws/pets?since=1&epoch=${epoch}`);
    expect(before.established).toMatchObject({ recovered: false, reason: 'history_exceeded', offset: 5, epoch });
    const after = await connectChannel(again, `/ws/pets?since=3&epoch=${epoch}`);
    expect(after.established).toMatchObject({ recovered: true, replayed: 2, offset: 5 });
    expect(await after.next(isEvent)).toMatchObject({ offset: 4, data: { pet_id: 4 } });
    expect(await after.next(isEvent)).toMatchObject({ offset: 5, data: { pet_id: 5 } });
    expect(await metric(again, 'channel_history_holes_total')).toBeGreaterThanOrEqual(1);
    expect((await rest(again, 'GET', '/api/v1/ws/stats/pets')).body).toMatchObject({ offset: 5, oldest_offset: 4, history: 2 });
    await rest(again, 'POST', '/api/v1/pets/', { name: 'p6' }, token);
    expect(await before.next(isEvent)).toMatchObject({ offset: 6 }); // no partial replay: only the live event
    expect(before.frames.filter(isEvent)).toHaveLength(1);
  });

  it('a since ahead of this edge (another edge thread gave it) waits for the event, then recovers with nothing replayed twice', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const token = await adminToken();
    const watcher = await connectChannel(gw, '/ws/pets');
    const epoch = (watcher.established as any).epoch as string;
    await rest(gw, 'POST', '/api/v1/pets/', { name: 'p1' }, token);
    await watcher.next((f) => (f as any).offset === 1);
    // Open, with since=2 before offset 2 exists here: the answer waits for it.
    const ahead = await connectStream(gw.ws, `?since=2&epoch=${epoch}`, { path: '/ws/pets' });
    expect(await metric(gw, 'channel_recovery_waits_total')).toBe(1);
    expect(ahead.frames).toEqual([]);
    await rest(gw, 'POST', '/api/v1/pets/', { name: 'p2' }, token);
    expect(await ahead.next((f) => f.type === 'connection_established')).toMatchObject({ recovered: true, replayed: 0, offset: 2, epoch });
    await rest(gw, 'POST', '/api/v1/pets/', { name: 'p3' }, token);
    expect(await ahead.next(isEvent)).toMatchObject({ offset: 3 });
    expect(offsets(ahead.frames)).toEqual([3]); // 2 was the client's already
  });
});

describe('nothing lost', () => {
  it('a client disconnected mid-burst reconnects with since and ends with every event once, in order', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const token = await adminToken();
    const total = 300;
    const first = await connectChannel(gw, '/api/v1/ws?channel=readings');
    const epoch = (first.established as any).epoch as string;
    const writes = (async () => {
      for (let i = 1; i <= total; i++) {
        const reply = await rest(gw, 'POST', '/api/v1/lecturas/', { sensor_id: 1, valor: i }, token);
        if (reply.status !== 201) throw new Error(`write ${i}: ${reply.status}`);
      }
    })();
    await first.next((f) => (f as any).offset === 60);
    first.ws.terminate(); // cut mid-burst, without a close handshake
    const seen = first.frames.filter(isEvent);
    const last = (seen.at(-1) as any).offset as number;
    const back = await connectChannel(gw, `/api/v1/ws?channel=readings&since=${last}&epoch=${epoch}`);
    expect(back.established).toMatchObject({ recovered: true });
    await writes;
    await back.next((f) => (f as any).offset === total, 15_000);
    const all = [...seen, ...back.frames.filter(isEvent)];
    expect(all.map((f) => (f as any).offset)).toEqual(range(1, total));
    expect(all.map((f) => (f as any).data.valor)).toEqual(range(1, total));
  });

  it('a stalled client is closed with 4000, not starved or skipped, and recovers everything on reconnect', async () => {
    const gw = await startGateway({
      env: channelEnv({ GATEWAY_WS_MAX_BACKPRESSURE: '65536', GATEWAY_EVENT_MAX_BUFFER_BYTES: '1048576' }),
    });
    const token = await adminToken();
    const stalled = await connectChannel(gw, '/api/v1/ws?channel=general');
    const healthy = await connectChannel(gw, '/api/v1/ws?channel=general');
    const epoch = (stalled.established as any).epoch as string;
    (stalled.ws as any)._socket.pause(); // stop reading: once the kernel's buffers are full, the gateway's grows
    // 200 events of 40 KB: 8 MB, more than loopback socket buffers hold.
    const total = 200;
    const blob = 'x'.repeat(40_000);
    for (let i = 1; i <= total; i++) {
      const event = { type: 'entity_event', entity_type: 'blob', event_type: 'created', entity_id: i, data: { i, blob } };
      expect((await rest(gw, 'POST', '/api/v1/channels/general/events', event, token)).status).toBe(202);
    }
    await healthy.next((f) => (f as any).offset === total, 15_000);
    expect(offsets(healthy.frames)).toEqual(range(1, total));

    await eventually(
      async () => /gateway_slow_consumer_closes_total\s+[1-9]/.test(await (await fetch(`${gw.http}/metrics`)).text()),
      10_000,
      'the slow-consumer close',
    );
    (stalled.ws as any)._socket.resume();
    const closed = await stalled.closed;
    expect(closed.code).toBe(4000);
    const seen = stalled.frames.filter(isEvent);
    const seenOffsets = seen.map((f) => (f as any).offset as number);
    expect(seenOffsets).toEqual(range(1, seenOffsets.length)); // what it got, it got in order, with no hole
    expect(seenOffsets.length).toBeLessThan(total);

    const back = await connectChannel(gw, `/api/v1/ws?channel=general&since=${seenOffsets.at(-1) ?? 0}&epoch=${epoch}`);
    expect(back.established).toMatchObject({ recovered: true, replayed: total - seenOffsets.length });
    await back.next((f) => (f as any).offset === total);
    expect([...seenOffsets, ...offsets(back.frames)]).toEqual(range(1, total));
  });
});
