/**
 * `npm run bench`: the benchmark suite. Runs every scenario against the gateway and the baselines
 * (bare uWS, the reference design on ws, Socket.IO rooms) on one broker, one load client, one
 * machine, in one run; prints tables with ratios to the gateway and PASS/FAIL against the targets;
 * writes JSON and SVG charts under bench/results/. See bench/README.md.
 *
 *   npm run bench                 full run (≤ 15 min)
 *   npm run bench -- --quick      about a minute
 *   npm run bench -- --only gateway,uws-bare --scenarios fanout,memory
 *   npm run bench -- --only gateway --scenarios azure      Azure Web PubSub alone (with its own baselines)
 */
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gitRevision } from './load/report.js';
import { startBroker, type Broker } from './suite/broker.js';
import { evaluate, evaluateCluster, evaluateRest, evaluateRestSqlite, type TargetResult } from './suite/checks.js';
import { formatSuite, type SuiteResult } from './suite/report.js';
import { broadcast, fanout, FULL, memory, QUICK, SMOKE, sweep, SWEEP_P99_LIMIT_MS, type Sizes } from './suite/scenarios.js';
import { lineChart } from './suite/svg-chart.js';
import { MemoryProbe } from './load/memory-sample.js';
import { MANY_CHANNELS, REST_BACKENDS, REST_FULL, REST_QUICK, REST_SMOKE, restWrites, type RestResult } from './suite/rest-writes.js';
import { azure, AZURE_FULL, AZURE_QUICK, AZURE_SMOKE, type AzureResult } from './suite/azure.js';
import { cluster, CLUSTER_FULL, CLUSTER_QUICK, CLUSTER_SMOKE, type ClusterResult } from './suite/cluster.js';
import { storm, STORM_FULL, STORM_QUICK, STORM_SMOKE, type StormRun } from './suite/storm.js';
import { AZURE_STORM_FULL, AZURE_STORM_QUICK, AZURE_STORM_SMOKE, azurePresenceStorm, type AzureStormRun } from './suite/azure-storm.js';
import { startTarget, TARGET_SPECS, TARGETS, type RunningTarget, type TargetName } from './suite/targets.js';
import { evaluateTails, formatTails, tails, TAILS_FULL, TAILS_QUICK, TAILS_SMOKE, type TailsResult } from './suite/tails.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCENARIOS = ['memory', 'fanout', 'broadcast', 'sweep', 'storm', 'storm-azure', 'rest', 'azure', 'cluster', 'tails'] as const;
type Scenario = (typeof SCENARIOS)[number];

const HELP = `Usage: npm run bench -- [--quick | --smoke] [--only ${TARGETS.join(',')}] [--scenarios ${SCENARIOS.join(',')}] [--backends sqlite,postgres]

Runs the benchmark suite: fan-out latency, throughput sweep, broadcast, memory, connection storm
(/ws/connect, and an Azure connect storm on two nodes with cluster presence on vs off; storm-azure: that part alone),
REST writes (SQLite on one node, PostgreSQL on two, bare PostgreSQL), Azure Web PubSub group messages (reliable clients; publish on the bus and on REST)
two nodes (cluster: fan-out, storm and Azure storm split over two nodes vs one node vs bare uWS)
and tails (issue 18's harness: 5,000 connections × 5 of 1,000 devices at 2,000 and 10,000 msg/s, gateway vs bare uWS, every delivery timed),
against the gateway and its baselines, and prints PASS/FAIL against the targets. Results:
bench/results/. --quick: small sizes, about a minute. --smoke: tiny sizes, for the test suite only.
storm, storm-azure, rest, azure, cluster and tails measure the gateway alone (they need it in --only) and bring their own
baselines: azure, cluster and tails run bare uWS at the same load whatever --only says.
--backends: the REST scenario's backends (both unless told).`;

function parseList<T extends string>(value: string | undefined, allowed: readonly T[], option: string): T[] {
  if (value === undefined) return [...allowed];
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`--${option}: unknown "${item}" (choose from ${allowed.join(', ')})`);
  }
  return items as T[];
}

/** The scenarios each target runs; the others (storm, rest, azure, cluster) start what they measure themselves. */
const PER_TARGET: readonly Scenario[] = ['memory', 'fanout', 'broadcast', 'sweep'];

