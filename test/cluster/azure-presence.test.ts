/**
 * Issue 17 item 1 (docs/design/cluster-presence.md §1): Azure presence across the cluster. Two
 * nodes on one Mosquitto, the official SDKs: the service client on A, Web PubSub clients on A and B.
 * A answers the existence checks for B's connection, user and group, adds B's connection to a group
 * (a group send then reaches it on B), removes it, lists it, closes it, adds a user of B to a
 * group, removes it from all, closes a group's connections, and closes a user's connections on both
 * nodes. SIGKILL of B: A answers false for B's connection within the TTL and a
 * snapshot period, logs the expiry, and B's entries do not come back. The presence timings are
 * shortened (snapshot 1 s, TTL 3 s) to keep the file short.
 */
import type { WebPubSubClient } from '@azure/web-pubsub-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, serviceClient, startClient } from '../helpers/azure.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, type GatewayProcess } from '../helpers/gateway-process.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

const SNAPSHOT_MS = 1000;
const TTL_MS = 3000;
const ENV = { GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS: String(SNAPSHOT_MS), GATEWAY_AZURE_PRESENCE_TTL_MS: String(TTL_MS) };
const ROLES = ['webpubsub.joinLeaveGroup', 'webpubsub.sendToGroup'];

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

/** A client of `userId` connected to `gw` (its URL from that node's own service client). */
async function clientOn(gw: GatewayProcess, userId: string): Promise<{ client: WebPubSubClient; id: string }> {
  const svc = serviceClient(gw, 'chat');
  const client = await startClient(async () => (await svc.getClientAccessToken({ userId, roles: ROLES })).url, { autoReconnect: false });
  const id = await eventually(async () => (client as any)._connectionId as string | undefined, 10_000, 'the connected message');
  return { client, id };
}

const stopped = (client: WebPubSubClient) => new Promise<void>((resolve) => client.on('stopped', () => resolve()));

describe('Azure presence across nodes', { timeout: 40_000 }, () => {
  it("A's REST answers and acts on B's connections, users and groups", async () => {
    const cluster = await startCluster({ nodes: 2, postgres, env: ENV });
    const [a, b] = cluster.nodes;
    const svcA = serviceClient(a, 'chat');
    const svcB = serviceClient(b, 'chat');

    const bob = await clientOn(b, 'bob');
    const bobIn = collect(bob.client);
    await eventually(() => svcA.connectionExists(bob.id), 10_000, "A sees B's connection");
    expect(await svcA.userExists('bob')).toBe(true);
    expect(await svcA.connectionExists('no-such-connection')).toBe(false);
    await bob.client.joinGroup('on-b');
    await eventually(() => svcA.groupExists('on-b'), 10_000, "A sees the group B's client joined");

    // addConnectionToGroup on A for B's connection: the pre-check passes, B applies it
    await svcA.group('g2').addConnection(bob.id);
    await eventually(() => svcA.groupExists('g2'), 10_000, 'g2 on A');
    await eventually(() => svcB.groupExists('g2'), 10_000, 'g2 on B');
    const members = [];
    for await (const m of await svcA.group('g2').listConnections()) members.push(m);
    expect(members).toEqual([{ connectionId: bob.id, userId: 'bob' }]);
    await svcA.group('g2').sendToAll({ n: 1 });
    expect((await bobIn.until(1))[0]).toMatchObject({ group: 'g2', data: { n: 1 } });
    await expect(svcA.group('g2').addConnection('no-such-connection')).rejects.toMatchObject({ statusCode: 404 });

    // removeConnectionFromGroup: gone on both nodes, and the next send to g2 does not reach bob
    await svcA.group('g2').removeConnection(bob.id);
    await eventually(async () => !(await svcA.groupExists('g2')) && !(await svcB.groupExists('g2')), 10_000, 'g2 empty');
    await svcA.group('g2').sendToAll({ n: 2 });
    await svcA.sendToConnection(bob.id, { n: 3 }); // the marker arrives alone
    expect((await bobIn.until(2))[1].data).toEqual({ n: 3 });

    // addUserToGroup, removeUserFromAllGroups and closeGroupConnections from A, for users on B
    const erin = await clientOn(b, 'erin');
    const erinStopped = stopped(erin.client);
    await eventually(() => svcA.userExists('erin'), 10_000, 'erin on A');
    await svcA.group('g4').addUser('erin');
    await eventually(() => svcA.groupExists('g4'), 10_000, 'erin in g4 on A');
    await svcA.removeUserFromAllGroups('erin');
    await eventually(async () => !(await svcA.groupExists('g4')) && !(await svcB.groupExists('g4')), 10_000, 'erin out of g4');
    await svcA.group('g5').addUser('erin');
    await eventually(() => svcB.groupExists('g5'), 10_000, 'erin in g5 on B');
    await svcA.group('g5').closeAllConnections();
    await erinStopped;
    await eventually(async () => !(await svcA.userExists('erin')), 10_000, 'erin gone on A');

    // closeUserConnections from A: carl's connections on both nodes
    const carlA = await clientOn(a, 'carl');
    const carlB = await clientOn(b, 'carl');
    await eventually(
      async () => (await svcA.connectionExists(carlB.id)) && (await svcB.connectionExists(carlA.id)),
      10_000,
      "carl's two connections everywhere",
    );
    const carlsStopped = Promise.all([stopped(carlA.client), stopped(carlB.client)]);
    await svcA.closeUserConnections('carl');
    await carlsStopped;
    await eventually(async () => !(await svcA.userExists('carl')) && !(await svcB.userExists('carl')), 10_000, 'carl gone on both');

    // closeConnection from A closes B's client
    const bobStopped = stopped(bob.client);
    await svcA.closeConnection(bob.id, { reason: 'bye' });
    await bobStopped;
    await eventually(async () => !(await svcA.connectionExists(bob.id)), 10_000, 'bob gone on A');
    expect(await svcA.userExists('bob')).toBe(false);
  });

  it("SIGKILL of B: A forgets B's connections within the TTL and a snapshot period, for good", async () => {
    const cluster = await startCluster({ nodes: 2, postgres, env: ENV });
    const [a, b] = cluster.nodes;
    const svcA = serviceClient(a, 'chat');
    const dora = await clientOn(b, 'dora');
    await dora.client.joinGroup('dora-group');
    await eventually(async () => (await svcA.connectionExists(dora.id)) && (await svcA.groupExists('dora-group')), 10_000, "A sees dora's connection");

    await cluster.kill(1);
    const killedAt = Date.now();
    await eventually(async () => !(await svcA.connectionExists(dora.id)), TTL_MS + SNAPSHOT_MS + 5000, "A forgets B's connection");
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeLessThanOrEqual(TTL_MS + SNAPSHOT_MS + 1500);
    expect(tookMs).toBeGreaterThanOrEqual(TTL_MS - SNAPSHOT_MS); // not before the TTL (B's last message came up to a period before)
    const line = await a.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('azure presence of node') && l.msg.endsWith('expired'));
    expect(line).toMatchObject({ connections: 1 });
    expect(await svcA.userExists('dora')).toBe(false);
    expect(await svcA.groupExists('dora-group')).toBe(false);

    // nothing brings them back: two more snapshot periods of A (a real wait: absence has no event)
    await new Promise((r) => setTimeout(r, 2 * SNAPSHOT_MS));
    expect(await svcA.connectionExists(dora.id)).toBe(false);
    expect(a.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('azure presence of node'))).toHaveLength(1);
    expect(b.alive).toBe(false);
  });
});
