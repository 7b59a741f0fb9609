/**
 * The suite's scenarios (bench/README.md explains each). Every scenario runs against one running
 * target and returns plain numbers; comparisons happen in the report.
 */
import { devicesForConnection, deviceIds } from '../load/assignment.js';
import { ClientPool } from '../load/client-pool.js';
import { BUCKET_MS, RANGE_MS, runLoad, type LoadOutcome, type MessageSender } from '../load/load-run.js';
import type { LatencySummary } from '../load/histogram.js';
import type { Encoding } from '../load/worker-messages.js';
import type { RunningTarget } from './targets.js';
import { mappingBreakdown, type MemoryProbe, type ThreadSample } from '../load/memory-sample.js';

export interface Sizes {
  readonly fanoutConnections: readonly number[];
  readonly fanoutRate: number;
  readonly broadcastConnections: number;
  readonly broadcastRate: number;
  readonly sweepConnections: number;
  readonly sweepRates: readonly number[];
  readonly memoryConnections: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly clientThreads: number;
}

/** Full run: the sizes. 2,000 msg/s × 5 watchers per device gives 100,000 deliveries/s at 10,000 connections. */
export const FULL: Sizes = {
  fanoutConnections: [500, 2000, 10_000],
  fanoutRate: 2000,
  broadcastConnections: 2000,
  broadcastRate: 50,
  sweepConnections: 1000,
  sweepRates: [500, 1000, 2000, 4000, 8000, 16_000],
  memoryConnections: 10_000,
  warmupS: 2,
  durationS: 5,
  clientThreads: 2,
};

/** `--quick`: the same scenarios, small enough for about a minute. */
export const QUICK: Sizes = {
  fanoutConnections: [500],
  fanoutRate: 1000,
  broadcastConnections: 300,
  broadcastRate: 50,
  sweepConnections: 300,
  sweepRates: [1000, 4000],
  memoryConnections: 1000,
  warmupS: 1,
  durationS: 2,
  clientThreads: 1,
};

/** `--smoke`: tiny sizes for the test suite, which only proves the suite works (no timing thresholds there). */
export const SMOKE: Sizes = {
  fanoutConnections: [40],
  fanoutRate: 200,
  broadcastConnections: 40,
  broadcastRate: 20,
  sweepConnections: 40,
  sweepRates: [200],
  memoryConnections: 200,
  warmupS: 0.5,
  durationS: 1,
  clientThreads: 1,
};

export interface RunNumbers {
  readonly connections: number;
  readonly encoding: Encoding;
  readonly rate: number;
  readonly latencyMs: LatencySummary;
  readonly deliveriesPerS: number;
  readonly expected: number;
  readonly received: number;
  readonly lost: number;
  /** Conflations and drops the server reported itself (gateway only), else null. */
  readonly serverConflations: number | null;
  readonly serverCpuPct: number | null;
  /** Server CPU time per delivery, µs: efficiency, robust to a load client that saturates first. */
  readonly serverUsPerDelivery: number | null;
  readonly serverRssMb: number | null;
  readonly clientCpuPct: number;
  readonly clientWorkerElu: number[];
  readonly publisherLagMs: number;
  /** Mean size of a measured message as the client received it (WebSocket payload, bytes). */
  readonly frameBytes: number | null;
  /** Frames the load client sent (Azure sequenceAck), 0 for the other dialects. */
  readonly clientAcks: number;
  /** Connections the server closed during the run. */
  readonly closedByServer: number;
  readonly errors: string[];
}

interface LoadShape {
  readonly connections: number;
  readonly perConn: number;
  readonly devices: number;
  readonly rate: number;
  readonly encoding: Encoding;
  /** Several nodes: the connections split evenly over these ports; default: all on the target's port. */
  readonly ports?: readonly number[];
  /** Default: the telemetry publisher (gps/<id>). */
  readonly sender?: () => Promise<MessageSender>;
  /** Azure dialect's acknowledgements (worker-messages.ts). */
  readonly ackEvery?: number;
  readonly ackIntervalMs?: number;
  /** What the server says it dropped, read before and after; default: the gateway's conflations and drops. */
  readonly serverCounters?: () => Promise<number | null>;
  /** The measurement window opened / the drain ended (load-run.ts `onWindow`). */
  readonly onWindow?: (edge: 'start' | 'end') => void;
}