async function runTarget(name: TargetName, scenarios: Scenario[], sizes: Sizes, broker: Broker, say: (l: string) => void): Promise<TargetResult> {
  const result: { -readonly [K in keyof TargetResult]: TargetResult[K] } = { fanout: {}, errors: [] };
  if (!scenarios.some((s) => PER_TARGET.includes(s))) return result;
  let target: RunningTarget | undefined;
  const fresh = async (probe?: MemoryProbe) => {
    await target?.stop();
    target = await startTarget(name, REPO_ROOT, broker.url, probe);
    return target;
  };
  try {
    // Memory on a fresh process, before any traffic has grown its heap.
    // The per-thread probe is loaded for this process only: the others run as users run them.
    if (scenarios.includes('memory')) {
      const probe = new MemoryProbe();
      try {
        result.memory = await memory(await fresh(probe), probe, sizes, say);
        await target?.stop();
        target = undefined;
      } finally {
        probe.remove();
      }
    }
    const t = target ?? (await fresh());
    if (scenarios.includes('fanout')) result.fanout = await fanout(t, sizes, TARGET_SPECS[name].encodings, say);
    if (scenarios.includes('broadcast')) result.broadcast = await broadcast(t, sizes, say);
    if (scenarios.includes('sweep')) result.sweep = await sweep(t, sizes, say);
  } catch (err) {
    result.errors.push(err instanceof Error ? err.message.split('\n')[0] : String(err));
    const tail = target?.server.logTail() ?? [];
    if (tail.length) result.errors.push(`last log: ${tail.at(-1)}`);
  } finally {
    await target?.stop();
  }
  for (const run of [...Object.values(result.fanout).flat(), result.broadcast, ...(result.sweep?.steps ?? [])]) {
    if (run) result.errors.push(...run.errors);
  }
  return result;
}

