/**
 * 6. REST writes: concurrent POSTs to a collection while WebSocket clients watch its channel.
 * Reports writes per second, the HTTP round trip of a write, and write-to-subscriber latency (POST
 * sent → entity_event received, same clock, every subscriber), on two backends in the same run:
 *
 *   sqlite    one node on its own gateway.sqlite (writers and subscribers on that node);
 *   postgres  two nodes on one database and the suite's broker, the writers POSTing to node A and
 *             the subscribers on node B, so every event crosses the bus (A's relay → broker → B).
 *
 * Each at 1 writer (latency without queueing) and at `concurrency` writers (throughput), on one
 * channel (`sensors`, the default config's `test-sensors`) and, at `concurrency`, spread over 16
 * channels (16 collections of the same shape, `subscribers` clients on each: the same deliveries,
 * 16 head rows instead of one). Baselines from the same run, at the same concurrency and rows:
 * the write without the gateway (SQLite: the same transaction on this thread; PostgreSQL: the
 * driver's create statement through `pg`, one connection per writer, and a plain one-row INSERT:
 * the ceilings) and GET /healthz on the node written to (the HTTP stack's ceiling, no write).
 *
 * SQLite also at a paced rate (`pacedRate`, issue 18: 2,000 writes/s): the writes are sent on a
 * fixed schedule (open loop, up to `concurrency` in flight), so the latency is the write path's at
 * that rate, not the queue a closed loop of writers builds at its own ceiling; sends more than 2 ms
 * behind the schedule (all writers busy, or the load client late) are counted.
 *
 * The PostgreSQL server is a throwaway one (scripts/local-postgres.ts) with its durability on:
 * fsync, synchronous_commit and full_page_writes as PostgreSQL ships them. BENCH_GATEWAY_CPU_PROF=<dir>
 * starts the gateways with `--cpu-prof` into that directory (one profile per thread).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import WebSocket from 'ws';
import { DEFAULT_CHANNELS, parseChannelsConfig, type CollectionSpec } from '../../src/features/channels/channel-config.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../../src/protocol/bounded-json.js';
import { openDatabase } from '../../src/store/database.js';
import { EntityStore } from '../../src/features/channels/store/entity-store.js';
import { migrate } from '../../src/store/postgres/migrations.js';
import { createPgPool } from '../../src/store/postgres/pg-pool.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { startPostgres, type Postgres } from '../../scripts/local-postgres.js';
import { LatencyHistogram, type LatencySummary } from '../load/histogram.js';
import { startGateway, type GatewayProcess } from '../load/gateway-process.js';

interface RestSizes {
  readonly durationS: number;
  readonly concurrency: number;
  readonly subscribers: number;
  /** Also the one-writer runs (latency without queueing); the smoke sizes leave them out. */
  readonly oneWriter: boolean;
  /** SQLite, one channel: also writes at this rate, paced (open loop, at most `concurrency` in flight); 0: not run. */
  readonly pacedRate: number;
}

export const REST_FULL: RestSizes = { durationS: 10, concurrency: 16, subscribers: 10, oneWriter: true, pacedRate: 2000 };
export const REST_QUICK: RestSizes = { durationS: 3, concurrency: 8, subscribers: 5, oneWriter: true, pacedRate: 1000 };
export const REST_SMOKE: RestSizes = { durationS: 1, concurrency: 2, subscribers: 2, oneWriter: false, pacedRate: 100 };
/** The channel count of the spread case. */
export const MANY_CHANNELS = 16;

export const REST_BACKENDS = ['sqlite', 'postgres'] as const;
export type RestBackend = (typeof REST_BACKENDS)[number];

interface Rate {
  readonly writesPerS: number;
  readonly ms: LatencySummary;
}

export interface RestRun {
  readonly backend: RestBackend;
  /** 1 (SQLite) or 2 (PostgreSQL: writes on A, subscribers on B). */
  readonly nodes: number;
  readonly channels: number;
  readonly concurrency: number;
  /** The paced runs: the rate asked (writes/s, open loop), and the sends more than 2 ms behind its schedule. */
  readonly paced?: { readonly rate: number; readonly lateSends: number };
  /** Subscribers per channel. */
  readonly subscribers: number;
  readonly writes: number;
  readonly writesPerS: number;
  readonly failedWrites: number;
  readonly httpMs: LatencySummary;
  readonly toSubscriberMs: LatencySummary;
  /** Events a subscriber should have received and did not (0 means every write reached everyone). */
  readonly lost: number;
  /** The same write without the gateway, same concurrency and channels (SQLite: the transaction; PostgreSQL: the create statement through pg). */
  readonly storeAlone: Rate;
  /** PostgreSQL only: a plain one-row INSERT (bigserial key, the same JSON), same concurrency. */
  readonly plainInsert?: Rate;
  readonly healthzPerS: number;
  /** CPU of the gateway processes over the window, % of one core (all threads): [A] or [A, B]. */
  readonly gatewayCpuPct: number[];
  readonly errors: string[];
}

