/** The suite's terminal report: one table per scenario, ratios to the gateway, then the targets. */
import type { Check, TargetResult } from './checks.js';
import type { RunNumbers } from './scenarios.js';
import type { StormRun } from './storm.js';
import type { RestRun } from './rest-writes.js';
import { TARGET_SPECS, type TargetName } from './targets.js';

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
  readonly stormErrors?: string[];
  readonly rest?: RestRun[];
  readonly restErrors?: string[];
  readonly skipped: ReadonlyArray<{ readonly scenario: string; readonly why: string }>;
  readonly durationS: number;
}

const n = (v: number | null | undefined, digits = 0) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const pad = (s: string, w: number) => (s.length >= w ? s : ' '.repeat(w - s.length) + s);
const padEnd = (s: string, w: number) => (s.length >= w ? s : s + ' '.repeat(w - s.length));

function runRow(label: string, r: RunNumbers, ratio: string): string {
  const l = r.latencyMs;
  return [padEnd(label, 24), pad(n(r.connections), 7), pad(r.encoding, 8), pad(n(l.p50, 2), 7), pad(n(l.p90, 2), 7), pad(n(l.p99, 2), 7),
    pad(n(l.p999, 2), 7), pad(n(l.max, 1), 7), pad(n(r.deliveriesPerS), 10), pad(n(r.lost), 7), pad(n(r.serverConflations), 6),
    pad(n(r.serverCpuPct), 6), pad(n(r.serverUsPerDelivery, 1), 6), pad(n(r.serverRssMb), 6), pad(n(r.clientCpuPct), 6), pad(ratio, 7)].join(' ');
}

const HEADER = [padEnd('target', 24), pad('conns', 7), pad('format', 8), pad('p50', 7), pad('p90', 7), pad('p99', 7), pad('p99.9', 7),
  pad('max', 7), pad('deliv/s', 10), pad('lost', 7), pad('confl', 6), pad('srv%', 6), pad('µs/d', 6), pad('RSS MB', 6), pad('cli%', 6), pad('gw ×', 7)].join(' ');

