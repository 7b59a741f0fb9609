/**
 * Issue 16, bullet 6 (docs/design/cluster-store.md §4, §6.1): what one node learned is known to a
 * node that was not there. A node started after devices reported serves them in its `device_ids=*`
 * snapshot (docs/compat/gps-stream.md); a share link revoked on A is refused by a node started after
 * the revocation, and by a node that was off the bus at the time, once it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken } from '../helpers/channels.js';
import { metric, startCluster, type ClusterNode } from '../helpers/cluster.js';
import { eventually } from '../helpers/gateway-process.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

const sharePath = '/api/v1/public/share-location';

async function mintLink(node: ClusterNode, deviceId: string): Promise<string> {
  const res = await fetch(`${node.http}${sharePath}/init`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await adminToken()}` },
    body: JSON.stringify({ device_id: deviceId, ttl_seconds: 600 }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

async function revoke(node: ClusterNode, link: string): Promise<void> {
  const res = await fetch(`${node.http}${sharePath}/${encodeURIComponent(link)}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${await adminToken()}` },
  });
  expect(res.status).toBe(200);
}

const viewer = (node: ClusterNode, link: string) => connectStream(node.ws, `?token=${encodeURIComponent(link)}`, { path: `${sharePath}/stream` });

/** The viewer's first answer: 'subscribed', or the refusal's code (the socket then closes with 1008). */
async function viewerAnswer(node: ClusterNode, link: string): Promise<string> {
  const client = await viewer(node, link);
  const first = await client.next((f) => f.event === 'subscribed' || f.event === 'error');
  if (first.event === 'subscribed') {
    client.ws.close();
    return 'subscribed';
  }
  expect((await client.closed).code).toBe(1008);
  return first.data.code as string;
}

describe('a late node knows what the cluster learned before it started', { timeout: 60_000 }, () => {
  it('its device_ids=* snapshot holds the devices that reported before it started (and only their last position)', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const pub = await connectPublisher(cluster.brokers.list[0].url);
    const devices = Array.from({ length: 20 }, (_, i) => `LATE-${i + 1}`);
    for (const [i, id] of devices.entries()) {
      await pub.position(id, { SPEED: 1 });
      await pub.position(id, { SPEED: 100 + i });
    }
    // Both nodes received the telemetry; their batched writes of last positions have reached the store.
    for (const node of cluster.nodes) {
      const stream = await connectStream(node.ws, `?device_ids=${devices.at(-1)}`);
      await stream.next((f) => isMessage(devices.at(-1))(f) && f.data.data.SPEED === 119);
    }
    await eventually(
      async () => Math.max(...(await Promise.all(cluster.nodes.map((n) => metric(n, 'positions_flushed_total'))))) >= devices.length,
      15_000,
      'the last positions written to the store',
    );

    const late = await cluster.addNode();
    const client = await connectStream(late.ws, '?device_ids=*');
    await client.next((f) => f.event === 'subscribed');
    await pub.position('SYNC', { SPEED: 0 }); // published after the subscription: everything before it was the snapshot
    await client.next(isMessage('SYNC'));
    const snapshot = new Map<string, unknown>();
    for (const f of client.frames) if (isMessage()(f) && f.data.data.DEVICE_ID !== 'SYNC') snapshot.set(f.data.data.DEVICE_ID, f.data.data.SPEED);
    expect([...snapshot].sort()).toEqual(devices.map((id, i) => [id, 100 + i]).sort());
  });

  it(
    'a share link revoked on A is refused by a node started after the revocation, and by a node that was off the bus then, once back',
    { timeout: 60_000 },
    async () => {
      const cluster = await startCluster({ nodes: 2, postgres, mqttRelay: true });
      const [a, b] = cluster.nodes;
      const link = await mintLink(a, 'SIM-7');
      expect(await viewerAnswer(b, link)).toBe('subscribed'); // the same share key on every node
      const live = await viewer(a, link);
      await live.next((f) => f.event === 'subscribed');

      b.mqttRelay!.cut(); // B hears nothing of the revocation on the bus
      await revoke(a, link);
      expect(await live.next((f) => f.event === 'revoked')).toMatchObject({ event: 'revoked' });
      expect(await viewerAnswer(a, link)).toBe('GW_ERR_TOKEN_INVALID');

      const late = await cluster.addNode();
      expect(await viewerAnswer(late, link)).toBe('GW_ERR_TOKEN_INVALID');

      const logsBefore = b.logs.length;
      b.mqttRelay!.restore();
      await b.waitForLog((l) => l.msg === 'mqtt subscribed' && b.logs.indexOf(l) >= logsBefore, 15_000);
      // B catches up from the store after its resubscription (§4.1): asked until it refuses, bounded.
      await eventually(async () => (await viewerAnswer(b, link)) === 'GW_ERR_TOKEN_INVALID', 15_000, "B's catch-up on the revocation");
    },
  );
});
