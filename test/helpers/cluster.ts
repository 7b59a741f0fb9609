/**
 * A gateway cluster for a test, built from real parts: one PostgreSQL database (test/helpers/postgres.ts;
 * a new database on a server the test file started, or a server of its own), Mosquitto as one broker or
 * as two brokers bridged through a test-owned TCP relay (test/helpers/tcp-relay.ts), and N gateway
 * nodes as child processes (test/helpers/gateway-process.ts) with the same keys (JWT secret,
 * GATEWAY_CLUSTER_KEY, share-link key, Azure access key), each with its own GATEWAY_DATA_DIR, all on
 * GATEWAY_DATABASE_URL, port 0, MQTT_URL to its broker (bridged: node i on broker i % 2).
 *
 * Call it inside a test (the processes are stopped when the test ends, as startGateway's are).
 * `nodes[i]` is a GatewayProcess that follows restarts, so `rest(nodes[1], …)` and
 * `connectChannel(nodes[1], …)` keep working after `restart(1)` (which gives the node a new port).
 * Devices and backends publish to `node.broker.url` (the broker itself, never a node's relay).
 *
 * The bridge is what a user joining two brokers would write (mosquitto.ts `bridgeConf`): `topic # both
 * 1` and Mosquitto's default `cleansession false` unless `bridgeCleanSession: true` is asked for (the
 * harsher case: what crosses during a cut is dropped, not queued).
 */
import { randomUUID } from 'node:crypto';
import { connectAsync, type MqttClient } from 'mqtt';
import pg from 'pg';
import { generateKeys } from 'paseto-ts/v4';
import { onTestFinished } from 'vitest';
import { ACCESS_KEY } from './azure.js';
import { channelEnv, isEvent } from './channels.js';
import { startGateway, tempDataDir, type GatewayProcess, type LogLine } from './gateway-process.js';
import { startMosquitto, type Mosquitto } from './mosquitto.js';
import { startPostgres, type Postgres } from './postgres.js';
import type { Frame, StreamClient } from './stream-client.js';
import { startTcpRelay, type TcpRelay } from './tcp-relay.js';

export interface ClusterOptions {
  readonly nodes: number;
  /** 'single' (default): one Mosquitto; 'bridged': two, node i on broker i % 2. */
  readonly brokers?: 'single' | 'bridged';
  /** Bridged only: the bridge's `cleansession` (default false, Mosquitto's own default). */
  readonly bridgeCleanSession?: boolean;
  /** A PostgreSQL server the test file started (beforeAll); the cluster gets a new database on it. Default: a server of its own. */
  readonly postgres?: Postgres;
  /** Each node reaches its broker through a TCP relay of its own (`node.mqttRelay`), so a test can cut one node off the bus. */
  readonly mqttRelay?: boolean;
  /** Every node reaches PostgreSQL through one TCP relay (`cluster.pgRelay`), so a test can cut the nodes off the database; `cluster.pg.query` goes direct. */
  readonly pgRelay?: boolean;
  /** Extra environment for every node (overrides the harness's). */
  readonly env?: Record<string, string>;
}

export interface ClusterNode extends GatewayProcess {
  /** 'A', 'B', 'C', … */
  readonly name: string;
  readonly index: number;
  readonly broker: Mosquitto;
  /** With `mqttRelay`: the relay between this node and its broker. */
  readonly mqttRelay: TcpRelay | undefined;
  readonly dataDir: string;
  /** The node's environment (the same at every restart). */
  readonly env: Record<string, string>;
  /** The process running now (replaced by restart). */
  readonly process: GatewayProcess;
  readonly alive: boolean;
}

export interface ClusterBrokers {
  readonly list: readonly Mosquitto[];
  readonly mode: 'single' | 'bridged';
  /** Bridged: resolves once a message crosses the bridge both ways (after a start or a restore). */
  waitBridged(timeoutMs?: number): Promise<void>;
}