export interface RestResult {
  readonly runs: RestRun[];
  /** The PostgreSQL server of the postgres runs (null when they did not run). */
  readonly postgres: { readonly version: string; readonly settings: Readonly<Record<string, string>> } | null;
}

const histogram = () => new LatencyHistogram({ bucketMs: 0.05, rangeMs: 5000 });
const HISTORY = { historySize: 1000, historyTtlS: 3600 };

/** Runs `worker(loopIndex)` on `concurrency` loops until `durationS` passes; returns calls done. */
async function loop(concurrency: number, durationS: number, worker: (i: number) => Promise<void>): Promise<number> {
  const end = performance.now() + durationS * 1000;
  let calls = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      while (performance.now() < end) {
        await worker(i);
        calls++;
      }
    }),
  );
  return calls;
}

/** The collections written: the default config's `sensores` (channel `sensors`), or 16 of its shape on channels bench-0 … bench-15. */
function benchChannels(channels: number): { env: Record<string, string>; collections: CollectionSpec[]; urls: string[]; names: string[] } {
  if (channels === 1) {
    const sensores = parseChannelsConfig(DEFAULT_CHANNELS, HISTORY, 'extraccion').collections.find((c) => c.path === 'sensores')!;
    return { env: {}, collections: [sensores], urls: ['/api/v1/test-sensors/'], names: ['sensors'] };
  }
  const fields = { tipo: { type: 'string', maxLength: 100, required: true }, descripcion: { type: 'string', maxLength: 1000 } };
  const raw = {
    collections: Array.from({ length: channels }, (_, i) => ({
      path: `bench${i}`,
      channel: `bench-${i}`,
      entity_type: 'sensor',
      test_path: `test-bench${i}`,
      fields,
    })),
  };
  const collections = [...parseChannelsConfig(raw, HISTORY, 'extraccion').collections];
  return {
    env: { GATEWAY_CHANNELS: JSON.stringify(raw) },
    collections,
    urls: collections.map((c) => `/api/v1/${c.testPath}/`),
    names: collections.map((c) => c.channel),
  };
}

