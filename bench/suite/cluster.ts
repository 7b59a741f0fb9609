/**
 * 8. Two nodes: the same telemetry clients split half and half over two gateway nodes on the
 * suite's broker, against one node and bare uWS with the same clients, in the same run; then a
 * connection storm on /ws/connect spread over both nodes against the same storm on one node, and
 * an Azure connect storm (azure-storm.ts, presence on) spread over both nodes against one node.
 *
 * The nodes run as a cluster would: the same environment (one GATEWAY_CLUSTER_KEY, one JWT
 * secret), one broker. No database: telemetry rides the bus (every node consumes every device's
 * topic and serves its own clients) and /ws/connect needs no store, so each node keeps its own
 * SQLite file. The one-node runs get the same environment. Every node and every client share the
 * machine's cores, so absolute numbers describe the box: the report gives ratios (two nodes ÷ one
 * node, gateway ÷ bare uWS) and server CPU per delivery (all nodes' CPU ÷ deliveries).
 */
import { randomBytes } from 'node:crypto';
import { startGateway, type GatewayProcess } from '../load/gateway-process.js';
import type { ServerProcess } from '../load/server-process.js';
import { getTwice, measure, type RunNumbers } from './scenarios.js';
import { hs256Token, SECRET, stormDuringFanout, type StormNumbers, type StormSizes } from './storm.js';
import { startTarget, TARGET_SPECS, type RunningTarget } from './targets.js';
import { AZURE_STORM_FULL, AZURE_STORM_QUICK, AZURE_STORM_SMOKE, azureStorm, type AzureStormRun, type AzureStormSizes } from './azure-storm.js';

export interface ClusterSizes {
  /** Fan-out: connections each watching 5 of 1,000 devices, at `rate` msg/s (as scenario 1). */
  readonly connections: readonly number[];
  readonly rate: number;
  readonly storm: StormSizes;
  /** The Azure connect storm: one node and two nodes, `rounds` times each, alternating. */
  readonly azureStorm: AzureStormSizes;
  readonly warmupS: number;
  readonly durationS: number;
  readonly clientThreads: number;
}

export const CLUSTER_FULL: ClusterSizes = {
  connections: [2000, 10_000],
  rate: 2000,
  storm: { streamConnections: 500, stormConnections: 3000, rate: 1000, warmupS: 2, durationS: 5 },
  azureStorm: AZURE_STORM_FULL,
  warmupS: 2,
  durationS: 5,
  clientThreads: 2,
};
export const CLUSTER_QUICK: ClusterSizes = {
  connections: [500],
  rate: 1000,
  storm: { streamConnections: 200, stormConnections: 1000, rate: 500, warmupS: 1, durationS: 3 },
  azureStorm: AZURE_STORM_QUICK,
  warmupS: 1,
  durationS: 2,
  clientThreads: 1,
};
export const CLUSTER_SMOKE: ClusterSizes = {
  connections: [40],
  rate: 200,
  storm: { streamConnections: 20, stormConnections: 40, rate: 100, warmupS: 0.5, durationS: 1 },
  azureStorm: AZURE_STORM_SMOKE,
  warmupS: 0.5,
  durationS: 1,
  clientThreads: 1,
};

export type ClusterSetup = 'uws-bare' | 'one-node' | 'two-nodes';

/** What each node counted over a run (its /api/v1/stream/stats, after − before): the split. */
export interface NodeShare {
  /** WebSocket connections the node accepted (connections_total). */
  readonly connections: number;
  /** Deliveries the node made (deliveries_total). */
  readonly deliveries: number;
}

export interface ClusterFanout {
  readonly setup: ClusterSetup;
  readonly run: RunNumbers;
  /** Gateway setups: one entry per node. */
  readonly nodes?: NodeShare[];
}

export interface ClusterStorm extends StormNumbers {
  readonly nodes: 1 | 2;
  /** Connections each node accepted during the storm run (the stream's and the storm's). */
  readonly perNode: NodeShare[];
}

export interface ClusterResult {
  readonly fanout: ClusterFanout[];
  readonly storm: ClusterStorm[];
  /** The Azure connect storm on one node and on two (half the clients each), presence on. */
  readonly azureStorm?: AzureStormRun[];
}

/** Several processes seen as one server: CPU time and RSS summed (the report's CPU per delivery is all nodes'). */
function combined(nodes: readonly GatewayProcess[]): ServerProcess {
  const sum = (read: (n: GatewayProcess) => number | undefined) => {
    let total = 0;
    for (const node of nodes) {
      const v = read(node);
      if (v === undefined) return undefined;
      total += v;
    }
    return total;
  };
  return {
    ...nodes[0],
    logTail: () => nodes.flatMap((n, i) => n.logTail().map((l) => `[node ${i}] ${l}`)),
    cpuTimeMs: () => sum((n) => n.cpuTimeMs()),
    rssBytes: () => sum((n) => n.rssBytes()),
  };
}