export interface Cluster {
  readonly nodes: ClusterNode[];
  readonly pg: { readonly server: Postgres; readonly url: string; query(sql: string, params?: unknown[]): Promise<pg.QueryResult> };
  readonly brokers: ClusterBrokers;
  /** The relay in the bridge's path (bridged only): cut() and restore() it. */
  readonly relay: TcpRelay | undefined;
  /** With `pgRelay`: the relay between every node and PostgreSQL. */
  readonly pgRelay: TcpRelay | undefined;
  /** The keys every node shares, for a test that starts something else with them. */
  readonly keys: { readonly shareLocalKey: string; readonly azureAccessKey: string };
  /** SIGKILL of node i; resolves once it has exited. */
  kill(i: number): Promise<void>;
  /** Starts node i again with its data directory and environment (stopped with SIGTERM first if running). */
  restart(i: number, extraEnv?: Record<string, string>): Promise<ClusterNode>;
  /** A new node (next name), on the broker of its index. */
  addNode(extraEnv?: Record<string, string>): Promise<ClusterNode>;
  /** Stops every node (SIGTERM), the brokers, the relay and a PostgreSQL server of its own. Also done when the test ends. */
  stop(): Promise<void>;
}

const NAMES = 'ABCDEFGHIJ';

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const mode = options.brokers ?? 'single';
  let server = options.postgres;
  let ownServer = false;
  if (!server) {
    server = await startPostgres();
    ownServer = true;
    const s = server;
    onTestFinished(() => s.stop());
  }
  const url = await server.newDatabase();
  const pgRelay = options.pgRelay ? await startTcpRelay(server.port) : undefined;
  const nodeUrl = new URL(url);
  if (pgRelay) nodeUrl.port = String(pgRelay.port);

  const first = await startMosquitto();
  let relay: TcpRelay | undefined;
  const list: Mosquitto[] = [first];
  if (mode === 'bridged') {
    relay = await startTcpRelay(first.port);
    list.push(await startMosquitto({ bridge: { address: relay.address, cleanSession: options.bridgeCleanSession ?? false } }));
  }
  const brokers: ClusterBrokers = {
    list,
    mode,
    waitBridged: (timeoutMs = 20_000) => (mode === 'bridged' ? waitBridged(list[0], list[1], timeoutMs) : Promise.resolve()),
  };
  await brokers.waitBridged();

  const keys = { shareLocalKey: generateKeys('local'), azureAccessKey: ACCESS_KEY };
  const common = channelEnv({
    GATEWAY_DATABASE_URL: nodeUrl.toString(),
    GATEWAY_SHARE_LOCAL_KEY: keys.shareLocalKey,
    GATEWAY_AZURE_ACCESS_KEY: keys.azureAccessKey,
    GATEWAY_AZURE_HUBS: 'extraccion,chat',
    GATEWAY_MQTT_RECONNECT_MIN_MS: '50',
    GATEWAY_MQTT_RECONNECT_MAX_MS: '300',
    // The design's lease (docs/design/cluster-store.md §3.1), short so a dead node's rows move on quickly.
    GATEWAY_OUTBOX_LEASE_MS: '2000',
    GATEWAY_OPERATOR_TOKEN: OPERATOR_TOKEN,
    ...options.env,
  });

  const nodes: ClusterNode[] = [];
  const makeNode = async (index: number, extraEnv: Record<string, string> = {}): Promise<ClusterNode> => {
    const broker = list[index % list.length];
    const dataDir = tempDataDir();
    const mqttRelay = options.mqttRelay ? await startTcpRelay(broker.port) : undefined;
    const env = { ...common, MQTT_URL: mqttRelay ? `mqtt://${mqttRelay.address}` : broker.url, GATEWAY_DATA_DIR: dataDir, ...extraEnv };
    let current = await startGateway({ env });
    const node: ClusterNode = {
      name: NAMES[index] ?? `N${index}`,
      index,
      broker,
      mqttRelay,
      dataDir,
      env,
      get process() {
        return current;
      },
      get alive() {
        return current.child.exitCode === null && current.child.signalCode === null;
      },
      get port() {
        return current.port;
      },
      get mqttUrl() {
        return current.mqttUrl;
      },
      get http() {
        return current.http;
      },
      get ws() {
        return current.ws;
      },
      get logs() {
        return current.logs;
      },
      get child() {
        return current.child;
      },
      waitForLog: (predicate: (line: LogLine) => boolean, timeoutMs?: number) => current.waitForLog(predicate, timeoutMs),
      stop: (signal?: NodeJS.Signals) => current.stop(signal),
      stats: () => current.stats(),
    };
    restarters.set(node, async (more) => {
      await current.stop('SIGTERM');
      current = await startGateway({ env: { ...env, ...more } });
    });
    return node;
  };
  const restarters = new Map<ClusterNode, (more: Record<string, string>) => Promise<void>>();

  nodes.push(...(await Promise.all(Array.from({ length: options.nodes }, (_, i) => makeNode(i)))));

  let stopped = false;
  const cluster: Cluster = {
    nodes,
    pg: {
      server,
      url,
      async query(sql, params = []) {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          return await client.query(sql, params);
        } finally {
          await client.end();
        }
      },
    },
    brokers,
    relay,
    pgRelay,
    keys,
    async kill(i) {
      await nodes[i].process.stop('SIGKILL');
    },
    async restart(i, extraEnv = {}) {
      await restarters.get(nodes[i])!(extraEnv);
      return nodes[i];
    },
    async addNode(extraEnv) {
      const node = await makeNode(nodes.length, extraEnv);
      nodes.push(node);
      return node;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(nodes.map((n) => n.process.stop('SIGTERM')));
      for (const b of list) await b.stop();
      await relay?.close();
      await pgRelay?.close();
      for (const n of nodes) await n.mqttRelay?.close();
      if (ownServer) await server.stop();
    },
  };
  return cluster;
}

