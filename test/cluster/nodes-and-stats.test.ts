/**
 * Issue 17 items 3 and 4 (docs/guide.md "Clustering"): nodes know each other, and the
 * reference-compatible stats are cluster totals. Two nodes on one PostgreSQL and one Mosquitto, with a
 * short heartbeat (500 ms) and TTL (3 s) so that a death shows within seconds:
 * GET /api/v1/cluster lists both on either node; SIGKILL of B takes it off A's list within the TTL
 * and a heartbeat, logged "node left" on A; /ws/stats, broadcast `sent`, the stream, channel and trips
 * stats add up both nodes, with `nodes: {<id>: …}` beside the totals; the trip monitor's connected
 * equipment is the union over the nodes (one excavator on each: 2 on both, no fleet alert).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClient } from '../helpers/azure.js';
import { channelEnv, rest } from '../helpers/channels.js';
import { OPERATOR_TOKEN, startCluster, type ClusterNode } from '../helpers/cluster.js';
import { eventually, startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { connectStream } from '../helpers/stream-client.js';
import { mintJwt } from '../helpers/tokens.js';

const HEARTBEAT_MS = 500;
const TTL_MS = 3_000;

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

function equipmentFile(): string {
  const file = join(tempDataDir(), 'equipment.json');
  writeFileSync(
    file,
    JSON.stringify([
      { code: 'EXC-001', kind: 'excavator', active: true },
      { code: 'EXC-002', kind: 'excavator', active: true },
    ]),
  );
  return file;
}

async function twoNodes() {
  const cluster = await startCluster({
    nodes: 2,
    postgres,
    env: { GATEWAY_NODE_HEARTBEAT_MS: String(HEARTBEAT_MS), GATEWAY_NODE_TTL_MS: String(TTL_MS), GATEWAY_EQUIPMENT_FILE: equipmentFile() },
  });
  return cluster;
}

// /api/v1/cluster is an operator route: the harness's nodes want OPERATOR_TOKEN (harmless on the SQLite one, which has none).
const get = async (node: GatewayProcess, path: string) =>
  (await rest(node, 'GET', path, undefined, path === '/api/v1/cluster' ? OPERATOR_TOKEN : undefined)).body as Record<string, any>;
const nodeIdOf = async (node: GatewayProcess) => (await get(node, '/api/v1/cluster')).node as string;
const listed = async (node: GatewayProcess) => ((await get(node, '/api/v1/cluster')).nodes as { id: string }[]).map((n) => n.id).sort();

const user = async (node: ClusterNode, id: string) => {
  const client = await connectStream(node.ws, `?token=${await mintJwt(id, { roles: ['viewer'] })}`, { path: '/ws/connect' });
  await client.next((f) => f.type === 'connection_established');
  return client;
};

const negotiateUrl = async (node: GatewayProcess, code: string) => {
  const res = await fetch(`${node.http}/ws/negotiate?user_id=${code}`);
  return ((await res.json()) as { url: string }).url;
};

describe('nodes know each other; the stats are cluster totals', { timeout: 60_000 }, () => {
  it('lists both nodes on either node; SIGKILL of B takes it off A within the TTL and a heartbeat, logged "node left"', async () => {
    const cluster = await twoNodes();
    const [a, b] = cluster.nodes;
    const [idA, idB] = [await nodeIdOf(a), await nodeIdOf(b)];
    expect(idA).not.toBe(idB);
    const both = [idA, idB].sort();
    await eventually(async () => JSON.stringify(await listed(a)) === JSON.stringify(both), 5_000, 'A lists both');
    await eventually(async () => JSON.stringify(await listed(b)) === JSON.stringify(both), 5_000, 'B lists both');
    const onA = await get(a, '/api/v1/cluster');
    expect(onA).toMatchObject({ status: 'ok', node: idA, heartbeat_ms: HEARTBEAT_MS, ttl_ms: TTL_MS });
    const entryB = (onA.nodes as any[]).find((n) => n.id === idB);
    expect(entryB).toMatchObject({ self: false, version: expect.any(String), connections: { total: expect.any(Number) } });
    expect(entryB.uptime_seconds).toBeGreaterThanOrEqual(0);
    expect(entryB.heartbeat_age_ms).toBeLessThan(TTL_MS);
    expect(Date.parse(entryB.last_heartbeat)).toBeGreaterThan(0);
    await a.waitForLog((l) => l.msg === 'node joined' && l.node === idB, 5_000);

    await cluster.kill(1);
    const killedAt = Date.now();
    await eventually(async () => JSON.stringify(await listed(a)) === JSON.stringify([idA]), TTL_MS + 2 * HEARTBEAT_MS + 2_000, 'B off A’s list');
    const gone = Date.now() - killedAt;
    await a.waitForLog((l) => l.msg === 'node left' && l.node === idB, 2 * HEARTBEAT_MS + 1_000);
    expect(gone).toBeLessThanOrEqual(TTL_MS + 2 * HEARTBEAT_MS + 500);
    console.log(`B left A's list ${gone} ms after its SIGKILL (TTL ${TTL_MS} ms, heartbeat ${HEARTBEAT_MS} ms)`);
    // B's presence is purged by A.
    await eventually(async () => Number((await cluster.pg.query('SELECT count(*) AS n FROM user_presence WHERE node = $1', [idB])).rows[0].n) === 0, 5_000);
  });

  it('/ws/stats, broadcast `sent`, the stream and channel stats add up users on both nodes; a user on both counts once', async () => {
    const cluster = await twoNodes();
    const [a, b] = cluster.nodes;
    const [idA, idB] = [await nodeIdOf(a), await nodeIdOf(b)];
    await user(a, 'alice');
    await user(a, 'bob');
    await user(b, 'alice'); // on both nodes
    await user(b, 'carol');
    await connectStream(a.ws, '?device_ids=dev-1');
    await connectStream(b.ws, '?device_ids=dev-2');
    for (const node of [a, b]) {
      const stats = await eventually(
        async () => {
          const body = await get(node, '/ws/stats');
          return body.stats.total_connections === 4 && body.stats.unique_users === 3 && body.stats.nodes[idA] && body.stats.nodes[idB] ? body : undefined;
        },
        8_000,
        '/ws/stats totals',
      );
      expect(stats.stats.nodes[idA].total_connections).toBe(2);
      expect(stats.stats.nodes[idB].total_connections).toBe(2);
      expect(stats.stats).toMatchObject({ heartbeat_active: true, connections_by_role: expect.any(Object), metrics: expect.any(Object) });
    }
    const broadcast = await rest(a, 'POST', '/ws/_test/broadcast', { title: 't', content: 'c' });
    expect(broadcast.status).toBe(200);
    expect(broadcast.body).toMatchObject({ status: 'ok', sent: 4, nodes: { [idA]: { sent: 2 }, [idB]: { sent: 2 } } });

    const stream = await eventually(async () => {
      const body = await get(b, '/api/v1/stream/stats');
      return body.connections === 2 && body.user_connections === 4 ? body : undefined;
    }, 5_000);
    expect(stream.nodes[idA].connections).toBe(1);
    expect(stream.nodes[idB].connections).toBe(1);
    expect(stream).toHaveProperty('total_messages_processed');
    expect(stream).toHaveProperty('active_subscribers', 2);

    const channelsA = await connectStream(a.ws, '', { path: '/ws/general' });
    const channelsB = await connectStream(b.ws, '', { path: '/ws/general' });
    const ws = await eventually(async () => {
      const body = await get(a, '/api/v1/ws/stats');
      return body.total_connections === 2 ? body : undefined;
    }, 5_000);
    expect(ws.nodes[idA].total_connections).toBe(1);
    expect(ws.nodes[idB].total_connections).toBe(1);
    expect(ws).toMatchObject({ status: 'ok', channels: expect.any(Object), events_delivered: expect.any(Number) });
    channelsA.ws.close();
    channelsB.ws.close();
  });

  it('the trip monitor counts equipment on either node: one excavator on each is connected=2 on both, no fleet alert', async () => {
    const cluster = await twoNodes();
    const [a, b] = cluster.nodes;
    const [idA, idB] = [await nodeIdOf(a), await nodeIdOf(b)];
    await startClient(() => negotiateUrl(a, 'EXC-001'));
    await startClient(() => negotiateUrl(b, 'EXC-002'));
    for (const node of [a, b]) {
      // The monitor samples every 5 s; the other node's equipment comes with its heartbeat.
      const stats = await eventually(
        async () => {
          const body = await get(node, '/api/v1/trips/stats');
          return body.connected_equipment === 2 ? body : undefined;
        },
        15_000,
        'connected=2',
      );
      expect(stats).toMatchObject({ status: 'ok', active_fleet: 2, connected_ratio: 1, alerts: [] });
      expect(stats.nodes[idA].connected_equipment).toBe(1);
      expect(stats.nodes[idB].connected_equipment).toBe(1);
    }
  });

  it('a clean shutdown deletes its row at once: "node left" on the other within a heartbeat, not the TTL', async () => {
    const cluster = await twoNodes();
    const [a, b] = cluster.nodes;
    const idB = await nodeIdOf(b);
    await a.waitForLog((l) => l.msg === 'node joined' && l.node === idB, 5_000);
    expect(await b.stop('SIGTERM')).toBe(0);
    expect(Number((await cluster.pg.query('SELECT count(*) AS n FROM nodes WHERE id = $1', [idB])).rows[0].n)).toBe(0);
    const left = await a.waitForLog((l) => l.msg === 'node left' && l.node === idB, 2 * HEARTBEAT_MS + 1_000);
    expect(left.lastHeartbeatAgeMs as number).toBeLessThan(TTL_MS);
  });

  it('on SQLite (one node) the registry lists this node alone and the totals are its own', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_DATA_DIR: tempDataDir(), GATEWAY_NODE_HEARTBEAT_MS: String(HEARTBEAT_MS) }) });
    await connectStream(gw.ws, `?token=${await mintJwt('solo', { roles: ['viewer'] })}`, { path: '/ws/connect' });
    const cluster = await eventually(async () => {
      const body = await get(gw, '/api/v1/cluster');
      return body.nodes.length === 1 && body.nodes[0].last_heartbeat !== null ? body : undefined;
    }, 5_000);
    expect(cluster.nodes[0]).toMatchObject({ id: cluster.node, self: true });
    const stats = await eventually(async () => {
      const body = await get(gw, '/ws/stats');
      return body.stats.total_connections === 1 ? body : undefined;
    }, 5_000);
    expect(stats.stats).toMatchObject({ unique_users: 1, nodes: { [cluster.node]: { total_connections: 1 } } });
  });
});
