/**
 * End-to-end latency benchmark: MQTT publish → gateway → WebSocket receive. See bench/README.md
 * and `--help`.
 *
 * The run itself (connect, window, paced publishing, drain) is bench/load/load-run.ts, shared with
 * the suite (bench/suite.ts).
 */
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startGateway, type GatewayProcess } from './load/gateway-process.js';
import { BUCKET_MS, runLoad } from './load/load-run.js';
import { HELP, parseBenchOptions, UsageError, type BenchOptions } from './load/options.js';
import { formatReport, gitRevision, writeResult, type BenchResult } from './load/report.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url)); // dist/bench/latency.js → repo

async function fetchStats(host: string, port: number): Promise<unknown> {
  try {
    const res = await fetch(`http://${host}:${port}/api/v1/stream/stats`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return { error: `HTTP ${res.status}` };
    return (await res.json()) as unknown;
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** The gateway this run started, if any; stopped once; safe to call twice. */
class Resources {
  gateway: GatewayProcess | undefined;
  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.gateway) {
      const exit = await this.gateway.stop();
      if (exit.killed) console.error('gateway did not exit within 10 s of SIGTERM; killed');
    }
  }
}

async function run(o: BenchOptions, res: Resources): Promise<BenchResult> {
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

  const statsBefore = await fetchStats(host, port);
  const run = await runLoad({
    host,
    port,
    path,
    mqttUrl,
    dialect: o.dialect,
    encoding: o.encoding,
    connections: o.connections,
    perConn: o.perConn,
    devices: o.devices,
    rate: o.rate,
    warmupS: o.warmupS,
    durationS: o.durationS,
    drainTimeoutS: o.drainTimeoutS,
    clientThreads: o.clientThreads,
    openConcurrency: o.openConcurrency,
    serverCpuTimeMs: res.gateway ? () => res.gateway?.cpuTimeMs() : undefined,
    progress: (line) => console.log(`  ${line}`),
  });
  const statsAfter = await fetchStats(host, port);

  const h = run.histogram;
  const c = run.counters;
  const received = c.measured;
  const lost = Math.max(0, run.expected - received);
  const summary = h.summary();
  const lossPct = run.expected > 0 ? (lost / run.expected) * 100 : 0;
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
    window: { warmupS: o.warmupS, durationS: o.durationS, drainMs: Math.round(run.drainMs), drainComplete: run.drainComplete },
    publish: {
      measured: run.published.measured,
      total: run.published.total,
      ratePerS: run.published.measured / o.durationS,
      maxLagMs: run.published.maxLagMs,
    },
    deliveries: {
      expected: run.expected,
      received,
      lost,
      lossPct,
      perS: received / run.deliverySpanS,
      early: c.early,
      late: c.late,
      control: c.control,
      unexpectedCloses: c.unexpectedCloses,
    },
    latencyMs: { ...summary, bucketMs: BUCKET_MS },
    cpu: run.cpu,
    serverStats: { before: statsBefore, after: statsAfter },
    thresholds: { maxP99Ms: o.maxP99Ms, maxLossPct: o.maxLossPct, failed },
    histogram: h.sparse(),
    errors: run.errors,
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