/** What a measurement needs of the sizes. */
export type RunSizes = Pick<Sizes, 'warmupS' | 'durationS' | 'clientThreads'>;

/**
 * GET on a target, tried twice: fetch keeps its connection alive between calls, and a server that
 * closes idle connections (uWS after 10 s, about one measured run) can close it just as it is reused.
 */
export async function getTwice(url: string): Promise<Response> {
  try {
    return await fetch(url);
  } catch {
    return fetch(url);
  }
}

async function serverCounters(target: RunningTarget): Promise<number | null> {
  if (target.spec.name !== 'gateway') return null;
  const res = await getTwice(`http://127.0.0.1:${target.server.port}/api/v1/stream/stats`);
  const stats = (await res.json()) as { conflations_total: number; drops_total: number };
  return stats.conflations_total + stats.drops_total;
}

/**
 * Waits until the server is idle (under 5 % of a core over 250 ms), at most 10 s, so one run's
 * teardown (thousands of closes, GC) does not land in the next run's window.
 */
export async function settle(target: RunningTarget): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const before = target.server.cpuTimeMs();
    await new Promise((r) => setTimeout(r, 250));
    const after = target.server.cpuTimeMs();
    if (before === undefined || after === undefined || after - before < 12.5) return;
  }
}

export async function measure(target: RunningTarget, shape: LoadShape, sizes: RunSizes, say: (line: string) => void): Promise<RunNumbers> {
  await settle(target);
  const counters = shape.serverCounters ?? (() => serverCounters(target));
  const countersBefore = await counters();
  const run: LoadOutcome = await runLoad({
    host: '127.0.0.1',
    port: target.server.port,
    ...(shape.ports ? { ports: shape.ports } : {}),
    path: target.spec.path,
    dialect: target.spec.dialect,
    mqttUrl: target.mqttUrl,
    encoding: shape.encoding,
    connections: shape.connections,
    perConn: shape.perConn,
    devices: shape.devices,
    rate: shape.rate,
    warmupS: sizes.warmupS,
    durationS: sizes.durationS,
    drainTimeoutS: 5,
    clientThreads: sizes.clientThreads,
    openConcurrency: 200,
    serverCpuTimeMs: () => target.server.cpuTimeMs(),
    progress: say,
    ...(shape.sender ? { sender: shape.sender } : {}),
    ...(shape.ackEvery !== undefined ? { ackEvery: shape.ackEvery } : {}),
    ...(shape.ackIntervalMs !== undefined ? { ackIntervalMs: shape.ackIntervalMs } : {}),
    ...(shape.onWindow ? { onWindow: shape.onWindow } : {}),
  });
  const countersAfter = await counters();
  const rss = target.server.rssBytes();
  const received = run.counters.measured;
  return {
    connections: shape.connections,
    encoding: shape.encoding,
    rate: shape.rate,
    latencyMs: run.histogram.summary(),
    deliveriesPerS: received / run.deliverySpanS,
    expected: run.expected,
    received,
    lost: Math.max(0, run.expected - received),
    serverConflations: countersBefore === null || countersAfter === null ? null : countersAfter - countersBefore,
    serverCpuPct: run.cpu.serverPct,
    serverUsPerDelivery: run.cpu.serverPct === null || received === 0 ? null : ((run.cpu.serverPct / 100) * 1e6) / (received / run.deliverySpanS),
    serverRssMb: rss === undefined ? null : rss / 1048576,
    clientCpuPct: run.cpu.clientProcessPct,
    clientWorkerElu: run.cpu.clientWorkerElu,
    publisherLagMs: run.published.maxLagMs,
    frameBytes: received === 0 ? null : run.counters.measuredBytes / received,
    clientAcks: run.counters.acks,
    closedByServer: run.counters.unexpectedCloses,
    errors: run.errors,
  };
}

