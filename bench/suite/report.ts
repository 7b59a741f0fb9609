/** The suite's terminal report: one table per scenario, ratios to the gateway, then the targets. */
import type { Check, TargetResult } from './checks.js';
import type { MemoryResult, RunNumbers } from './scenarios.js';
import type { StormRun } from './storm.js';
import type { RestResult } from './rest-writes.js';
import type { AzureResult } from './azure.js';
import { TARGET_SPECS, type TargetName } from './targets.js';
import type { ClusterResult } from './cluster.js';
import type { AzureStormRun } from './azure-storm.js';
import { azureStormRatios, azureStormTable, formatAzure, formatCluster, formatRest } from './report-gateway.js';
import { latencyCells, loadCells, n, pad, padEnd } from './report-text.js';

export interface SuiteResult {
  readonly benchmark: 'suite';
  readonly schemaVersion: 1;
  readonly date: string;
  readonly gitRev: string;
  readonly quick: boolean;
  readonly machine: Readonly<Record<string, unknown>>;
  readonly broker: string;
  readonly targets: Partial<Record<TargetName, TargetResult>>;
  readonly checks: Check[];
  readonly storm?: StormRun[];
  /** Scenario 5's Azure part: two nodes, cluster presence on and off. */
  readonly azureStorm?: AzureStormRun[];
  readonly stormErrors?: string[];
  readonly rest?: RestResult;
  readonly restErrors?: string[];
  readonly azure?: AzureResult;
  readonly azureErrors?: string[];
  readonly cluster?: ClusterResult;
  readonly clusterErrors?: string[];
  readonly skipped: ReadonlyArray<{ readonly scenario: string; readonly why: string }>;
  readonly durationS: number;
}

function runRow(label: string, r: RunNumbers, ratio: string): string {
  return [padEnd(label, 24), pad(n(r.connections), 7), pad(r.encoding, 8), ...latencyCells(r, true), ...loadCells(r), pad(ratio, 7)].join(' ');
}

const HEADER = [
  padEnd('target', 24),
  pad('conns', 7),
  pad('format', 8),
  pad('p50', 7),
  pad('p90', 7),
  pad('p99', 7),
  pad('p99.9', 7),
  pad('max', 7),
  pad('deliv/s', 10),
  pad('lost', 7),
  pad('confl', 6),
  pad('srv%', 6),
  pad('µs/d', 6),
  pad('RSS MB', 6),
  pad('cli%', 6),
  pad('gw ×', 7),
].join(' ');

/** Section 4's detail: the base by thread (V8 heap) and by mapping, as the probe measured it. */
function memoryDetail(m: MemoryResult): string[] {
  const out: string[] = [];
  if (m.threads?.length) {
    out.push(
      `    V8 heap resident MB by thread, no client → ${n(m.connections)} connections (live after a full GC): ` +
        m.threads.map((t) => `${t.thread} ${n(t.baseHeapPhysicalMb, 1)} → ${n(t.heapPhysicalMb, 1)} (${n(t.heapUsedAfterGcMb, 1)})`).join(', '),
    );
  }
  if (m.baseMappings) {
    const heaps = m.threads?.reduce((sum, t) => sum + t.baseHeapPhysicalMb, 0);
    out.push(
      `    RSS with no client: ${n(m.rssBeforeMb, 1)} MB = mapped files ${n(m.baseMappings.filesMb, 1)} (${m.baseMappings.files
        .slice(0, 3)
        .map((f) => `${f.file} ${n(f.mb, 1)}`)
        .join(', ')}) + anonymous ${n(m.baseMappings.anonymousMb, 1)}` +
        (heaps === undefined ? '' : ` (of which V8 heaps ${n(heaps, 1)}, the rest malloc: native code's, thread stacks, V8's own)`) +
        (m.rssAfterGcMb ? `; RSS after a full GC with the connections open: ${n(m.rssAfterGcMb, 1)} MB` : ''),
    );
  }
  return out;
}

