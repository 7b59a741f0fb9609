/**
 * One measured load run against a server that is already listening: connect the clients, fix the
 * measurement window, publish at a fixed rate (warm-up, then measured), drain until every expected
 * delivery arrived or nothing moved for a while, collect. The clock stops at the last measured
 * delivery, not at the last publish. Shared by `bench/latency.ts` and the suite.
 */
import { performance as perfHooks } from 'node:perf_hooks';
import { devicesForConnection, deviceIds, watcherCounts } from './assignment.js';
import { ClientPool } from './client-pool.js';
import type { LatencyHistogram } from './histogram.js';
import { connectPublisher, nowTs, pace, payloadHead, telemetryPayload } from './publisher.js';
import type { Dialect, Encoding, WorkerCounters } from './worker-messages.js';

export const BUCKET_MS = 0.01;
export const RANGE_MS = 1000;
/** Drain ends early when no delivery arrived for this long (progress reports are ≤ 250 ms old). */
const DRAIN_IDLE_MS = 1500;

export type { Dialect } from './worker-messages.js';

/**
 * What sends the run's messages. The default publishes each device's telemetry on `gps/<id>` (MQTT,
 * QoS 0); a scenario can bring its own (the Azure bus topic, the Azure REST data plane).
 */
export interface MessageSender {
  /** Sends device `device`'s message stamped `ts` (taken immediately before the call). Must not block. */
  send(device: number, ts: number): void;
  /** Resolves once every message sent so far has been handed over (e.g. every HTTP request answered). */
  flush(): Promise<void>;
  /** Problems seen so far (a refused request, a dropped connection), for the run's errors. */
  errors(): string[];
  close(): void;
}

/** The default sender: device telemetry on `gps/<id>`, one MQTT publisher with Nagle off. */
async function mqttTelemetrySender(mqttUrl: string, ids: readonly string[]): Promise<MessageSender> {
  const client = await connectPublisher(loopbackMqtt(mqttUrl));
  let lost: string | undefined;
  client.on('close', () => (lost ??= 'publisher connection closed during the run'));
  client.on('error', (err) => (lost ??= `publisher error: ${err.message}`));
  // Payload text around TS is fixed per device, so the bytes on the wire vary only in TS.
  const heads = ids.map(payloadHead);
  const topics = ids.map((id) => `gps/${id}`);
  return {
    send: (device, ts) => void client.publish(topics[device], telemetryPayload(heads[device], ts), { qos: 0 }),
    flush: async () => undefined,
    errors: () => (lost === undefined ? [] : [lost]),
    close: () => void client.end(true),
  };
}

interface LoadSpec {
  readonly host: string;
  readonly port: number;
  /** Several nodes: the connections split evenly over these ports (ClientPool's `ports`); absent: all on `port`. */
  readonly ports?: readonly number[];
  readonly path: string;
  readonly dialect?: Dialect;
  /** Broker the server consumes; must be loopback. */
  readonly mqttUrl: string;
  readonly encoding: Encoding;
  readonly connections: number;
  readonly perConn: number;
  readonly devices: number;
  readonly rate: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly drainTimeoutS: number;
  readonly clientThreads: number;
  readonly openConcurrency: number;
  /** CPU time of the server process in ms, sampled at the window's start and end. */
  readonly serverCpuTimeMs?: () => number | undefined;
  /** Called once a second with a progress line. */
  readonly progress?: (line: string) => void;
  /** Called after the clients connected, before publishing (e.g. to sample idle memory). */
  readonly connected?: (openedMs: number) => Promise<void> | void;
  /** Makes the sender of this run's messages; default: `mqttTelemetrySender(mqttUrl, device ids)`. */
  readonly sender?: () => Promise<MessageSender>;
  /** Azure dialect: cumulative sequenceAck after this many messages, and every `ackIntervalMs` (defaults 100 and 1000). */
  readonly ackEvery?: number;
  readonly ackIntervalMs?: number;
  /** Called when the measurement window opens and once the drain ends (e.g. to sample the server's threads). */
  readonly onWindow?: (edge: 'start' | 'end') => void;
}

