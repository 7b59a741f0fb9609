/**
 * Issue 16, Tests (docs/design/cluster-store.md §5.3, §6.1): PostgreSQL lost while two nodes take a
 * burst of writes. A write is answered 2xx or 503 GW_ERR_STORE_UNAVAILABLE (GW_ERR_OVERLOADED), the
 * nodes are not ready (503 /readyz) while the database is away and ready again after, telemetry
 * flows on, and afterwards every 2xx write reaches the subscribers on both nodes once, in offset
 * order (burst.ts). A refused write is in the database whole (its reply lost) or not at all: the
 * entities, the channel log and what the subscribers got are the same set.
 *
 * Two faults: every node's connection cut by a relay (test/helpers/tcp-relay.ts) for about 2 s, and
 * the server itself stopped with `pg_ctl stop -m immediate` (a crash) and started again on its port.
 * Two nodes starting at once on an empty database are test/integration/postgres-gateway.test.ts's
 * and postgres-migrations.test.ts's (each migration recorded once).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/gateway-process.js';
import { events, startCluster, type Cluster, type ClusterNode, type Writers } from '../helpers/cluster.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';
import { burstWithFault } from './burst.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
  // The test server commits without waiting for the WAL (synchronous_commit off): a crash would lose
  // commits already answered 2xx, which no real server configured to keep its data does.
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query('ALTER SYSTEM SET synchronous_commit = on');
  await admin.query('SELECT pg_reload_conf()');
  await admin.end();
});
afterAll(async () => {
  await postgres?.stop();
});

const REFUSED = /^write \d+: 503 .*"(GW_ERR_STORE_UNAVAILABLE|GW_ERR_OVERLOADED)"/;
const CUT_MS = 2_000;

const readyz = async (node: ClusterNode) => (await fetch(`${node.http}/readyz`)).status;

/** While the database is away: both nodes not ready, telemetry through both, writes refused on both; then the rest of CUT_MS. */
async function whileAway(cluster: Cluster, since: number, writers: readonly Writers[]): Promise<void> {
  for (const node of cluster.nodes) await eventually(async () => (await readyz(node)) === 503, 5_000, `${node.name}'s /readyz 503 without the database`);
  const watchers = await Promise.all(cluster.nodes.map((node) => connectStream(node.ws, '?device_ids=T-1')));
  const device = await connectPublisher(cluster.nodes[0].broker.url);
  await device.position('T-1', { SPEED: 42 });
  for (const w of watchers) expect((await w.next(isMessage('T-1'))).data.data.SPEED).toBe(42);
  await eventually(async () => writers.every((w) => w.errors.length >= 2), 5_000, 'writes refused on every node');
  const left = since + CUT_MS - Date.now();
  if (left > 0) await new Promise((r) => setTimeout(r, left)); // the outage's length is the test's choice, not an event
}

/** After the burst: ready again; the entities, the log and the subscribers' events are one set; refused writes only if whole. */
async function checkAfter(cluster: Cluster, result: Awaited<ReturnType<typeof burstWithFault>>): Promise<{ refused: number; committed: number }> {
  for (const node of cluster.nodes)
    await eventually(async () => (await readyz(node)) === 200, 10_000, `${node.name}'s /readyz 200 after the database returned`);
  const { rows: entities } = await cluster.pg.query("SELECT id::int AS id, data FROM entities WHERE collection = 'lecturas' ORDER BY id");
  const { rows: logged } = await cluster.pg.query("SELECT event_offset::int AS o, event FROM channel_log WHERE channel = 'readings' ORDER BY event_offset");
  const delivered = events(result.subscribers[0]);
  const ids = (list: number[]) => [...list].sort((x, y) => x - y);
  expect(ids(logged.map((r) => JSON.parse(r.event).entity_id as number)), 'the log holds each entity once').toEqual(entities.map((r) => r.id));
  expect(ids(delivered.map((f) => f.entity_id as number)), 'the subscribers got the log').toEqual(entities.map((r) => r.id));
  expect(logged.map((r) => r.o)).toEqual(delivered.map((f) => f.offset));
  // A refused write is in the database only whole (its reply lost on the way back), never in part.
  const stored = new Set(entities.map((r) => `${JSON.parse(r.data).unidad}/${JSON.parse(r.data).valor}`));
  const committed = result.refused.filter((r) => stored.has(`${r.node.name}/${r.n}`));
  expect(entities.length, 'every entity is a 2xx write or a refused one whose reply was lost').toBe(result.written.length + committed.length);
  expect(result.refused.length, 'writes were refused while the database was away').toBeGreaterThan(0);
  // … and its 503 said so: a client told just to retry would have made it twice.
  for (const r of committed) expect(r.reply, 'a refused write that was committed').toMatch(/may have been applied: read before retrying/);
  return { refused: result.refused.length, committed: committed.length };
}

describe('PostgreSQL lost during a burst of writes on both nodes', { timeout: 60_000 }, () => {
  it('every node cut off the database for 2 s: 2xx or 503, not ready, telemetry flows; then every 2xx write once, in offset order, on both', async () => {
    const cluster = await startCluster({ nodes: 2, postgres, pgRelay: true });
    const relay = cluster.pgRelay!;
    let cutAt = 0;
    const result = await burstWithFault(cluster, {
      perNode: 200,
      mayRefuse: REFUSED,
      healAfter: 0,
      fault: () => {
        cutAt = Date.now();
        relay.cut();
      },
      heal: async (writers) => {
        await whileAway(cluster, cutAt, writers);
        relay.restore();
      },
    });
    const counts = await checkAfter(cluster, result);
    console.log(`relay cut: ${result.written.length} written, ${counts.refused} refused, ${counts.committed} of them committed`);
  });
});

describe('PostgreSQL crashed during a burst of writes on both nodes', { timeout: 60_000 }, () => {
  it('`pg_ctl stop -m immediate`, started again 2 s later on its port: the same answers, and every 2xx write once, in offset order, on both', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    let crashedAt = 0;
    const result = await burstWithFault(cluster, {
      perNode: 200,
      mayRefuse: REFUSED,
      healAfter: 0,
      fault: async () => {
        crashedAt = Date.now();
        await postgres.crash();
      },
      heal: async (writers) => {
        await whileAway(cluster, crashedAt, writers);
        await postgres.start();
      },
    });
    const counts = await checkAfter(cluster, result);
    console.log(`crash: ${result.written.length} written, ${counts.refused} refused, ${counts.committed} of them committed`);
  });
});