interface NodeCounters {
  readonly dropped: number;
  readonly connections: number;
  readonly deliveries: number;
}

async function nodeCounters(nodes: readonly GatewayProcess[]): Promise<NodeCounters[]> {
  const out: NodeCounters[] = [];
  for (const node of nodes) {
    const res = await getTwice(`http://127.0.0.1:${node.port}/api/v1/stream/stats`);
    const s = (await res.json()) as { conflations_total: number; drops_total: number; connections_total: number; deliveries_total: number };
    out.push({ dropped: s.conflations_total + s.drops_total, connections: s.connections_total, deliveries: s.deliveries_total });
  }
  return out;
}

const shares = (before: readonly NodeCounters[], after: readonly NodeCounters[]): NodeShare[] =>
  after.map((a, i) => ({ connections: a.connections - before[i].connections, deliveries: a.deliveries - before[i].deliveries }));

export async function cluster(repoRoot: string, mqttUrl: string, sizes: ClusterSizes, say: (l: string) => void): Promise<ClusterResult> {
  const fanout: ClusterFanout[] = [];
  const storms: ClusterStorm[] = [];
  const fan = async (setup: ClusterSetup, target: RunningTarget, nodes: readonly GatewayProcess[]) => {
    for (const connections of sizes.connections) {
      // measure() reads the counters before and after its run: the first and the last read.
      const reads: NodeCounters[][] = [];
      const counters = async () => {
        const c = await nodeCounters(nodes);
        reads.push(c);
        return c.reduce((sum, x) => sum + x.dropped, 0);
      };
      say(`${setup}: fan-out ${connections} connections${nodes.length > 1 ? `, half on each of ${nodes.length} nodes` : ''}, ${sizes.rate} msg/s`);
      const run = await measure(
        target,
        {
          connections,
          perConn: 5,
          devices: 1000,
          rate: sizes.rate,
          encoding: 'json',
          ...(nodes.length > 1 ? { ports: nodes.map((n) => n.port) } : {}),
          ...(nodes.length > 0 ? { serverCounters: counters } : {}),
        },
        sizes,
        say,
      );
      fanout.push({ setup, run, ...(reads.length >= 2 ? { nodes: shares(reads[0], reads.at(-1)!) } : {}) });
    }
  };

  // Bare uWS: the ceiling, with the same clients.
  const uws = await startTarget('uws-bare', repoRoot, mqttUrl);
  try {
    await fan('uws-bare', uws, []);
  } finally {
    await uws.stop();
  }

  // The environment every node gets, as a cluster's nodes share it.
  const env = {
    GATEWAY_CLUSTER_KEY: randomBytes(32).toString('hex'),
    GATEWAY_JWT_SECRET: SECRET,
  };
  const token = await hs256Token();
  for (const count of [1, 2] as const) {
    const setup: ClusterSetup = count === 1 ? 'one-node' : 'two-nodes';
    const nodes: GatewayProcess[] = [];
    try {
      for (let i = 0; i < count; i++) nodes.push(await startGateway({ repoRoot, mqttUrl, logLevel: 'info', startTimeoutMs: 20_000, env }));
      const target: RunningTarget = { spec: TARGET_SPECS.gateway, server: combined(nodes), mqttUrl, stop: async () => undefined };
      await fan(setup, target, nodes);
      say(`${setup}: storm of ${sizes.storm.stormConnections} connects to /ws/connect (HS256) during a ${sizes.storm.streamConnections}-connection fan-out`);
      const before = await nodeCounters(nodes);
      const run = await stormDuringFanout({ ports: nodes.map((n) => n.port), mqttUrl, token, sizes: sizes.storm });
      storms.push({ nodes: count, ...run, perNode: shares(before, await nodeCounters(nodes)) });
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  }
  // The Azure connect storm: fresh nodes each time (azure-storm.ts's env), one node then two, alternating per round.
  const azureStorms: AzureStormRun[] = [];
  for (let round = 0; round < sizes.azureStorm.rounds; round++) {
    for (const count of round % 2 === 0 ? [1, 2] : [2, 1]) {
      say(
        `azure storm: ${sizes.azureStorm.connects} Azure connects on ${count === 1 ? 'one node' : 'two nodes, half on each'} (round ${round + 1} of ${sizes.azureStorm.rounds})`,
      );
      azureStorms.push(await azureStorm(repoRoot, mqttUrl, count, 'on', sizes.azureStorm));
    }
  }
  return { fanout, storm: storms, azureStorm: azureStorms };
}