function sqliteAlone(collections: CollectionSpec[], durationS: number): Rate {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sqlite-'));
  try {
    const db = openDatabase(dir);
    const store = new EntityStore(db, DEFAULT_MAX_JSON_DEPTH);
    const ms = histogram();
    const end = performance.now() + durationS * 1000;
    let writes = 0;
    while (performance.now() < end) {
      const t0 = performance.now();
      store.create(collections[writes % collections.length], { tipo: 'bench', descripcion: String(t0) });
      ms.record(performance.now() - t0);
      writes++;
    }
    db.close();
    return { writesPerS: writes / durationS, ms: ms.summary() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The PostgreSQL ceilings on a fresh database: the driver's own create (PgEntities.create: one
 * statement, the id, entity, head, log and outbox rows in CTEs, prepared per connection), then a
 * plain INSERT of the same JSON, each by `concurrency` loops on as many connections.
 */
async function postgresAlone(
  url: string,
  collections: CollectionSpec[],
  concurrency: number,
  durationS: number,
): Promise<{ storeAlone: Rate; plainInsert: Rate }> {
  const pool = createPgPool(url, { max: concurrency, onIdleError: () => {} });
  await migrate(pool);
  const store = new PostgresStore(pool, { maxJsonDepth: DEFAULT_MAX_JSON_DEPTH, ownsPool: false });
  try {
    let n = 0;
    const measure = async (write: () => Promise<unknown>): Promise<Rate> => {
      await loop(concurrency, Math.min(1, durationS), () => write().then(() => undefined)); // warm: connections, prepared statements
      const ms = histogram();
      const calls = await loop(concurrency, durationS, async () => {
        const t0 = performance.now();
        await write();
        ms.record(performance.now() - t0);
      });
      return { writesPerS: calls / durationS, ms: ms.summary() };
    };
    const storeAlone = await measure(() =>
      store.entities.create(collections[n++ % collections.length], { tipo: 'bench', descripcion: String(performance.now()) }),
    );
    await pool.query('CREATE TABLE bench_plain (id bigserial PRIMARY KEY, collection text NOT NULL, data text NOT NULL, created_at text NOT NULL)');
    const plainInsert = await measure(() =>
      pool.query({
        name: 'bench-plain',
        text: 'INSERT INTO bench_plain (collection, data, created_at) VALUES ($1, $2, $3)',
        values: [
          collections[n++ % collections.length].path,
          JSON.stringify({ tipo: 'bench', descripcion: String(performance.now()) }),
          new Date().toISOString(),
        ],
      }),
    );
    return { storeAlone, plainInsert };
  } finally {
    await store.close();
    await pool.end();
  }
}

/** The server's version and the settings that decide a commit's cost. */
async function postgresInfo(url: string): Promise<NonNullable<RestResult['postgres']>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version;
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'wal_level', 'shared_buffers', 'max_connections', 'commit_delay')`,
    );
    return { version, settings: Object.fromEntries(rows.map((r) => [r.name, r.unit ? `${r.setting} ${r.unit}` : r.setting])) };
  } finally {
    await client.end();
  }
}

interface Case {
  readonly backend: RestBackend;
  readonly channels: number;
  readonly concurrency: number;
  /** Writes/s on a fixed schedule (open loop, at most `concurrency` in flight); undefined: closed loop, each writer as fast as it can. */
  readonly rate?: number;
}

/**
 * The cases of one backend: 1 writer (unless the sizes leave it out) and `concurrency` writers on
 * one channel, then `concurrency` on 16; SQLite also `pacedRate` writes/s on one channel.
 */
function cases(backend: RestBackend, sizes: RestSizes): Case[] {
  return [
    ...[...new Set([...(sizes.oneWriter ? [1] : []), sizes.concurrency])].map((concurrency) => ({ backend, channels: 1, concurrency })),
    ...(backend === 'sqlite' && sizes.pacedRate > 0 ? [{ backend, channels: 1, concurrency: sizes.concurrency, rate: sizes.pacedRate }] : []),
    { backend, channels: MANY_CHANNELS, concurrency: sizes.concurrency },
  ];
}

/**
 * Calls `write` `rate` times a second for `durationS` on a fixed schedule, at most `concurrency` at
 * once (a send due while all are busy waits for one); returns the sends more than 2 ms late.
 */
async function paced(rate: number, concurrency: number, durationS: number, write: () => Promise<void>): Promise<number> {
  const total = Math.round(rate * durationS);
  const started = performance.now();
  let sent = 0;
  let late = 0;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  const running = new Set<Promise<void>>();
  while (sent < total) {
    const due = started + (sent * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait - 1));
    while (performance.now() < due) await new Promise((r) => setImmediate(r));
    while (inFlight >= concurrency) await new Promise<void>((r) => (wake = r));
    if (performance.now() - due > 2) late++;
    sent++;
    inFlight++;
    const p: Promise<void> = write().finally(() => {
      inFlight--;
      running.delete(p);
      const w = wake;
      wake = null;
      w?.();
    });
    running.add(p);
  }
  await Promise.all(running);
  return late;
}

export async function restWrites(
  repoRoot: string,
  mqttUrl: string,
  sizes: RestSizes,
  say: (l: string) => void,
  errors: string[],
  backends: readonly RestBackend[] = REST_BACKENDS,
): Promise<RestResult> {
  const runs: RestRun[] = [];
  if (backends.includes('sqlite')) for (const c of cases('sqlite', sizes)) runs.push(await restRun(repoRoot, mqttUrl, sizes, c, undefined, say));
  if (!backends.includes('postgres')) return { runs, postgres: null };
  let server: Postgres;
  try {
    say('rest: starting PostgreSQL (fsync and synchronous_commit on)');
    server = await startPostgres({ durable: true, settings: ['max_connections = 100'] });
  } catch (err) {
    errors.push(`PostgreSQL runs not done: ${(err as Error).message.split('\n')[0]}`);
    return { runs, postgres: null };
  }
  try {
    const info = await postgresInfo(server.url);
    for (const c of cases('postgres', sizes)) runs.push(await restRun(repoRoot, mqttUrl, sizes, c, server, say));
    return { runs, postgres: info };
  } finally {
    await server.stop();
  }
}

/** `--cpu-prof` into BENCH_GATEWAY_CPU_PROF (a directory), or nothing. */
const cpuProfile = (): string[] => {
  const dir = process.env.BENCH_GATEWAY_CPU_PROF;
  if (!dir) return [];
  mkdirSync(resolve(dir), { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${resolve(dir)}`];
};

