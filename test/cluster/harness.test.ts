/**
 * The cluster harness itself (test/helpers/cluster.ts): what the other cluster tests rely on, and
 * what works whatever the store: nodes start on one broker or two bridged ones, the bridge passes
 * messages both ways, a relay cut stops them and a restore brings them back, SIGKILL and restarts,
 * REST on a node. Channel events ride the bus, so one published on A reaches B's subscribers here
 * even before the shared store exists (its offset is the point of the other files, not of this one).
 */
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { startCluster } from '../helpers/cluster.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

/** An MQTT subscriber that keeps what it gets; `until(test)` resolves when the messages so far pass `test`. */
async function listen(url: string, filter: string) {
  const client = await connectAsync(url, { reconnectPeriod: 0 });
  const messages: { topic: string; payload: string }[] = [];
  let waiters: (() => void)[] = [];
  client.on('message', (topic, payload) => {
    messages.push({ topic, payload: payload.toString() });
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  });
  await client.subscribeAsync(filter, { qos: 1 });
  const until = (test: (m: typeof messages) => boolean, timeoutMs = 15_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${filter}: not within ${timeoutMs} ms; got ${JSON.stringify(messages)}`)), timeoutMs);
      const check = () => {
        if (test(messages)) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { client, messages, until };
}

const testEvent = (n: number) => ({ type: 'entity_event', entity_type: 'probe', event_type: 'created', entity_id: n, data: { n } });

describe('cluster harness', { timeout: 60_000 }, () => {
  it('single broker: two nodes start with the same keys; an event published on A reaches B and one on B reaches A; REST answers on each', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const [a, b] = cluster.nodes;
    expect(a.broker).toBe(b.broker);
    expect(a.dataDir).not.toBe(b.dataDir);
    expect(a.env.GATEWAY_DATABASE_URL).toBe(cluster.pg.url);
    expect((await cluster.pg.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    const token = await adminToken();
    const onA = await connectChannel(a, '/api/v1/ws?channel=general');
    const onB = await connectChannel(b, '/api/v1/ws?channel=general');
    expect((await rest(a, 'POST', '/api/v1/channels/general/events', testEvent(1), token)).status).toBe(202);
    expect(await onB.next(isEvent)).toMatchObject({ entity_id: 1 });
    expect((await rest(b, 'POST', '/api/v1/channels/general/events', testEvent(2), token)).status).toBe(202);
    expect(await onA.next((f) => isEvent(f) && (f as any).entity_id === 2)).toMatchObject({ data: { n: 2 } });
    for (const node of cluster.nodes) expect((await rest(node, 'GET', '/api/v1/ws/stats')).status).toBe(200);
  });

  it('bridged: nodes on two brokers pass events both ways; a relay cut stops the bridge (Mosquitto says so) and a restore brings it back', async () => {
    const cluster = await startCluster({ nodes: 2, brokers: 'bridged', postgres });
    const [a, b] = cluster.nodes;
    const relay = cluster.relay!;
    expect(a.broker).not.toBe(b.broker);
    expect(relay.open).toBe(1);
    const token = await adminToken();
    const onA = await connectChannel(a, '/api/v1/ws?channel=general');
    const onB = await connectChannel(b, '/api/v1/ws?channel=general');
    await rest(a, 'POST', '/api/v1/channels/general/events', testEvent(1), token);
    expect(await onB.next(isEvent)).toMatchObject({ entity_id: 1 });
    await rest(b, 'POST', '/api/v1/channels/general/events', testEvent(2), token);
    expect(await onA.next((f) => isEvent(f) && (f as any).entity_id === 2)).toBeTruthy();

    // The bridging broker (the second) publishes its bridge's state on $SYS (Mosquitto's `notifications`, on by default).
    const watcher = await listen(cluster.brokers.list[1].url, '$SYS/broker/connection/+/state');
    const state = (value: string) => watcher.until((m) => m.at(-1)?.payload === value);
    await state('1');
    relay.cut();
    expect(relay.open).toBe(0);
    await state('0');
    // Across the cut, nothing: a subscriber on the first broker misses what is published on the
    // second, while a marker on its own broker arrives (the bridge keeps its session: cleansession false).
    const far = await listen(cluster.brokers.list[0].url, 'gateway-test/cut/#');
    const near = await connectAsync(cluster.brokers.list[1].url, { reconnectPeriod: 0 });
    await near.publishAsync('gateway-test/cut/during', 'x', { qos: 1 });
    await far.client.publishAsync('gateway-test/cut/marker', 'x', { qos: 1 });
    await far.until((m) => m.some((x) => x.topic === 'gateway-test/cut/marker'));
    expect(far.messages.map((m) => m.topic)).toEqual(['gateway-test/cut/marker']);
    relay.restore();
    await state('1');
    await cluster.brokers.waitBridged();
    // Queued for the bridge's session, delivered after the restore.
    await far.until((m) => m.some((x) => x.topic === 'gateway-test/cut/during'));
    await Promise.all([watcher.client, far.client, near].map((c) => c.endAsync(true)));
  });

  it('kill(i) is a SIGKILL, restart(i) brings the node back on its data directory, addNode() adds one; REST works on each', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const token = await adminToken();
    const [a] = cluster.nodes;
    const before = a.process;
    await cluster.kill(0);
    expect(before.child.signalCode).toBe('SIGKILL');
    expect(a.alive).toBe(false);
    await cluster.restart(0);
    expect(a.alive).toBe(true);
    expect(a.process).not.toBe(before);
    expect((await rest(a, 'GET', '/api/v1/sensores/', undefined, token)).status).toBe(200);
    const c = await cluster.addNode();
    expect(c.name).toBe('C');
    expect(cluster.nodes).toHaveLength(3);
    const created = await rest(c, 'POST', '/api/v1/sensores/', { tipo: 'harness' }, token);
    expect(created.status).toBe(201);
    await cluster.restart(1); // running: SIGTERM, then started again
    expect((await rest(cluster.nodes[1], 'GET', '/readyz')).status).toBe(200);
  });
});