export function formatSuite(r: SuiteResult): string {
  const lines: string[] = [];
  const names = Object.keys(r.targets) as TargetName[];
  const gw = r.targets.gateway;
  lines.push('', `benchmark suite  ${r.date}  rev ${r.gitRev}  ${r.quick ? 'QUICK' : 'FULL'}  broker ${r.broker}  ${JSON.stringify(r.machine)}`);
  lines.push('latency in ms, end to end (MQTT publish → WebSocket receive); srv% / cli% = % of one core; µs/d = server CPU µs per delivery;');
  lines.push('"gw ×" = gateway deliveries/s ÷ this row\'s at the same load');

  // Sections of scenarios that did not run (--scenarios) are left out.
  const ran = (has: (t: TargetResult) => boolean) => names.some((name) => has(r.targets[name]!));
  if (ran((t) => Object.keys(t.fanout).length > 0)) lines.push('', '1. Fan-out: each connection watches 5 of 1,000 devices', HEADER);
  for (const name of names) {
    for (const [encoding, runs] of Object.entries(r.targets[name]!.fanout)) {
      for (const run of runs ?? []) {
        const mine = gw?.fanout[encoding as 'json']?.find((g) => g.connections === run.connections);
        lines.push(runRow(TARGET_SPECS[name].label, run, mine && name !== 'gateway' ? `${(mine.deliveriesPerS / run.deliveriesPerS).toFixed(2)}` : ''));
      }
    }
  }
  if (ran((t) => t.sweep !== undefined))
    lines.push(
      '',
      '2. Throughput sweep: the publish rate doubles until deliveries stop growing ("held" = highest rate with p99 < 10 ms, nothing lost)',
      HEADER.replace('  conns', '   rate'),
    );
  for (const name of names) {
    const sweep = r.targets[name]!.sweep;
    if (!sweep) continue;
    for (const step of sweep.steps) lines.push(runRow(TARGET_SPECS[name].label, { ...step, connections: step.rate }, ''));
    const ratio = gw?.sweep && name !== 'gateway' ? `; gateway ${(gw.sweep.maxDeliveriesPerS / sweep.maxDeliveriesPerS).toFixed(2)}×` : '';
    const top = sweep.steps.reduce((a, b) => (b.deliveriesPerS > a.deliveriesPerS ? b : a));
    lines.push(
      `  → ${TARGET_SPECS[name].label}: held ${sweep.heldRate === null ? 'no rate' : `${n(sweep.heldRate)} msg/s`} under 10 ms; saturated at ${n(sweep.maxDeliveriesPerS)} deliveries/s${ratio} (server ${n(top.serverUsPerDelivery, 1)} µs CPU per delivery there, load client ${n(top.clientCpuPct)} % of a core)`,
    );
  }
  if (ran((t) => t.broadcast !== undefined)) lines.push('', '3. Broadcast: one channel, every connection subscribed', HEADER);
  for (const name of names) {
    const b = r.targets[name]!.broadcast;
    if (b)
      lines.push(runRow(TARGET_SPECS[name].label, b, gw?.broadcast && name !== 'gateway' ? (gw.broadcast.deliveriesPerS / b.deliveriesPerS).toFixed(2) : ''));
  }
  if (ran((t) => t.memory !== undefined)) lines.push('', '4. Memory: RSS per idle connection (each watching 5 devices)');
  for (const name of names) {
    const m = r.targets[name]!.memory;
    if (!m) continue;
    const ratio =
      gw?.memory?.kbPerConnection && m.kbPerConnection && name !== 'gateway'
        ? `  (this ÷ gateway: ${(m.kbPerConnection / gw.memory.kbPerConnection).toFixed(2)}×)`
        : '';
    lines.push(
      `  ${padEnd(TARGET_SPECS[name].label, 24)} ${pad(n(m.kbPerConnection, 2), 8)} KB/connection at ${n(m.connections)}  (RSS ${n(m.rssBeforeMb, 1)} → ${n(m.rssAfterMb, 1)} MB)${ratio}`,
      ...memoryDetail(m),
    );
  }
  if (r.storm || r.azureStorm || r.stormErrors?.length) {
    lines.push('', '5. Connection storm: authenticated connects to /ws/connect during a fan-out (gateway only; token checks inline vs pool)');
    lines.push(
      `  ${padEnd('token checks', 14)} ${padEnd('alg', 6)} ${pad('connects', 9)} ${pad('connects/s', 11)} ${pad('stream p50', 11)} ${pad('p99', 8)} ${pad('p99.9', 8)} ${pad('lost', 6)}`,
    );
    for (const s of r.storm ?? []) {
      lines.push(
        `  ${padEnd(s.mode, 14)} ${padEnd(s.alg, 6)} ${pad(n(s.connects), 9)} ${pad(n(s.connectsPerS), 11)} ${pad(n(s.streamLatencyMs.p50, 2), 11)} ${pad(n(s.streamLatencyMs.p99, 2), 8)} ${pad(n(s.streamLatencyMs.p999, 2), 8)} ${pad(n(s.streamLost), 6)}${s.errors.length ? `  (${s.errors[0]})` : ''}`,
      );
    }
    if (r.azureStorm?.length) {
      lines.push('   Azure connect storm (json.webpubsub.azure.v1, access tokens) over two nodes, half on each: cluster presence on vs off');
      lines.push(...azureStormTable(r.azureStorm, (s) => `presence ${s.presence}`));
      const on = r.azureStorm.filter((s) => s.presence === 'on');
      const off = r.azureStorm.filter((s) => s.presence === 'off');
      if (on.length && off.length) lines.push(`  → presence on ÷ off (mean of the runs): ${azureStormRatios(on, off)}`);
    }
    for (const e of r.stormErrors ?? []) lines.push(`  error: ${e}`);
  }
  if (r.rest || r.restErrors?.length) lines.push('', ...formatRest(r.rest, r.restErrors ?? []));
  if (r.azure || r.azureErrors?.length) lines.push('', ...formatAzure(r.azure, r.azureErrors ?? []));
  if (r.cluster || r.clusterErrors?.length) lines.push('', ...formatCluster(r.cluster, r.clusterErrors ?? []));
  for (const s of r.skipped) lines.push('', `${s.scenario}: not run: ${s.why}`);
  lines.push('', 'Targets');
  for (const c of r.checks) lines.push(`  ${padEnd(c.status, 5)} ${padEnd(c.target, 58)} ${c.measured}${c.note ? `  (${c.note})` : ''}`);
  const errors = names.flatMap((name) => r.targets[name]!.errors.map((e) => `${name}: ${e}`));
  if (errors.length) lines.push('', 'Errors', ...errors.slice(0, 20).map((e) => `  ${e}`));
  lines.push('', `finished in ${n(r.durationS)} s`);
  return lines.join('\n');
}
