/**
 * The latency benchmark's result: one JSON document per run (tagged with date and git revision, so
 * runs can be compared later) and the table printed at the end of a run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { LatencySummary } from './histogram.js';

export interface BenchResult {
  readonly benchmark: 'latency';
  readonly schemaVersion: 1;
  readonly date: string;
  readonly gitRev: string;
  readonly environment: {
    readonly node: string;
    readonly platform: string;
    readonly cpus: number;
    /** 1-minute load average before and after the run: other work on the box shows up here. */
    readonly loadAvgBefore: number;
    readonly loadAvgAfter: number;
  };
  readonly options: Record<string, unknown>;
  readonly target: { readonly mode: 'spawned' | 'external'; readonly wsUrl: string; readonly mqttUrl: string };
  readonly window: { readonly warmupS: number; readonly durationS: number; readonly drainMs: number; readonly drainComplete: boolean };
  readonly publish: { readonly measured: number; readonly total: number; readonly ratePerS: number; readonly maxLagMs: number };
  readonly deliveries: {
    readonly expected: number;
    readonly received: number;
    readonly lost: number;
    readonly lossPct: number;
    readonly perS: number;
    readonly early: number;
    readonly late: number;
    readonly control: number;
    readonly unexpectedCloses: number;
  };
  readonly latencyMs: LatencySummary & { readonly bucketMs: number };
  readonly cpu: {
    /** Whole load-client process (publisher + client workers), % of one core. */
    readonly clientProcessPct: number;
    readonly clientWorkerElu: number[];
    readonly publisherElu: number;
    /** Gateway process, % of one core; null for an external gateway or without /proc. */
    readonly serverPct: number | null;
  };
  readonly serverStats: { readonly before: unknown; readonly after: unknown };
  readonly thresholds: { readonly maxP99Ms?: number; readonly maxLossPct?: number; readonly failed: string[] };
  /** Non-empty histogram buckets as [upper edge ms (null = overflow), count]. */
  readonly histogram: Array<[number | null, number]>;
  readonly errors: string[];
}

export function gitRevision(cwd: string): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
      .toString()
      .trim();
  } catch {
    // No git, not a repository, or no commit yet: the result is still worth keeping.
    return 'norev';
  }
}

/** Writes the result; returns the path written. */
export function writeResult(repoRoot: string, result: BenchResult, out?: string): string {
  const stamp = result.date.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
  const path = out ?? join(repoRoot, 'bench', 'results', `latency-${stamp}-${result.gitRev}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return relative(process.cwd(), path) || path;
}

/** Above this event-loop utilisation a client worker delays frames it has already received. */
const CLIENT_SATURATED_ELU = 0.7;

const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (n: number | null): string => (n === null || !Number.isFinite(n) ? 'n/a' : `${n.toFixed(1)} %`);

function pair(label: string, value: string): string {
  return `  ${label.padEnd(30)} ${value}`;
}

/** Conditions under which the numbers describe the test set-up more than the gateway. */
function warnings(r: BenchResult): string[] {
  const out: string[] = [];
  const busiest = Math.max(0, ...r.cpu.clientWorkerElu);
  if (busiest > CLIENT_SATURATED_ELU) {
    out.push(`a client worker was ${(busiest * 100).toFixed(0)} % busy: latency includes load-client queueing (add --client-threads or lower the load)`);
  }
  if (r.publish.maxLagMs > 50) out.push(`the publisher fell ${r.publish.maxLagMs.toFixed(0)} ms behind schedule: the offered rate was not steady`);
  if (r.environment.loadAvgBefore > r.environment.cpus) {
    out.push(`load average was ${r.environment.loadAvgBefore.toFixed(2)} before the run: something else is using the CPUs`);
  }
  return out;
}

export function formatReport(r: BenchResult): string {
  const l = r.latencyMs;
  const o = r.options as Readonly<Record<string, string | number | boolean>>; // the run's options as given: numbers, names and flags
  const lines = [
    '',
    `latency benchmark  ${r.date}  rev ${r.gitRev}  node ${r.environment.node}  ${r.environment.cpus} cores  load ${r.environment.loadAvgBefore.toFixed(2)}`,
    `  ${o.connections} connections × ${o.perConn} devices of ${o.devices}, ${o.rate} msg/s, ${o.encoding}, ` +
      `${r.window.warmupS}s warm-up + ${r.window.durationS}s measured, ${o.clientThreads} client thread(s), gateway ${r.target.mode}`,
    '',
    '  latency (ms)       p50      p90      p99    p99.9      max     mean',
    `                ${[l.p50, l.p90, l.p99, l.p999, l.max, l.mean].map((n) => ms(n).padStart(8)).join(' ')}`,
    '',
    pair(
      'published (measured / total)',
      `${int(r.publish.measured)} / ${int(r.publish.total)}  (${int(r.publish.ratePerS)} msg/s, max lag ${ms(r.publish.maxLagMs)} ms)`,
    ),
    pair('deliveries expected', int(r.deliveries.expected)),
    pair('deliveries received', `${int(r.deliveries.received)}  (${int(r.deliveries.perS)}/s)`),
    pair('lost', `${int(r.deliveries.lost)}  (${r.deliveries.lossPct.toFixed(3)} %)${r.window.drainComplete ? '' : '  drain timed out'}`),
    pair('snapshot/warm-up, control', `${int(r.deliveries.early)}, ${int(r.deliveries.control)}`),
  ];
  if (r.deliveries.late > 0) lines.push(pair('after window (unexpected)', int(r.deliveries.late)));
  if (r.deliveries.unexpectedCloses > 0) lines.push(pair('connections closed by server', int(r.deliveries.unexpectedCloses)));
  if (l.negative > 0 || l.overflow > 0) lines.push(pair('negative / ≥ range samples', `${int(l.negative)} / ${int(l.overflow)}`));
  lines.push(
    pair('client CPU (process)', `${pct(r.cpu.clientProcessPct)} of one core`),
    pair('client worker ELU', r.cpu.clientWorkerElu.map((e) => pct(e * 100)).join(', ')),
    pair('publisher thread ELU', pct(r.cpu.publisherElu * 100)),
    pair('server CPU', r.cpu.serverPct === null ? 'n/a' : `${pct(r.cpu.serverPct)} of one core`),
  );
  const after = r.serverStats.after as Record<string, unknown> | null;
  if (after && typeof after === 'object') {
    // The four contract fields, then the gateway's drop counters when it reports them.
    const keys = ['total_messages_processed', 'active_subscribers', 'devices_being_monitored', 'connections'];
    keys.push('deliveries_total', 'conflations_total', 'drops_total', 'slow_consumer_closes_total');
    for (const key of keys) {
      if (key in after) lines.push(pair(`server ${key}`, JSON.stringify(after[key])));
    }
  } else {
    lines.push(pair('server stats', 'unavailable'));
  }
  for (const w of warnings(r)) lines.push(`  warning: ${w}`);
  for (const f of r.thresholds.failed) lines.push(`  THRESHOLD FAILED: ${f}`);
  for (const e of r.errors) lines.push(`  error: ${e}`);
  return lines.join('\n');
}