/**
 * 1. Fan-out latency: connections each watching 5 of 1,000 devices at a fixed publish rate.
 * Sizes outside, encodings inside, so no small run follows a 10,000-connection teardown.
 */
export async function fanout(
  target: RunningTarget,
  sizes: Sizes,
  encodings: readonly Encoding[],
  say: (l: string) => void,
): Promise<Partial<Record<Encoding, RunNumbers[]>>> {
  const out: Partial<Record<Encoding, RunNumbers[]>> = {};
  for (const connections of sizes.fanoutConnections) {
    for (const encoding of encodings) {
      say(`fan-out ${connections} connections, ${encoding}`);
      (out[encoding] ??= []).push(await measure(target, { connections, perConn: 5, devices: 1000, rate: sizes.fanoutRate, encoding }, sizes, say));
    }
  }
  return out;
}

/** 3. Broadcast: one channel (device), every connection subscribed. */
export async function broadcast(target: RunningTarget, sizes: Sizes, say: (l: string) => void): Promise<RunNumbers> {
  say(`broadcast to ${sizes.broadcastConnections} connections`);
  return measure(target, { connections: sizes.broadcastConnections, perConn: 1, devices: 1, rate: sizes.broadcastRate, encoding: 'json' }, sizes, say);
}

export interface SweepResult {
  readonly steps: RunNumbers[];
  /** Highest publish rate whose p99 stayed under 10 ms with nothing lost. */
  readonly heldRate: number | null;
  /** Most deliveries per second any step reached (the saturation throughput). */
  readonly maxDeliveriesPerS: number;
}

export const SWEEP_P99_LIMIT_MS = 10;

/**
 * 2. Throughput sweep: each device watched by 20 % of the connections; the publish rate doubles
 * until deliveries stop growing (less than 5 % more than the step before) or the rates run out.
 * The highest rate whose p99 stayed under 10 ms with nothing lost is the rate that "held"; the
 * most deliveries per second any step reached is the saturated throughput.
 */
export async function sweep(target: RunningTarget, sizes: Sizes, say: (l: string) => void): Promise<SweepResult> {
  const steps: RunNumbers[] = [];
  let heldRate: number | null = null;
  for (const rate of sizes.sweepRates) {
    say(`sweep at ${rate} msg/s`);
    const step = await measure(target, { connections: sizes.sweepConnections, perConn: 5, devices: 25, rate, encoding: 'json' }, sizes, say);
    steps.push(step);
    if (step.latencyMs.p99 < SWEEP_P99_LIMIT_MS && step.lost === 0) heldRate = rate;
    const previous = steps.at(-2);
    if (previous && step.deliveriesPerS < previous.deliveriesPerS * 1.05) break;
  }
  return { steps, heldRate, maxDeliveriesPerS: Math.max(...steps.map((s) => s.deliveriesPerS)) };
}

export interface ThreadMemory {
  readonly thread: string;
  /** V8 heap resident (total_physical_size) and live (used) with no client, in MB. */
  readonly baseHeapPhysicalMb: number;
  readonly baseHeapUsedMb: number;
  /** The same with the idle connections open, and live after a full GC. */
  readonly heapPhysicalMb: number | null;
  readonly heapUsedMb: number | null;
  readonly heapUsedAfterGcMb: number | null;
  /** Buffers and other memory JS objects hold outside the heap, with no client. */
  readonly baseExternalMb: number;
  /** The young generation limit the thread was started with (48 by default); 0 on the main thread. */
  readonly maxYoungGenerationSizeMb: number;
}