export function formatSuite(r: SuiteResult): string {
  const lines: string[] = [];
  const names = Object.keys(r.targets) as TargetName[];
  const gw = r.targets.gateway;
  lines.push('', `benchmark suite  ${r.date}  rev ${r.gitRev}  ${r.quick ? 'QUICK' : 'FULL'}  broker ${r.broker}  ${JSON.stringify(r.machine)}`);
  lines.push('latency in ms, end to end (MQTT publish → WebSocket receive); srv% / cli% = % of one core; µs/d = server CPU µs per delivery;');
  lines.push('"gw ×" = gateway deliveries/s ÷ this row\'s at the same load');

  lines.push('', '1. Fan-out: each connection watches 5 of 1,000 devices', HEADER);
  for (const name of names) {
    for (const [encoding, runs] of Object.entries(r.targets[name]!.fanout)) {
      for (const run of runs ?? []) {
        const mine = gw?.fanout[encoding as 'json']?.find((g) => g.connections === run.connections);
        lines.push(runRow(TARGET_SPECS[name].label, run, mine && name !== 'gateway' ? `${(mine.deliveriesPerS / run.deliveriesPerS).toFixed(2)}` : ''));
      }
    }
  }
  lines.push('', '2. Throughput sweep: the publish rate doubles until deliveries stop growing ("held" = highest rate with p99 < 10 ms, nothing lost)', HEADER.replace('  conns', '   rate'));
  for (const name of names) {
    const sweep = r.targets[name]!.sweep;
    if (!sweep) continue;
    for (const step of sweep.steps) lines.push(runRow(TARGET_SPECS[name].label, { ...step, connections: step.rate }, ''));
    const ratio = gw?.sweep && name !== 'gateway' ? `; gateway ${(gw.sweep.maxDeliveriesPerS / sweep.maxDeliveriesPerS).toFixed(2)}×` : '';
    const top = sweep.steps.reduce((a, b) => (b.deliveriesPerS > a.deliveriesPerS ? b : a));
    lines.push(`  → ${TARGET_SPECS[name].label}: held ${sweep.heldRate === null ? 'no rate' : `${n(sweep.heldRate)} msg/s`} under 10 ms; saturated at ${n(sweep.maxDeliveriesPerS)} deliveries/s${ratio} (server ${n(top.serverUsPerDelivery, 1)} µs CPU per delivery there, load client ${n(top.clientCpuPct)} % of a core)`);
  }
  lines.push('', '3. Broadcast: one channel, every connection subscribed', HEADER);
  for (const name of names) {
    const b = r.targets[name]!.broadcast;
    if (b) lines.push(runRow(TARGET_SPECS[name].label, b, gw?.broadcast && name !== 'gateway' ? (gw.broadcast.deliveriesPerS / b.deliveriesPerS).toFixed(2) : ''));
  }
  lines.push('', '4. Memory: RSS per idle connection (each watching 5 devices)');
  for (const name of names) {
    const m = r.targets[name]!.memory;
    if (!m) continue;
    const ratio = gw?.memory?.kbPerConnection && m.kbPerConnection && name !== 'gateway' ? `  (this ÷ gateway: ${(m.kbPerConnection / gw.memory.kbPerConnection).toFixed(2)}×)` : '';
    lines.push(`  ${padEnd(TARGET_SPECS[name].label, 24)} ${pad(n(m.kbPerConnection, 2), 8)} KB/connection at ${n(m.connections)}  (RSS ${n(m.rssBeforeMb, 1)} → ${n(m.rssAfterMb, 1)} MB)${ratio}`);
  }
  if (r.storm || r.stormErrors?.length) {
    lines.push('', '5. Connection storm: authenticated connects to /ws/connect during a fan-out (gateway only; token checks inline vs pool)');
    lines.push(`  ${padEnd('token checks', 14)} ${padEnd('alg', 6)} ${pad('connects', 9)} ${pad('connects/s', 11)} ${pad('stream p50', 11)} ${pad('p99', 8)} ${pad('p99.9', 8)} ${pad('lost', 6)}`);
    for (const s of r.storm ?? []) {
      lines.push(`  ${padEnd(s.mode, 14)} ${padEnd(s.alg, 6)} ${pad(n(s.connects), 9)} ${pad(n(s.connectsPerS), 11)} ${pad(n(s.streamLatencyMs.p50, 2), 11)} ${pad(n(s.streamLatencyMs.p99, 2), 8)} ${pad(n(s.streamLatencyMs.p999, 2), 8)} ${pad(n(s.streamLost), 6)}${s.errors.length ? `  (${s.errors[0]})` : ''}`);
    }
    for (const e of r.stormErrors ?? []) lines.push(`  error: ${e}`);
  }
  if (r.rest || r.restErrors?.length) {
    lines.push('', '6. REST writes: concurrent POST /api/v1/test-sensors/ while WebSocket clients watch the channel (gateway only)');
    for (const w of r.rest ?? []) {
      const lat = (l: RestRun['httpMs']) => `p50 ${n(l.p50, 2)}  p90 ${n(l.p90, 2)}  p99 ${n(l.p99, 2)}  p99.9 ${n(l.p999, 2)}  max ${n(l.max, 1)} ms`;
      lines.push(`  ${n(w.writes)} writes by ${w.concurrency} writers: ${n(w.writesPerS)} writes/s (${n(w.failedWrites)} failed); ${w.subscribers} subscribers, ${n(w.lost)} events lost`);
      lines.push(`  HTTP round trip of a write      ${lat(w.httpMs)}`);
      lines.push(`  write → subscriber (every one)  ${lat(w.toSubscriberMs)}`);
      lines.push(`  baselines, same run: SQLite alone ${n(w.sqliteAloneWritesPerS)} writes/s (gateway ${(w.writesPerS / w.sqliteAloneWritesPerS).toFixed(2)}×); GET /healthz ${n(w.healthzPerS)} req/s (gateway writes ${(w.writesPerS / w.healthzPerS).toFixed(2)}×)`);
      for (const e of w.errors) lines.push(`  error: ${e}`);
    }
    for (const e of r.restErrors ?? []) lines.push(`  error: ${e}`);
  }
  for (const s of r.skipped) lines.push('', `${s.scenario}: not run: ${s.why}`);
  lines.push('', 'Targets');
  for (const c of r.checks) lines.push(`  ${padEnd(c.status, 5)} ${padEnd(c.target, 58)} ${c.measured}${c.note ? `  (${c.note})` : ''}`);
  const errors = names.flatMap((name) => r.targets[name]!.errors.map((e) => `${name}: ${e}`));
  if (errors.length) lines.push('', 'Errors', ...errors.slice(0, 20).map((e) => `  ${e}`));
  lines.push('', `finished in ${n(r.durationS)} s`);
  return lines.join('\n');
}