export interface LoadOutcome {
  readonly openedMs: number;
  readonly published: { readonly measured: number; readonly total: number; readonly maxLagMs: number };
  readonly expected: number;
  readonly counters: WorkerCounters;
  readonly histogram: LatencyHistogram;
  readonly drainMs: number;
  readonly drainComplete: boolean;
  /** Seconds over which the measured deliveries arrived (at least the window). */
  readonly deliverySpanS: number;
  readonly cpu: {
    readonly clientProcessPct: number;
    readonly clientWorkerElu: number[];
    readonly publisherElu: number;
    readonly serverPct: number | null;
  };
  readonly errors: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

export function loopbackMqtt(url: string): string {
  const target = new URL(url);
  if (!['127.0.0.1', 'localhost', '[::1]', '0.0.0.0'].includes(target.hostname)) {
    throw new Error(`broker ${url} is not on loopback; refusing to publish there`);
  }
  target.hostname = '127.0.0.1';
  return target.toString();
}

export async function runLoad(s: LoadSpec): Promise<LoadOutcome> {
  const errors: string[] = [];
  const say = s.progress ?? (() => undefined);
  const ids = deviceIds(s.devices);
  const connections = Array.from({ length: s.connections }, (_, c) => devicesForConnection(c, s.perConn, s.devices).map((d) => ids[d]));
  const watchers = watcherCounts(s.connections, s.perConn, s.devices);

  const openedAt = performance.now();
  const pool = await ClientPool.start({
    host: s.host,
    port: s.port,
    ...(s.ports ? { ports: s.ports } : {}),
    path: s.path,
    ...(s.dialect !== undefined && s.dialect !== 'plain' ? { dialect: s.dialect } : {}),
    encoding: s.encoding,
    ...(s.ackEvery !== undefined ? { ackEvery: s.ackEvery } : {}),
    ...(s.ackIntervalMs !== undefined ? { ackIntervalMs: s.ackIntervalMs } : {}),
    connections,
    threads: s.clientThreads,
    openConcurrency: s.openConcurrency,
    handshakeTimeoutMs: 15_000,
    bucketMs: BUCKET_MS,
    rangeMs: RANGE_MS,
  });
  let sender: MessageSender | undefined;
  try {
    const openedMs = performance.now() - openedAt;
    say(`opened ${fmt(s.connections)} connections in ${fmt(openedMs)} ms on ${pool.threadCount} client thread(s)`);
    await s.connected?.(openedMs);

    sender = await (s.sender ?? (() => mqttTelemetrySender(s.mqttUrl, ids)))();
    const out = sender;

    // The window is fixed before the first publish and acknowledged by every worker, so no
    // measured message can arrive at a worker that does not know it yet.
    const t0 = nowTs();
    const start = t0 + s.warmupS * 1000;
    const end = start + s.durationS * 1000;
    await pool.setWindow(start, end);

    let published = 0;
    let measuredPublished = 0;
    let expected = 0;
    let cpuAtStart = process.cpuUsage();
    let eluAtStart = pool.eventLoopUtilization();
    let mainEluAtStart = perfHooks.eventLoopUtilization();
    let serverCpuAtStart = s.serverCpuTimeMs?.();
    const startTimer = setTimeout(
      () => {
        cpuAtStart = process.cpuUsage();
        eluAtStart = pool.eventLoopUtilization();
        mainEluAtStart = perfHooks.eventLoopUtilization();
        serverCpuAtStart = s.serverCpuTimeMs?.();
        s.onWindow?.('start');
      },
      Math.max(0, start - nowTs()),
    );

    let phase = s.warmupS > 0 ? 'warm-up' : 'measure';
    let last = { at: performance.now(), frames: 0 };
    const progress = setInterval(() => {
      const p = pool.progress();
      const now = performance.now();
      const perS = ((p.frames - last.frames) * 1000) / (now - last.at);
      last = { at: now, frames: p.frames };
      const t = nowTs();
      if (phase === 'warm-up' && t >= start) phase = 'measure';
      const clock =
        phase === 'warm-up' ? `${((t - t0) / 1000).toFixed(0)}/${s.warmupS}s` : phase === 'measure' ? `${((t - start) / 1000).toFixed(0)}/${s.durationS}s` : '';
      say(
        `[${phase.padEnd(7)} ${clock.padStart(6)}] published ${fmt(published)} (${fmt(measuredPublished)} measured), ` +
          `received ${fmt(p.measured)} of ${fmt(expected)} expected, ${fmt(perS)} frames/s` +
          (p.unexpectedCloses > 0 ? `, ${p.unexpectedCloses} closed by server` : ''),
      );
    }, 1000);

    const paced = await pace({
      rate: s.rate,
      devices: s.devices,
      lagFromTs: start,
      endTs: end,
      send: (device, ts) => {
        out.send(device, ts);
        published++;
        if (ts < start) return;
        measuredPublished++;
        expected += watchers[device];
      },
    });
    clearTimeout(startTimer);
    // A sender with requests in flight (REST) has not handed everything over yet.
    await out.flush();
    errors.push(...out.errors());

    // Drain: every expected delivery, or no movement for DRAIN_IDLE_MS, or the drain timeout.
    phase = 'drain';
    const drainStart = performance.now();
    let lastCount = -1;
    let lastChange = drainStart;
    let drainComplete = false;
    for (;;) {
      const p = pool.progress();
      const now = performance.now();
      if (p.measured >= expected) {
        drainComplete = true;
        break;
      }
      if (p.measured !== lastCount) {
        lastCount = p.measured;
        lastChange = now;
      }
      if (now - lastChange > DRAIN_IDLE_MS || now - drainStart > s.drainTimeoutS * 1000) break;
      await sleep(50);
    }
    const drainMs = performance.now() - drainStart;
    const cpu = process.cpuUsage(cpuAtStart);
    const elu = pool.eventLoopUtilization(eluAtStart);
    const mainElu = perfHooks.eventLoopUtilization(mainEluAtStart);
    const serverCpuAtEnd = s.serverCpuTimeMs?.();
    s.onWindow?.('end');
    const cpuWallMs = nowTs() - start;
    clearInterval(progress);

    const result = await pool.finish();
    const c = result.counters;
    if (c.measured > expected) errors.push(`received ${c.measured - expected} more deliveries than expected (duplicates?)`);
    errors.push(...result.closeErrors.map((e) => `connection closed: ${e}`));
    return {
      openedMs,
      published: { measured: measuredPublished, total: paced.published, maxLagMs: paced.maxLagMs },
      expected,
      counters: c,
      histogram: result.histogram,
      drainMs,
      drainComplete,
      deliverySpanS: Math.max(s.durationS, (c.lastMeasuredAt - start) / 1000),
      cpu: {
        clientProcessPct: ((cpu.user + cpu.system) / 1000 / cpuWallMs) * 100,
        clientWorkerElu: elu.map((e) => e.utilization),
        publisherElu: mainElu.utilization,
        serverPct: serverCpuAtStart !== undefined && serverCpuAtEnd !== undefined ? ((serverCpuAtEnd - serverCpuAtStart) / cpuWallMs) * 100 : null,
      },
      errors,
    };
  } finally {
    sender?.close();
    await pool.terminate();
  }
}