export interface MemoryResult {
  readonly connections: number;
  readonly rssBeforeMb: number | null;
  readonly rssAfterMb: number | null;
  /** (RSS after − before) / connections, in KB. */
  readonly kbPerConnection: number | null;
  /** RSS after a full GC in every thread, the connections still open (what is live, not garbage). */
  readonly rssAfterGcMb?: number | null;
  /** By thread (the probe, bench/load/memory-probe.cts); empty where it did not answer. */
  readonly threads?: readonly ThreadMemory[];
  /** RSS with no client by mapping: anonymous, and the mapped files (code). */
  readonly baseMappings?: {
    readonly anonymousMb: number;
    readonly filesMb: number;
    readonly files: ReadonlyArray<{ readonly file: string; readonly mb: number }>;
  } | null;
}

const MB = 1048576;

function threadTable(before: readonly ThreadSample[], after: readonly ThreadSample[], afterGc: readonly ThreadSample[]): ThreadMemory[] {
  return before.map((b) => {
    const a = after.find((s) => s.threadId === b.threadId);
    const g = afterGc.find((s) => s.threadId === b.threadId);
    return {
      thread: b.thread,
      baseHeapPhysicalMb: b.heapPhysical / MB,
      baseHeapUsedMb: b.heapUsed / MB,
      heapPhysicalMb: a ? a.heapPhysical / MB : null,
      heapUsedMb: a ? a.heapUsed / MB : null,
      heapUsedAfterGcMb: g ? g.heapUsed / MB : null,
      baseExternalMb: b.externalMemory / MB,
      maxYoungGenerationSizeMb: b.maxYoungGenerationSizeMb,
    };
  });
}

/**
 * 4. Memory: RSS per idle connection (each watching 5 devices, nothing published), and the
 * process's memory with no client by thread (V8 heap per isolate) and by mapping (code).
 * RSS is read before anything is asked of the probe, and without a forced GC (as users see it).
 */
export async function memory(target: RunningTarget, probe: MemoryProbe, sizes: Sizes, say: (l: string) => void): Promise<MemoryResult> {
  const connections = sizes.memoryConnections;
  say(`memory with ${connections} idle connections`);
  const ids = deviceIds(1000);
  // Let the process settle after its start (pool threads loading, the first watchdog rounds).
  await new Promise((r) => setTimeout(r, 2000));
  const before = target.server.rssBytes();
  const mappings = mappingBreakdown(target.server.pid);
  const base = await probe.sample(false);
  const pool = await ClientPool.start({
    host: '127.0.0.1',
    port: target.server.port,
    path: target.spec.path,
    ...(target.spec.dialect !== 'plain' ? { dialect: target.spec.dialect } : {}),
    encoding: 'json',
    connections: Array.from({ length: connections }, (_, c) => devicesForConnection(c, 5, 1000).map((d) => ids[d])),
    threads: sizes.clientThreads,
    openConcurrency: 200,
    handshakeTimeoutMs: 15_000,
    bucketMs: BUCKET_MS,
    rangeMs: RANGE_MS,
  });
  try {
    // Let the server finish the work of the last handshakes (subscriptions, buffers) before sampling.
    await new Promise((r) => setTimeout(r, 1000));
    const after = target.server.rssBytes();
    const kb = before === undefined || after === undefined ? null : (after - before) / 1024 / connections;
    const loaded = await probe.sample(false);
    const collected = await probe.sample(true);
    const afterGc = target.server.rssBytes();
    return {
      connections,
      rssBeforeMb: before === undefined ? null : before / MB,
      rssAfterMb: after === undefined ? null : after / MB,
      kbPerConnection: kb,
      rssAfterGcMb: afterGc === undefined ? null : afterGc / MB,
      threads: threadTable(base, loaded, collected),
      baseMappings: mappings
        ? {
            anonymousMb: mappings.anonymous / MB,
            filesMb: mappings.files.reduce((sum, f) => sum + f.bytes, 0) / MB,
            files: mappings.files.slice(0, 6).map((f) => ({ file: f.file, mb: f.bytes / MB })),
          }
        : null,
    };
  } finally {
    await pool.terminate();
  }
}
