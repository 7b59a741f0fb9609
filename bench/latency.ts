/**
 * End-to-end latency benchmark: MQTT publish → gateway → WebSocket receive. See bench/README.md
 * and `--help`.
 *
 * Timeline: connect all clients → announce the window → publish (warm-up, then measured) → drain
 * until every expected delivery arrived or nothing moved for a while → collect. The clock stops at
 * the last measured delivery, not at the last publish.
 */
import { availableParallelism, loadavg } from 'node:os';
import { performance as perfHooks } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { devicesForConnection, deviceIds, watcherCounts } from './load/assignment.js';
import { ClientPool, type PoolResult } from './load/client-pool.js';
import { startGateway, type GatewayProcess } from './load/gateway-process.js';
import { HELP, parseBenchOptions, UsageError, type BenchOptions } from './load/options.js';
import { connectPublisher, nowTs, publishPaced } from './load/publisher.js';
import { formatReport, gitRevision, writeResult, type BenchResult } from './load/report.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url)); // dist/bench/latency.js → repo
const BUCKET_MS = 0.01;
const RANGE_MS = 1000;
/** Drain ends early when no delivery arrived for this long (progress reports are ≤ 250 ms old). */
const DRAIN_IDLE_MS = 1500;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function fetchStats(host: string, port: number): Promise<unknown> {
  try {
    const res = await fetch(`http://${host}:${port}/api/v1/stream/stats`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return { error: `HTTP ${res.status}` };
    return (await res.json()) as unknown;
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** Everything started during a run, stopped in reverse order; safe to call twice. */
class Resources {
  gateway: GatewayProcess | undefined;
  pool: ClientPool | undefined;
  publisher: MqttClient | undefined;
  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.publisher?.end(true);
    await this.pool?.terminate();
    if (this.gateway) {
      const exit = await this.gateway.stop();
      if (exit.killed) console.error('gateway did not exit within 10 s of SIGTERM; killed');
    }
  }
}

async function run(o: BenchOptions, res: Resources): Promise<BenchResult> {
  const errors: string[] = [];
  const date = new Date().toISOString();
  const loadAvgBefore = loadavg()[0];
  const gitRev = gitRevision(REPO_ROOT);

  let host: string;
  let port: number;
  let path: string;
  let mqttUrl: string;
  if (o.target) {
    ({ host, port, path, mqttUrl } = o.target);
  } else {
    process.stdout.write('starting gateway … ');
    res.gateway = await startGateway({ repoRoot: REPO_ROOT, threads: o.serverThreads, logLevel: o.serverLogLevel, startTimeoutMs: 20_000 });
    ({ port, mqttUrl } = res.gateway);
    host = '127.0.0.1';
    path = '/api/v1/stream';
    console.log(`pid ${res.gateway.pid}, ws://${host}:${port}${path}, ${mqttUrl}`);
  }
  const mqttTarget = new URL(mqttUrl);
  if (!['127.0.0.1', 'localhost', '[::1]', '0.0.0.0'].includes(mqttTarget.hostname)) {
    throw new Error(`gateway reported broker ${mqttUrl}, which is not loopback; refusing to publish there`);
  }
  if (mqttTarget.hostname !== '127.0.0.1') mqttTarget.hostname = '127.0.0.1';

  const ids = deviceIds(o.devices);
  const connections = Array.from({ length: o.connections }, (_, c) => devicesForConnection(c, o.perConn, o.devices).map((d) => ids[d]));
  const watchers = watcherCounts(o.connections, o.perConn, o.devices);

  const statsBefore = await fetchStats(host, port);
  const openedAt = performance.now();
  res.pool = await ClientPool.start({
    host,
    port,
    path,
    encoding: o.encoding,
    connections,
    threads: o.clientThreads,
    openConcurrency: o.openConcurrency,
    handshakeTimeoutMs: 15_000,
    bucketMs: BUCKET_MS,
    rangeMs: RANGE_MS,
  });
  const pool = res.pool;
  console.log(`opened ${fmt(o.connections)} connections in ${fmt(performance.now() - openedAt)} ms on ${pool.threadCount} client thread(s)`);

  res.publisher = await connectPublisher(mqttTarget.toString());
  let publisherLost: string | undefined;
  res.publisher.on('close', () => (publisherLost ??= 'publisher connection closed during the run'));
  res.publisher.on('error', (err) => (publisherLost ??= `publisher error: ${err.message}`));

  // The window is fixed before the first publish and acknowledged by every worker, so no
  // measured message can arrive at a worker that does not know it yet.
  const t0 = nowTs();
  const start = t0 + o.warmupS * 1000;
  const end = start + o.durationS * 1000;
  await pool.setWindow(start, end);

  let published = 0;
  let measuredPublished = 0;
  let expected = 0;
  let cpuAtStart = process.cpuUsage();
  let eluAtStart = pool.eventLoopUtilization();
  let mainEluAtStart = perfHooks.eventLoopUtilization();
  let serverCpuAtStart = res.gateway?.cpuTimeMs();
  const startTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    eluAtStart = pool.eventLoopUtilization();
    mainEluAtStart = perfHooks.eventLoopUtilization();
    serverCpuAtStart = res.gateway?.cpuTimeMs();
  }, Math.max(0, start - nowTs()));

  let phase = o.warmupS > 0 ? 'warm-up' : 'measure';
  let last = { at: performance.now(), frames: 0 };
  const progress = setInterval(() => {
    const p = pool.progress();
    const now = performance.now();
    const perS = ((p.frames - last.frames) * 1000) / (now - last.at);
    last = { at: now, frames: p.frames };
    const t = nowTs();
    if (phase === 'warm-up' && t >= start) phase = 'measure';
    const clock = phase === 'warm-up' ? `${((t - t0) / 1000).toFixed(0)}/${o.warmupS}s` : phase === 'measure' ? `${((t - start) / 1000).toFixed(0)}/${o.durationS}s` : '';
    console.log(
      `  [${phase.padEnd(7)} ${clock.padStart(6)}] published ${fmt(published)} (${fmt(measuredPublished)} measured), ` +
        `received ${fmt(p.measured)} of ${fmt(expected)} expected, ${fmt(perS)} frames/s` +
        (p.unexpectedCloses > 0 ? `, ${p.unexpectedCloses} closed by server` : ''),
    );
  }, 1000);

  const paced = await publishPaced({
    client: res.publisher,
    deviceIds: ids,
    rate: o.rate,
    lagFromTs: start,
    endTs: end,
    onPublish: (device, ts) => {
      published++;
      if (ts < start) return;
      measuredPublished++;
      expected += watchers[device];
    },
  });
  clearTimeout(startTimer);
  if (publisherLost) errors.push(publisherLost);

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
    if (now - lastChange > DRAIN_IDLE_MS || now - drainStart > o.drainTimeoutS * 1000) break;
    await sleep(50);
  }
  const drainMs = performance.now() - drainStart;
  const cpu = process.cpuUsage(cpuAtStart);
  const elu = pool.eventLoopUtilization(eluAtStart);
  const mainElu = perfHooks.eventLoopUtilization(mainEluAtStart);
  const serverCpuAtEnd = res.gateway?.cpuTimeMs();
  const cpuWallMs = nowTs() - start;
  clearInterval(progress);

  const statsAfter = await fetchStats(host, port);
  const result: PoolResult = await pool.finish();
  res.pool = undefined;
  res.publisher.end();
  res.publisher = undefined;

  const h = result.histogram;
  const c = result.counters;
  const received = c.measured;
  const lost = Math.max(0, expected - received);
  if (received > expected) errors.push(`received ${received - expected} more deliveries than expected (duplicates?)`);
  errors.push(...result.closeErrors.map((e) => `connection closed: ${e}`));
  // Deliveries per second over the measured window, or up to the last delivery if the fan-out
  // finished after it (the clock stops when the fan-out has been received, not at the last publish).
  const deliverySpanS = Math.max(o.durationS, (c.lastMeasuredAt - start) / 1000);
  const summary = h.summary();
  const lossPct = expected > 0 ? (lost / expected) * 100 : 0;
  const failed: string[] = [];
  if (o.maxP99Ms !== undefined && !(summary.p99 <= o.maxP99Ms)) failed.push(`p99 ${summary.p99.toFixed(2)} ms > --max-p99 ${o.maxP99Ms} ms`);
  if (o.maxLossPct !== undefined && lossPct > o.maxLossPct) failed.push(`loss ${lossPct.toFixed(3)} % > --max-loss ${o.maxLossPct} %`);

  return {
    benchmark: 'latency',
    schemaVersion: 1,
    date,
    gitRev,
    environment: {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: availableParallelism(),
      loadAvgBefore,
      loadAvgAfter: loadavg()[0],
    },
    options: { ...o, target: undefined },
    target: { mode: o.target ? 'external' : 'spawned', wsUrl: `ws://${host}:${port}${path}`, mqttUrl },
    window: { warmupS: o.warmupS, durationS: o.durationS, drainMs: Math.round(drainMs), drainComplete },
    publish: {
      measured: measuredPublished,
      total: paced.published,
      ratePerS: measuredPublished / o.durationS,
      maxLagMs: paced.maxLagMs,
    },
    deliveries: {
      expected,
      received,
      lost,
      lossPct,
      perS: received / deliverySpanS,
      early: c.early,
      late: c.late,
      control: c.control,
      unexpectedCloses: c.unexpectedCloses,
    },
    latencyMs: { ...summary, bucketMs: h.bucketMs },
    cpu: {
      clientProcessPct: ((cpu.user + cpu.system) / 1000 / cpuWallMs) * 100,
      clientWorkerElu: elu.map((e) => e.utilization),
      publisherElu: mainElu.utilization,
      serverPct:
        serverCpuAtStart !== undefined && serverCpuAtEnd !== undefined ? ((serverCpuAtEnd - serverCpuAtStart) / cpuWallMs) * 100 : null,
    },
    serverStats: { before: statsBefore, after: statsAfter },
    thresholds: { maxP99Ms: o.maxP99Ms, maxLossPct: o.maxLossPct, failed },
    histogram: h.sparse(),
    errors,
  };
}

