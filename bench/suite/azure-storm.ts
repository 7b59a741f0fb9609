/**
 * The Azure connect storm (issue 17 item 1: what cluster presence costs during a connect storm), run
 * by scenario 5 (storm) and scenario 8 (cluster):
 *
 *   N raw WebSocket connects to /client/hubs/bench?access_token=… with the `json.webpubsub.azure.v1`
 *   subprotocol, `concurrency` at a time, connection i to node i % nodes. A connect is done when its
 *   `connected` system message arrives; its latency is from the TCP connect to that message.
 *
 * Each connection's token names one of `users` users and one of `groups` groups (joined at connect),
 * so every open is a presence change with a user and a group, as an app's clients are. Reported:
 * connects/s (N over the storm's wall time), connect p50/p99, the nodes' ingest thread CPU (the
 * gateway's own `ingest_cpu_seconds_total`, /proc/thread-self) and process CPU, both over the storm
 * and the 1.5 s after it (the presence batches, every 100 ms, go out after the connects), and with
 * presence on, how long until every node's directory held the other nodes' connections.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { RawWsClient } from '../load/raw-ws-client.js';
import { startGateway, type GatewayProcess } from '../load/gateway-process.js';
import { getTwice } from './scenarios.js';

export interface AzureStormSizes {
  readonly connects: number;
  readonly concurrency: number;
  readonly users: number;
  readonly groups: number;
  /** Scenario 5: presence on and off, this many times each, alternating (on, off, off, on, …). */
  readonly rounds: number;
}

export const AZURE_STORM_FULL: AzureStormSizes = { connects: 2500, concurrency: 250, users: 500, groups: 50, rounds: 2 };
export const AZURE_STORM_QUICK: AzureStormSizes = { connects: 1000, concurrency: 200, users: 200, groups: 20, rounds: 1 };
export const AZURE_STORM_SMOKE: AzureStormSizes = { connects: 40, concurrency: 20, users: 10, groups: 4, rounds: 1 };

export const AZURE_STORM_HUB = 'bench';
const ACCESS_KEY = 'bench-azure-storm-access-key-with-32-bytes-or-more';
const SUBPROTOCOL = 'json.webpubsub.azure.v1';
const CONNECTED = Buffer.from('"event":"connected"', 'latin1');
/** After the last connect: the presence batches (100 ms) and the other nodes taking them. */
const SETTLE_MS = 1500;

export interface AzureStormRun {
  readonly nodes: number;
  /** GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS: 5000 (on, the default) or 0 (off). */
  readonly presence: 'on' | 'off';
  readonly connects: number;
  readonly failed: number;
  readonly connectsPerS: number;
  readonly connectP50Ms: number;
  readonly connectP99Ms: number;
  /** All nodes' ingest threads, CPU ms over the storm and SETTLE_MS after it (NaN: not on Linux). */
  readonly ingestCpuMs: number;
  /** All nodes' processes, CPU ms over the same span. */
  readonly processCpuMs: number;
  /** Presence on, several nodes: ms from the last connect until every node held the others' connections (-1: not within 10 s). */
  readonly convergedMs?: number;
  /** Connections each node accepted (its azure_connections gauge after the storm). */
  readonly perNode: number[];
  /** The 1-minute load average when the run started (the box is shared). */
  readonly loadAverage: number;
  readonly errors: string[];
}

/** The env every node of a storm gets: one cluster key and access key, the hub, a 200 ms watchdog beat (the CPU reads' resolution). */
export function azureStormEnv(clusterKey: string, presence: 'on' | 'off'): Record<string, string> {
  return {
    GATEWAY_CLUSTER_KEY: clusterKey,
    GATEWAY_AZURE_ACCESS_KEY: ACCESS_KEY,
    GATEWAY_AZURE_HUBS: AZURE_STORM_HUB,
    GATEWAY_WATCHDOG_MS: '1000',
    GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS: presence === 'on' ? '5000' : '0',
  };
}

async function tokens(sizes: AzureStormSizes): Promise<string[]> {
  const key = new TextEncoder().encode(ACCESS_KEY);
  const now = Math.floor(Date.now() / 1000);
  return Promise.all(
    Array.from({ length: sizes.users }, (_, u) =>
      new SignJWT({ role: ['webpubsub.joinLeaveGroup'], 'webpubsub.group': [`g${u % sizes.groups}`] })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setAudience(`http://127.0.0.1/client/hubs/${AZURE_STORM_HUB}`)
        .setSubject(`user-${u}`)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(key),
    ),
  );
}