function charts(r: SuiteResult, stamp: string, dir: string): string[] {
  const written: string[] = [];
  const names = Object.keys(r.targets) as TargetName[];
  const latency = names
    .flatMap((name) =>
      Object.entries(r.targets[name]!.fanout).map(([encoding, runs]) => ({
        name: `${TARGET_SPECS[name].label}${TARGET_SPECS[name].encodings.length > 1 ? ` (${encoding})` : ''}`,
        points: (runs ?? []).map((run) => [run.connections, run.latencyMs.p99] as const),
      })),
    )
    .filter((s) => s.points.length > 0);
  if (latency.length) {
    const file = join(dir, `suite-${stamp}-latency.svg`);
    writeFileSync(
      file,
      lineChart({
        title: 'Fan-out p99 latency against connections',
        xLabel: 'connections (log scale)',
        yLabel: 'p99 latency (ms)',
        series: latency,
        logX: true,
        threshold: { y: 10, label: 'target 10 ms' },
      }),
    );
    written.push(file);
  }
  const sweeps = names
    .filter((name) => r.targets[name]!.sweep)
    .map((name) => ({
      name: TARGET_SPECS[name].label,
      points: r.targets[name]!.sweep!.steps.map((s) => [s.rate, s.deliveriesPerS] as const),
    }));
  if (sweeps.length) {
    const file = join(dir, `suite-${stamp}-sweep.svg`);
    writeFileSync(
      file,
      lineChart({
        title: `Throughput sweep (each step until p99 > ${SWEEP_P99_LIMIT_MS} ms)`,
        xLabel: 'publish rate (msg/s, log scale)',
        yLabel: 'deliveries per second',
        series: sweeps,
        logX: true,
      }),
    );
    written.push(file);
  }
  return written;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      smoke: { type: 'boolean' },
      only: { type: 'string' },
      scenarios: { type: 'string' },
      backends: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const quick = values.quick === true || values.smoke === true;
  const sizes = values.smoke ? SMOKE : quick ? QUICK : FULL;
  const targets = parseList(values.only, TARGETS, 'only');
  const scenarios = parseList(values.scenarios, SCENARIOS, 'scenarios');
  const backends = parseList(values.backends, REST_BACKENDS, 'backends');
  const started = performance.now();
  const date = new Date().toISOString();
  const loadAvgBefore = loadavg()[0];
  const broker = await startBroker(REPO_ROOT);
  const total = targets.length;
  const results: Partial<Record<TargetName, TargetResult>> = {};
  // The run must end by itself whatever happens.
  const watchdog = setTimeout(() => {
    console.error('bench: the suite ran past 20 minutes; giving up');
    process.exit(1);
  }, 20 * 60_000);
  watchdog.unref();
  let stormRuns: StormRun[] | undefined;
  let azureStormRuns: AzureStormRun[] | undefined;
  const stormErrors: string[] = [];
  let restResult: RestResult | undefined;
  const restErrors: string[] = [];
  let azureResult: AzureResult | undefined;
  const azureErrors: string[] = [];
  let clusterResult: ClusterResult | undefined;
  const clusterErrors: string[] = [];
  let tailsResult: TailsResult | undefined;
  const tailsErrors: string[] = [];
  try {
    for (const [i, name] of targets.entries()) {
      const prefix = `[${i + 1}/${total} ${name} ${Math.round((performance.now() - started) / 1000)}s]`;
      if (scenarios.some((s) => PER_TARGET.includes(s))) console.log(`${prefix} starting`);
      results[name] = await runTarget(name, scenarios, sizes, broker, (line) => console.log(`${prefix} ${line}`));
    }
    // Scenarios that measure the gateway alone: a failure is reported in their section, not fatal.
    const gatewayOnly = async <T>(name: Scenario, errors: string[], run: (say: (line: string) => void) => Promise<T>): Promise<T | undefined> => {
      if (!scenarios.includes(name) || !targets.includes('gateway')) return undefined;
      const say = (line: string) => console.log(`[${name} ${Math.round((performance.now() - started) / 1000)}s] ${line}`);
      return run(say).catch((err: Error) => {
        errors.push(err.message.split('\n')[0]);
        return undefined;
      });
    };
    const pick = <T>(smoke: T, quickSizes: T, full: T) => (values.smoke ? smoke : quick ? quickSizes : full);
    stormRuns = await gatewayOnly('storm', stormErrors, (say) => storm(REPO_ROOT, broker.url, pick(STORM_SMOKE, STORM_QUICK, STORM_FULL), say));
    // The storm's Azure part (presence on vs off on two nodes): with `storm`, or alone as `storm-azure`.
    const azureStormSizes = pick(AZURE_STORM_SMOKE, AZURE_STORM_QUICK, AZURE_STORM_FULL);
    const azureStormRun = (say: (line: string) => void) => azurePresenceStorm(REPO_ROOT, broker.url, azureStormSizes, say);
    azureStormRuns = scenarios.includes('storm')
      ? await gatewayOnly('storm', stormErrors, azureStormRun)
      : await gatewayOnly('storm-azure', stormErrors, azureStormRun);
    restResult = await gatewayOnly('rest', restErrors, (say) =>
      restWrites(REPO_ROOT, broker.url, pick(REST_SMOKE, REST_QUICK, REST_FULL), say, restErrors, backends),
    );
    azureResult = await gatewayOnly('azure', azureErrors, (say) => azure(REPO_ROOT, broker.url, pick(AZURE_SMOKE, AZURE_QUICK, AZURE_FULL), say));
    clusterResult = await gatewayOnly('cluster', clusterErrors, (say) => cluster(REPO_ROOT, broker.url, pick(CLUSTER_SMOKE, CLUSTER_QUICK, CLUSTER_FULL), say));
    tailsResult = await gatewayOnly('tails', tailsErrors, (say) => tails(REPO_ROOT, broker.url, broker.pid, pick(TAILS_SMOKE, TAILS_QUICK, TAILS_FULL), say));
  } finally {
    await broker.stop();
    clearTimeout(watchdog);
  }
  const result: SuiteResult = {
    benchmark: 'suite',
    schemaVersion: 1,
    date,
    gitRev: gitRevision(REPO_ROOT),
    quick,
    machine: {
      cpus: availableParallelism(),
      cpu: cpus()[0]?.model ?? 'unknown',
      memGb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      loadAvgBefore,
      loadAvgAfter: loadavg()[0],
    },
    broker: broker.kind,
    targets: results,
    checks: [
      ...evaluate(results),
      ...evaluateRest(restResult, [1, MANY_CHANNELS]),
      evaluateRestSqlite(restResult),
      ...evaluateCluster(clusterResult),
      ...evaluateTails(tailsResult),
    ],
    storm: stormRuns,
    azureStorm: azureStormRuns,
    stormErrors,
    rest: restResult,
    restErrors,
    azure: azureResult,
    azureErrors,
    cluster: clusterResult,
    clusterErrors,
    skipped: [],
    durationS: (performance.now() - started) / 1000,
  };
  console.log(formatSuite(result));
  // Scenario 9 prints after the suite's tables (its checks are among the targets above); its numbers go in the JSON as `tails`.
  if (tailsResult || tailsErrors.length) console.log(`\n${formatTails(tailsResult, tailsErrors).join('\n')}`);
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = `${date.replace(/[:.]/g, '-').slice(0, 19)}Z-${result.gitRev}${values.smoke ? '-smoke' : quick ? '-quick' : ''}`;
  const json = join(dir, `suite-${stamp}.json`);
  writeFileSync(json, `${JSON.stringify({ ...result, tails: tailsResult, tailsErrors }, null, 2)}\n`);
  console.log(`\nresults: ${[json, ...charts(result, stamp, dir)].map((f) => f.slice(REPO_ROOT.length)).join(', ')}`);
  if (result.checks.some((c) => c.status === 'FAIL')) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