async function main(): Promise<void> {
  let options: BenchOptions | 'help';
  try {
    options = parseBenchOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError) && !(err instanceof TypeError)) throw err;
    console.error(`bench: ${err.message}\nRun with --help for usage.`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    console.log(HELP);
    return;
  }
  const o = options;
  const res = new Resources();

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) process.exit(130); // second signal: the exit hook still kills the gateway
    interrupted = true;
    console.error(`\n${signal}: stopping the run`);
    void res.close().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The run must end by itself: generous allowance for start-up, connecting and collecting.
  const deadlineMs = (o.warmupS + o.durationS + o.drainTimeoutS) * 1000 + 120_000 + o.connections * 20;
  const watchdog = setTimeout(() => {
    console.error(`bench: no result after ${Math.round(deadlineMs / 1000)} s; giving up`);
    void res.close().finally(() => process.exit(1));
  }, deadlineMs);
  watchdog.unref();

  try {
    const result = await run(o, res);
    await res.close();
    console.log(formatReport(result));
    const path = writeResult(REPO_ROOT, result, o.out);
    console.log(`\n  result written to ${path}`);
    if (result.thresholds.failed.length > 0) process.exitCode = 1;
  } catch (err) {
    const tail = res.gateway?.logTail() ?? [];
    await res.close();
    console.error(`\nbench failed: ${err instanceof Error ? err.message : String(err)}`);
    if (tail.length > 0) console.error(`last gateway log lines:\n${tail.slice(-10).join('\n')}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(watchdog);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await main();