/** A message published on one broker reaches a subscriber on the other, both ways; published again every 250 ms until it does. */
async function waitBridged(a: Mosquitto, b: Mosquitto, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const clients: MqttClient[] = [];
  try {
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const topic = `gateway-test/bridge-probe/${randomUUID()}`;
      const sub = await connectAsync(to.url, { reconnectPeriod: 100 });
      const pub = await connectAsync(from.url, { reconnectPeriod: 100 });
      clients.push(sub, pub);
      const arrived = new Promise<void>((resolve) => sub.on('message', (t) => t === topic && resolve()));
      await sub.subscribeAsync(topic, { qos: 1 });
      let crossed = false;
      void arrived.then(() => (crossed = true));
      while (!crossed) {
        if (Date.now() > deadline) throw new Error(`the Mosquitto bridge did not pass a message from ${from.url} to ${to.url} within ${timeoutMs} ms`);
        pub.publish(topic, 'probe', { qos: 1 });
        await Promise.race([arrived, new Promise((r) => setTimeout(r, 250))]);
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
  }
}

/**
 * The operator token every node of startCluster has (GATEWAY_OPERATOR_TOKEN, as the kit sets one):
 * /api/v1/cluster, /metrics and the dead letters want it. startGateway sets none (open routes).
 */
export const OPERATOR_TOKEN = 'cluster-harness-operator-token';

/** `Authorization` for the operator routes of the harness's nodes (harmless on a node without a token). */
export const operatorHeaders = (token = OPERATOR_TOKEN): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** A gateway metric's value from /metrics (NaN when absent); `token`: the node's GATEWAY_OPERATOR_TOKEN. */
export async function metric(gw: GatewayProcess, name: string, token = OPERATOR_TOKEN): Promise<number> {
  const res = await fetch(`${gw.http}/metrics`, { headers: operatorHeaders(token) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${await res.text()}`);
  const text = await res.text();
  const match = new RegExp(`^gateway_${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

/** The event frames a channel client got, in arrival order. */
export const events = (client: StreamClient): any[] => client.frames.filter(isEvent) as any[];

/**
 * Resolves once `client` has an event for every key in `keys` (key(frame), by default its entity_id).
 * Awaits frames; the deadline is the only clock.
 */
export async function awaitKeys<K>(client: StreamClient, keys: Iterable<K>, timeoutMs = 20_000, key: (f: any) => K = (f) => f.entity_id as K): Promise<void> {
  const missing = new Set(keys);
  for (const f of events(client)) missing.delete(key(f));
  const deadline = Date.now() + timeoutMs;
  while (missing.size > 0) {
    const left = deadline - Date.now();
    let f: Frame;
    try {
      f = await client.next((e) => isEvent(e) && missing.has(key(e)), Math.max(1, left));
    } catch (err) {
      const sample = [...missing].slice(0, 10);
      throw new Error(`${missing.size} events never arrived (e.g. ${JSON.stringify(sample)}): ${(err as Error).message}`);
    }
    missing.delete(key(f));
  }
}

/** Offsets consecutive (each once, no hole) from the first frame's: what "in offset order, once" means. */
export function expectConsecutive(frames: readonly any[], what: string): void {
  const offsets = frames.map((f) => f.offset as number);
  for (let i = 1; i < offsets.length; i++) {
    if (offsets[i] !== offsets[i - 1] + 1) {
      throw new Error(
        `${what}: offset ${offsets[i]} after ${offsets[i - 1]} at position ${i} of ${offsets.length} (${JSON.stringify(offsets.slice(Math.max(0, i - 5), i + 5))})`,
      );
    }
  }
}

export interface Writers {
  /** The 2xx replies' bodies, in reply order. */
  readonly ok: any[];
  /** Non-2xx replies and failed requests (a dead node), as text. */
  readonly errors: string[];
  /** Resolves when every writer has finished (count reached, or its node went away). */
  readonly done: Promise<void>;
  /** Resolves once `n` writes have been answered 2xx (or the writers are done). */
  until(n: number): Promise<void>;
}

/**
 * `concurrency` writers each POSTing to `path` on `node` until `count` writes were started between
 * them; `body(n)` gives the n-th body (1-based). A writer whose request fails outright (the node is
 * gone) stops; a non-2xx reply is kept in `errors` and the writers go on, after `backoffMs` (default
 * 0) as a client told to retry after a backoff would.
 */
export function startWriters(
  node: GatewayProcess,
  path: string,
  options: {
    readonly count: number;
    readonly concurrency: number;
    readonly token: string;
    readonly body: (n: number) => unknown;
    readonly backoffMs?: number;
  },
): Writers {
  const ok: any[] = [];
  const errors: string[] = [];
  let started = 0;
  let waiters: (() => void)[] = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const writer = async () => {
    while (started < options.count) {
      const n = ++started;
      let res: Response;
      try {
        res = await fetch(`${node.http}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
          body: JSON.stringify(options.body(n)),
        });
      } catch (err) {
        errors.push(`write ${n}: ${(err as Error).message}`);
        return;
      }
      const text = await res.text().catch((err: Error) => `(body lost: ${err.message})`);
      if (res.status >= 200 && res.status < 300) ok.push(JSON.parse(text));
      else errors.push(`write ${n}: ${res.status} ${text.slice(0, 300)}`);
      wake();
      if (res.status >= 300 && options.backoffMs) await new Promise((r) => setTimeout(r, options.backoffMs));
    }
  };
  let finished = false;
  const done = Promise.all(Array.from({ length: options.concurrency }, writer)).then(() => {
    finished = true;
    wake();
  });
  const until = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (finished || ok.length >= n ? resolve() : waiters.push(check));
      check();
    });
  return { ok, errors, done, until };
}