/** The sum of one gateway series over its label sets, from /metrics (the bench sets no operator token). */
async function gauge(port: number, name: string): Promise<number> {
  const text = await (await getTwice(`http://127.0.0.1:${port}/metrics`)).text();
  let total = 0;
  const series = new RegExp(`^gateway_${name}(?:\\{[^}]*\\})? (\\S+)$`);
  for (const line of text.split('\n')) {
    const m = series.exec(line);
    if (m) total += Number(m[1]);
  }
  return total;
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const sumOf = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const loadAverage = async () => Number((await import('node:os')).loadavg()[0].toFixed(2));

/** One storm on running nodes; the clients are closed before it returns. */
export async function azureStormOn(nodes: readonly GatewayProcess[], sizes: AzureStormSizes, presence: 'on' | 'off'): Promise<AzureStormRun> {
  const list = await tokens(sizes);
  const load = await loadAverage();
  const ingestBefore = await Promise.all(nodes.map((n) => gauge(n.port, 'ingest_cpu_seconds_total')));
  const cpuBefore = nodes.map((n) => n.cpuTimeMs() ?? Number.NaN);
  const clients: RawWsClient[] = [];
  const latencies: number[] = [];
  const errors: string[] = [];
  let failed = 0;
  let next = 0;
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const started = performance.now();
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        if (err) {
          failed++;
          if (errors.length < 5) errors.push(err.message.split('\n')[0]);
        } else latencies.push(performance.now() - started);
        resolve();
      };
      RawWsClient.connect({
        host: '127.0.0.1',
        port: nodes[i % nodes.length].port,
        path: `/client/hubs/${AZURE_STORM_HUB}?access_token=${list[i % list.length]}`,
        protocol: SUBPROTOCOL,
        handshakeTimeoutMs: 30_000,
        onMessage: (payload) => {
          if (!done && payload.includes(CONNECTED)) finish();
        },
        onClose: (info) => finish(info.error ?? new Error(`closed before "connected" (code ${info.code ?? 'none'})`)),
      }).then(
        (client) => clients.push(client),
        (err: Error) => finish(err),
      );
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(sizes.concurrency, sizes.connects) }, async () => {
      while (next < sizes.connects) await one(next++);
    }),
  );
  const wallMs = performance.now() - t0;
  const stormEnd = Date.now();

  let convergedMs: number | undefined;
  if (presence === 'on' && nodes.length > 1) {
    const want = nodes.map((_, i) => sizes.connects - Math.ceil((sizes.connects - i) / nodes.length));
    convergedMs = -1;
    while (Date.now() - stormEnd < 10_000) {
      const remote = await Promise.all(nodes.map((n) => gauge(n.port, 'azure_presence_remote_connections')));
      if (remote.every((r, i) => r >= want[i] - failed)) {
        convergedMs = Date.now() - stormEnd;
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const wait = SETTLE_MS - (Date.now() - stormEnd);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const ingestAfter = await Promise.all(nodes.map((n) => gauge(n.port, 'ingest_cpu_seconds_total')));
  const cpuAfter = nodes.map((n) => n.cpuTimeMs() ?? Number.NaN);
  const perNode = await Promise.all(nodes.map((n) => gauge(n.port, 'azure_connections')));
  for (const c of clients) c.destroy();

  latencies.sort((a, b) => a - b);
  const ingest = ingestAfter.map((a, i) => (a - ingestBefore[i]) * 1000);
  return {
    nodes: nodes.length,
    presence,
    connects: latencies.length,
    failed,
    connectsPerS: latencies.length / (wallMs / 1000),
    connectP50Ms: percentile(latencies, 50),
    connectP99Ms: percentile(latencies, 99),
    ingestCpuMs: ingestAfter.every((a) => a > 0) ? sumOf(ingest) : Number.NaN,
    processCpuMs: sumOf(cpuAfter.map((a, i) => a - cpuBefore[i])),
    ...(convergedMs === undefined ? {} : { convergedMs }),
    perNode,
    loadAverage: load,
    errors,
  };
}

/** Starts `count` nodes on the broker with the storm's env (plus `env`), runs one storm, stops them. */
export async function azureStorm(
  repoRoot: string,
  mqttUrl: string,
  count: number,
  presence: 'on' | 'off',
  sizes: AzureStormSizes,
  env: Readonly<Record<string, string>> = {},
): Promise<AzureStormRun> {
  const nodes: GatewayProcess[] = [];
  try {
    const nodeEnv = { ...azureStormEnv(randomBytes(32).toString('hex'), presence), ...env };
    for (let i = 0; i < count; i++) nodes.push(await startGateway({ repoRoot, mqttUrl, logLevel: 'info', startTimeoutMs: 20_000, env: nodeEnv }));
    return await azureStormOn(nodes, sizes, presence);
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

/** Scenario 5's part: two nodes, presence on and off alternating, `rounds` times each. */
export async function azurePresenceStorm(repoRoot: string, mqttUrl: string, sizes: AzureStormSizes, say: (l: string) => void): Promise<AzureStormRun[]> {
  const runs: AzureStormRun[] = [];
  for (let round = 0; round < sizes.rounds; round++) {
    const order: ('on' | 'off')[] = round % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
    for (const presence of order) {
      say(`storm: ${sizes.connects} Azure connects (${SUBPROTOCOL}) over two nodes, cluster presence ${presence} (round ${round + 1} of ${sizes.rounds})`);
      runs.push(await azureStorm(repoRoot, mqttUrl, 2, presence, sizes));
    }
  }
  return runs;
}
