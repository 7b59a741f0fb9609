/**
 * Issue 16, bullet 3 (docs/design/cluster-store.md §2.6, §6.1): `since`/`epoch` recovery works on
 * any node. A client that followed on A and comes back on B gets exactly the events it missed, in
 * order, `recovered:true`; the SDK's ChannelClient behind a load balancer that moves it between
 * nodes resumes with nothing to change in the client; a `since` ahead of B's head waits for B and
 * recovers; past the log's size it is `recovered:false`, never a partial replay.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ChannelClient, type Connected } from '../../src/client/index.js';
import { adminToken, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { events, expectConsecutive, startCluster, startWriters } from '../helpers/cluster.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { connectStream } from '../helpers/stream-client.js';
import { startTcpRelay } from '../helpers/tcp-relay.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const offsetIs = (n: number) => (f: any) => isEvent(f) && f.offset === n;

describe('a client moved from A to B', { timeout: 60_000 }, () => {
  it('reconnecting to B with since/epoch gets exactly the missed events, in order, recovered:true; past the log, recovered:false', async () => {
    const cluster = await startCluster({ nodes: 2, postgres, env: { GATEWAY_HISTORY_SIZE: '20' } });
    const [a, b] = cluster.nodes;
    const token = await adminToken();
    const watcherB = await connectChannel(b, '/api/v1/ws?channel=sensors');
    const first = await connectChannel(a, '/api/v1/ws?channel=sensors');
    const epoch = (first.established as any).epoch as string;
    for (let i = 1; i <= 5; i++) expect((await rest(i % 2 ? a : b, 'POST', '/api/v1/sensores/', { tipo: `t${i}` }, token)).status).toBe(201);
    await first.next(offsetIs(5));
    first.ws.close();
    for (let i = 6; i <= 10; i++) expect((await rest(i % 2 ? a : b, 'POST', '/api/v1/sensores/', { tipo: `t${i}` }, token)).status).toBe(201);
    await watcherB.next(offsetIs(10));

    const back = await connectChannel(b, `/api/v1/ws?channel=sensors&since=5&epoch=${epoch}`);
    expect(back.established).toMatchObject({ recovered: true, replayed: 5, offset: 10, epoch });
    await rest(a, 'POST', '/api/v1/sensores/', { tipo: 't11' }, token); // live, from the other node
    await back.next(offsetIs(11));
    expect(events(back).map((f) => f.offset)).toEqual(range(6, 11));
    expect(events(back).map((f) => f.data.tipo)).toEqual(range(6, 11).map((i) => `t${i}`));
    expect(events(first).map((f) => f.data.tipo)).toEqual(range(1, 5).map((i) => `t${i}`));

    // 30 more: offset 1 has left every node's history of 20.
    for (let i = 12; i <= 41; i++) await rest(i % 2 ? a : b, 'POST', '/api/v1/sensores/', { tipo: `t${i}` }, token);
    await watcherB.next(offsetIs(41));
    const tooOld = await connectChannel(b, `/api/v1/ws?channel=sensors&since=1&epoch=${epoch}`);
    expect(tooOld.established).toMatchObject({ recovered: false, reason: 'history_exceeded', offset: 41, epoch });
    await rest(a, 'POST', '/api/v1/sensores/', { tipo: 't42' }, token);
    expect(await tooOld.next(isEvent)).toMatchObject({ offset: 42 }); // no partial replay
    expect(events(tooOld)).toHaveLength(1);
  });

  it('a since ahead of B (B off the bus) waits for B to catch up from the store, then recovers', async () => {
    const cluster = await startCluster({ nodes: 2, postgres, mqttRelay: true });
    const [a, b] = cluster.nodes;
    const token = await adminToken();
    const onA = await connectChannel(a, '/ws/pets');
    const epoch = (onA.established as any).epoch as string;
    await rest(a, 'POST', '/api/v1/pets/', { name: 'p1' }, token);
    await onA.next(offsetIs(1));
    b.mqttRelay!.cut(); // B hears nothing more from the bus: only the store can tell it about 2 and 3
    for (const name of ['p2', 'p3']) expect((await rest(a, 'POST', '/api/v1/pets/', { name }, token)).status).toBe(201);
    await onA.next(offsetIs(3));
    const moved = await connectStream(b.ws, `?since=2&epoch=${epoch}`, { path: '/ws/pets' });
    expect(await moved.next((f) => f.type === 'connection_established', 10_000)).toMatchObject({ recovered: true, replayed: 1, offset: 3, epoch });
    expect(await moved.next(isEvent)).toMatchObject({ offset: 3, data: { name: 'p3' } });
    b.mqttRelay!.restore();
    await rest(a, 'POST', '/api/v1/pets/', { name: 'p4' }, token);
    expect(await moved.next(isEvent, 10_000)).toMatchObject({ offset: 4, data: { name: 'p4' } });
    expect(events(moved).map((f) => f.offset)).toEqual([3, 4]);
  });
});

describe('the SDK behind a load balancer that moves it between nodes', { timeout: 60_000 }, () => {
  it('ChannelClient resumes A → B → A with since/epoch during writes on both nodes: every 2xx write once, in order, each move recovered:true', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const [a, b] = cluster.nodes;
    const token = await adminToken();
    const balancer = await startTcpRelay(a.port);
    const client = new ChannelClient({
      url: `ws://${balancer.address}`,
      channel: 'readings',
      token,
      WebSocket: WebSocket as never,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    });
    onTestFinished(() => client.stop());
    const got: any[] = [];
    const connected: Connected[] = [];
    let wake: () => void = () => undefined;
    client.on('event', (f) => {
      got.push(f);
      wake();
    });
    client.on('connected', (c) => {
      connected.push(c);
      wake();
    });
    const until = (test: () => boolean, what: string, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${what}: not within ${timeoutMs} ms (${got.length} events, connected ${JSON.stringify(connected)})`)),
          timeoutMs,
        );
        const check = () => {
          if (test()) {
            clearTimeout(timer);
            resolve();
          } else wake = check;
        };
        check();
      });
    await client.start();
    await until(() => connected.length === 1, 'the first connect');

    const writers = cluster.nodes.map((node) =>
      startWriters(node, '/api/v1/lecturas/', { count: 150, concurrency: 2, token, body: (n) => ({ sensor_id: node.index + 1, valor: n }) }),
    );
    for (const [i, next] of [b, a].entries()) {
      await until(() => got.length >= 40 * (i + 1), `events before move ${i + 1}`);
      balancer.retarget(next.port);
      balancer.drop(); // the balancer's connection to the node is gone; the SDK reconnects through it, to the other node
      await until(() => connected.length === i + 2, `the reconnect of move ${i + 1}`);
      expect(connected[i + 1]).toMatchObject({ recovered: true, epoch: connected[0].epoch });
    }
    await Promise.all(writers.map((w) => w.done));
    for (const w of writers) expect(w.errors).toEqual([]);
    const ids = writers.flatMap((w) => w.ok.map((r) => r.id as number));
    await until(() => ids.every((id) => got.some((f) => f.entity_id === id)), 'every write at the client', 30_000);
    expect(new Set(got.map((f) => f.entity_id)).size).toBe(got.length); // once each
    expect(got.map((f) => f.offset)).toEqual(range(1, ids.length));
    expectConsecutive(got, 'the SDK client');
    expect(client.position).toEqual({ offset: ids.length, epoch: connected[0].epoch });
  });
});