async function restRun(repoRoot: string, mqttUrl: string, sizes: RestSizes, c: Case, server: Postgres | undefined, say: (l: string) => void): Promise<RestRun> {
  const errors: string[] = [];
  const spread = benchChannels(c.channels);
  const databaseUrl = server ? await server.newDatabase(`bench_${c.channels}_${c.concurrency}_${Date.now() % 1e6}`) : undefined;
  // The nodes share the cluster key (unset, each would drop the other's channel events, left to the head poll).
  const cluster: Record<string, string> = databaseUrl ? { GATEWAY_DATABASE_URL: databaseUrl, GATEWAY_CLUSTER_KEY: randomBytes(32).toString('hex') } : {};
  const env = { ...spread.env, ...cluster };
  const start = () => startGateway({ repoRoot, mqttUrl, logLevel: 'info', startTimeoutMs: 30_000, env, execArgv: cpuProfile() });
  const gateways: GatewayProcess[] = [];
  const sockets: WebSocket[] = [];
  try {
    gateways.push(await start());
    if (server) gateways.push(await start()); // A then B: B's migrations find nothing to do
    const writer = gateways[0];
    const watcher = gateways.at(-1)!;
    const base = `http://127.0.0.1:${writer.port}`;
    const toSubscriber = histogram();
    let received = 0;
    for (const channel of spread.names) {
      for (let i = 0; i < sizes.subscribers; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${watcher.port}/api/v1/ws?channel=${channel}`);
        ws.on('message', (data: Buffer) => {
          const frame = JSON.parse(data.toString()) as { type: string; data: { descripcion?: string } };
          if (frame.type !== 'entity_event') return;
          toSubscriber.record(performance.now() - Number(frame.data.descripcion));
          received++;
        });
        await new Promise((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
        sockets.push(ws);
      }
    }

    const where = server ? `PostgreSQL, writes on node A, subscribers on node B` : 'SQLite, one node';
    const pace = c.rate === undefined ? '' : `, paced at ${c.rate.toLocaleString('en-US')} writes/s`;
    say(`rest: ${where}: ${c.concurrency} writers${pace} for ${sizes.durationS}s on ${c.channels} channel(s), ${sizes.subscribers} subscribers each`);
    const http = histogram();
    let failed = 0;
    let ok = 0;
    let sentCount = 0;
    const cpuBefore = gateways.map((g) => g.cpuTimeMs() ?? NaN);
    const started = performance.now();
    const write = async () => {
      const path = spread.urls[sentCount++ % spread.urls.length];
      const sent = performance.now();
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tipo: 'bench', descripcion: String(sent) }),
      });
      await res.arrayBuffer();
      http.record(performance.now() - sent);
      if (res.status === 201) ok++;
      else if (failed++ === 0) errors.push(`write answered ${res.status}`);
    };
    const lateSends = c.rate === undefined ? 0 : await paced(c.rate, c.concurrency, sizes.durationS, write);
    if (c.rate === undefined) await loop(c.concurrency, sizes.durationS, write);
    const elapsedS = (performance.now() - started) / 1000;
    const gatewayCpuPct = gateways.map((g, i) => ((g.cpuTimeMs() ?? NaN) - cpuBefore[i]) / elapsedS / 10);
    const expected = ok * sizes.subscribers;
    const deadline = Date.now() + 10_000;
    while (received < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

    const baselineS = Math.max(1, sizes.durationS / 2);
    say(`rest: baselines (${server ? 'PostgreSQL alone: the create statement, a plain INSERT' : 'SQLite alone'}; GET /healthz)`);
    const alone = server
      ? await postgresAlone(
          await server.newDatabase(`bench_alone_${c.channels}_${c.concurrency}_${Date.now() % 1e6}`),
          spread.collections,
          c.concurrency,
          baselineS,
        )
      : { storeAlone: sqliteAlone(spread.collections, baselineS), plainInsert: undefined };
    const healthzCalls = await loop(c.concurrency, baselineS, async () => {
      await (await fetch(`${base}/healthz`)).arrayBuffer();
    });
    return {
      backend: c.backend,
      nodes: gateways.length,
      channels: c.channels,
      concurrency: c.concurrency,
      ...(c.rate === undefined ? {} : { paced: { rate: c.rate, lateSends } }),
      subscribers: sizes.subscribers,
      writes: ok,
      writesPerS: ok / elapsedS,
      failedWrites: failed,
      httpMs: http.summary(),
      toSubscriberMs: toSubscriber.summary(),
      lost: Math.max(0, expected - received),
      storeAlone: alone.storeAlone,
      ...(alone.plainInsert ? { plainInsert: alone.plainInsert } : {}),
      healthzPerS: healthzCalls / baselineS,
      gatewayCpuPct,
      errors,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    for (const g of gateways.reverse()) await g.stop();
  }
}
