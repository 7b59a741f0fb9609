/**
 * Issue 17 item 2 (docs/design/cluster-presence.md §2): a reliable Azure session resumes on another
 * node with nothing lost and the same connection id. The official @azure/web-pubsub-client
 * (json.reliable.webpubsub.azure.v1) reaches node A through a test-owned TCP relay (a load
 * balancer), joins a group; the relay drops it and points to B; while it is away and after, the
 * service clients on A and on B send to the group, to the user and to the connection. The client
 * gets every message once, each node's in the order it sent them (two publishers have no order
 * between them, least of all over a bridge), with no new connection, and the connection is on B
 * for both nodes (and for a third, on one broker). On one broker and on two bridged brokers. A
 * resume to B after A was SIGKILLed starts a new connection.
 */
import type { WebPubSubClient } from '@azure/web-pubsub-client';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { collect, serviceClient, startClient } from '../helpers/azure.js';
import { rest } from '../helpers/channels.js';
import { metric, OPERATOR_TOKEN, startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/gateway-process.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { connectPublisher } from '../helpers/publisher.js';
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js';

const ENV = { GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS: '1000', GATEWAY_AZURE_PRESENCE_TTL_MS: '3000' };
const ROLES = ['webpubsub.joinLeaveGroup', 'webpubsub.sendToGroup'];

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

interface Moved {
  client: WebPubSubClient;
  id: string;
  relay: TcpRelay;
  /** `connected` (but the first, which the SDK may emit after start resolved) and `disconnected` events. */
  events: string[];
}

/** The official client of `userId` on node 0, through a relay; the group `room` joined. */
async function clientOnA(cluster: Cluster, userId: string): Promise<Moved & { inbox: ReturnType<typeof collect> }> {
  const [a, b] = cluster.nodes;
  const relay = await startTcpRelay(a.port);
  onTestFinished(() => relay.close());
  const svcA = serviceClient(a, 'chat');
  const client = await startClient(async () => (await svcA.getClientAccessToken({ userId, roles: ROLES })).url.replace(`:${a.port}/`, `:${relay.port}/`));
  const events: string[] = [];
  const inbox = collect(client);
  const id = await eventually(async () => (client as any)._connectionId as string | undefined, 10_000, 'the connected message');
  let first = true;
  client.on('connected', (e) => {
    if (first && e.connectionId === id) first = false;
    else events.push(`connected ${e.connectionId}`);
  });
  client.on('disconnected', () => events.push('disconnected'));
  await client.joinGroup('room');
  const svcB = serviceClient(b, 'chat');
  await eventually(async () => (await svcB.connectionExists(id)) && (await svcB.groupExists('room')), 10_000, "B sees A's connection in its group");
  return { client, id, relay, events, inbox };
}

async function resumesOnB(brokers: 'single' | 'bridged'): Promise<void> {
  // on one broker a third node C, which hears A's `close` and B's `open` of the moved connection
  const cluster = await startCluster({ nodes: brokers === 'single' ? 3 : 2, postgres, brokers, env: ENV });
  const [a, b, c] = cluster.nodes;
  const svc = [serviceClient(a, 'chat'), serviceClient(b, 'chat')];
  const others = c === undefined ? [] : [serviceClient(c, 'chat')];
  const { id, relay, events, inbox } = await clientOnA(cluster, 'rosa');

  let n = 0;
  /** Message n from node n % 2, to the group, the user or the connection in turn. */
  const send = async () => {
    n++;
    const s = svc[n % 2];
    const body = { n };
    if (n % 3 === 0) await s.group('room').sendToAll(body);
    else if (n % 3 === 1) await s.sendToUser('rosa', body);
    else await s.sendToConnection(id, body);
  };
  for (let i = 0; i < 6; i++) await send();
  await inbox.until(6);

  // Messages flow all along: while the client is away (the SDK waits about a second), as the
  // session crosses (B holds, A catches up), and after.
  let moving = true;
  const sending = (async () => {
    while (moving) await send();
    for (let i = 0; i < 10; i++) await send();
  })();
  relay.retarget(b.port);
  relay.drop(); // the balancer's connection to A is gone; the SDK resumes through it, now to B
  await eventually(async () => (await metric(b, 'azure_remote_handovers_total')) === 1, 15_000, 'the session handed over to B');
  moving = false;
  await sending;
  const replay = await b.waitForLog((l) => l.msg === 'azure session from another node: held commands replayed');
  // what B held while the session crossed: replayed (A had not applied it) or dropped (A had)
  expect(replay).toMatchObject({ replayed: expect.any(Number), dropped: expect.any(Number) });
  const total = n;
  const got = (await inbox.until(total, 20_000)).map((m) => m.data.n as number);

  // every message once, each node's in its order
  expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  for (const parity of [0, 1]) {
    const mine = got.filter((x) => x % 2 === parity);
    expect(mine).toEqual([...mine].sort((x, y) => x - y));
  }
  // a marker: nothing arrives twice behind the rest
  await svc[0].sendToConnection(id, { n: 'end' });
  await inbox.until(total + 1);
  expect(inbox.messages).toHaveLength(total + 1);

  // the same connection, never a new one; on B now, for both nodes
  expect(events).toEqual([]);
  expect(await svc[0].connectionExists(id)).toBe(true);
  expect(await svc[1].connectionExists(id)).toBe(true);
  expect(await svc[1].groupExists('room')).toBe(true);
  for (const s of others) await eventually(() => s.connectionExists(id), 5000, 'C sees the connection');
  expect(await metric(a, 'azure_remote_handovers_served_total')).toBe(1);
  expect(await metric(a, 'azure_connections')).toBe(0);
  expect(await metric(b, 'azure_connections')).toBe(1);
  expect(await metric(b, 'azure_remote_handover_failures_total')).toBe(0);
  expect(await metric(a, 'azure_handover_catchup_timeouts_total')).toBe(0);
  // past A's presence snapshot and B's: still there, on B
  await new Promise((r) => setTimeout(r, 1500)); // a real wait: a stale entry would show only after a snapshot
  for (const s of [...svc, ...others]) expect(await s.connectionExists(id)).toBe(true);

  // hostile input on B's handover topic: untagged, malformed, a forged ask for the moved session
  // with a wrong token, an answer to nothing; dropped or refused, counted, B unharmed
  const idB = (await rest(b, 'GET', '/api/v1/cluster', undefined, OPERATOR_TOKEN)).body.node as string;
  expect(idB).toEqual(expect.any(String));
  const topic = `gateway/azure-presence/handover/${idB}`;
  const bus = await connectPublisher(b.broker.url);
  onTestFinished(() => bus.client.endAsync());
  const unauthenticated = await metric(b, 'control_unauthenticated_total');
  await bus.raw(topic, '{"v":1,"kind":"ask"}');
  await bus.control(topic, 'not json');
  const forged = { v: 1, kind: 'ask', from: 'X', ref: 'r1', hub: 'chat', connectionId: id, reconnectionToken: 'wrong', positions: [] };
  await bus.control(topic, JSON.stringify(forged));
  await bus.control(topic, '{"v":1,"kind":"state","from":"X","ref":"nothing","positions":[],"session":null}');
  await eventually(async () => (await metric(b, 'control_unauthenticated_total')) === unauthenticated + 1, 5000, 'the untagged one refused');
  await eventually(async () => (await metric(b, 'azure_remote_handover_rejected_total')) === 1, 5000, 'the malformed one dropped');
  await svc[1].sendToConnection(id, { n: 'still' });
  await inbox.until(total + 2);
  expect(b.alive).toBe(true);
  expect(await metric(b, 'azure_remote_handovers_served_total')).toBe(0);
  expect(await metric(b, 'azure_connections')).toBe(1);
  expect(events).toEqual([]);
}

describe('Azure reliable sessions resume on another node', { timeout: 40_000 }, () => {
  it('one broker: nothing lost, nothing twice, the same connection id', () => resumesOnB('single'));

  it('two bridged brokers: nothing lost, nothing twice, the same connection id', () => resumesOnB('bridged'));

  it('after A was SIGKILLed, a resume on B starts a new connection', async () => {
    const cluster = await startCluster({ nodes: 2, postgres, env: ENV });
    const [, b] = cluster.nodes;
    const { id, relay, events, inbox } = await clientOnA(cluster, 'tomas');
    relay.retarget(b.port);
    await cluster.kill(0);
    await eventually(async () => events.some((e) => e.startsWith('connected ')), 20_000, 'a new connection on B');
    const newId = events.find((e) => e.startsWith('connected '))!.slice('connected '.length);
    expect(newId).not.toBe(id);
    expect(events[0]).toBe('disconnected');
    const svcB = serviceClient(b, 'chat');
    await svcB.sendToConnection(newId, { n: 1 });
    expect((await inbox.until(1))[0].data).toEqual({ n: 1 });
    // each resume asked dead A and gave up (or came after A's connections expired from B's directory: none asked)
    expect(await metric(b, 'azure_remote_handover_failures_total')).toBe(await metric(b, 'azure_remote_handovers_asked_total'));
    expect(await metric(b, 'azure_remote_handovers_total')).toBe(0);
  });
});
