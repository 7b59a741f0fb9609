/**
 * 9. Tails: the scenario of the independent harness of issue 18, so the suite cannot miss it.
 * Mosquitto (the suite's broker) → server → raw WebSocket clients on loopback; 5,000 connections
 * each watching 5 of 1,000 devices, `gps/<id>` at 2,000 msg/s (50,000 deliveries/s) and 10,000 msg/s
 * (250,000/s); publish → receive latency of every delivery (load-run.ts: every frame whose TS lies
 * in the window is a sample). The gateway (default threads) and bare uWS run in the same suite run,
 * a fresh process for every step, alternating which goes first from one rate to the next, so a drift
 * of the box's load weighs on both; peak RSS is the process's high-water mark (VmHWM).
 *
 * Each row also says where the CPU went during the window, per thread of the server, of the broker
 * and of the load client, from /proc/<pid>/task/<tid>/schedstat: CPU time, and the time the thread
 * was runnable but waiting for a core (the run-queue wait). On a box with fewer cores than busy
 * threads that wait is latency (docs/design/tail-latency.md).
 *
 *   BENCH_TAILS_GATEWAY_ENV="GATEWAY_THREADS=2,GATEWAY_BATCH_MAX_BYTES=4096"   extra gateway environment
 *   BENCH_TAILS_CLIENT_THREADS=2                                              load-client worker threads
 *   BENCH_TAILS_RATES=2000 BENCH_TAILS_DURATION_S=60 BENCH_TAILS_ROUNDS=2      other rates, window, rounds
 *   BENCH_TAILS_GATEWAY_ARGV="--trace-gc"                                     node options of the gateway
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startGateway } from '../load/gateway-process.js';
import type { Check } from './checks.js';
import { measure, type RunNumbers } from './scenarios.js';
import { startTarget, TARGET_SPECS, type RunningTarget } from './targets.js';

export interface TailsSizes {
  readonly connections: number;
  readonly perConn: number;
  readonly devices: number;
  readonly rates: readonly number[];
  readonly warmupS: number;
  readonly durationS: number;
  readonly clientThreads: number;
  /** Each (rate, target) this many times, the order alternating. */
  readonly rounds: number;
}

/** The harness's sizes. One client thread: on 2 cores the load client must not take a core of its own from the servers' share. */
export const TAILS_FULL: TailsSizes = {
  connections: 5000,
  perConn: 5,
  devices: 1000,
  rates: [2000, 10_000],
  warmupS: 3,
  durationS: 10,
  clientThreads: 1,
  rounds: 1,
};
export const TAILS_QUICK: TailsSizes = {
  connections: 1000,
  perConn: 5,
  devices: 1000,
  rates: [400, 2000],
  warmupS: 1,
  durationS: 3,
  clientThreads: 1,
  rounds: 1,
};
export const TAILS_SMOKE: TailsSizes = {
  connections: 40,
  perConn: 5,
  devices: 1000,
  rates: [100, 200],
  warmupS: 0.5,
  durationS: 1,
  clientThreads: 1,
  rounds: 1,
};

export type TailsTarget = 'gateway' | 'uws-bare';

/** One thread over the window, in % of one core (wait: runnable, not running). */
export interface ThreadShare {
  readonly tid: number;
  readonly cpuPct: number;
  readonly waitPct: number;
  /** Involuntary context switches a second (preemptions). */
  readonly preemptedPerS: number;
}

export interface ProcessShare {
  readonly cpuPct: number;
  readonly waitPct: number;
  /** Threads above 5 % of a core, busiest first (the rest are summed into cpuPct / waitPct only). */
  readonly threads: ThreadShare[];
}

export interface TailsRow {
  readonly target: TailsTarget;
  readonly rate: number;
  readonly round: number;
  readonly run: RunNumbers;
  readonly peakRssMb: number | null;
  readonly loadAvg: number;
  readonly server: ProcessShare | null;
  readonly broker: ProcessShare | null;
  readonly client: ProcessShare | null;
}

export interface TailsResult {
  readonly sizes: TailsSizes;
  /** BENCH_TAILS_GATEWAY_ENV, if any: the gateway's environment beyond the defaults. */
  readonly gatewayEnv: Readonly<Record<string, string>>;
  readonly rows: TailsRow[];
}

interface ThreadTimes {
  readonly cpuNs: number;
  readonly waitNs: number;
  readonly preempted: number;
}

/** Every thread of a process: CPU and run-queue wait (ns) from schedstat, involuntary switches from status. */
function readThreads(pid: number): Map<number, ThreadTimes> {
  const out = new Map<number, ThreadTimes>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const [cpu, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ');
      const preempted = /^nonvoluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1'));
      out.set(Number(tid), { cpuNs: Number(cpu), waitNs: Number(wait), preempted: preempted ? Number(preempted[1]) : 0 });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

function share(before: Map<number, ThreadTimes>, after: Map<number, ThreadTimes>, wallMs: number): ProcessShare | null {
  if (after.size === 0 || wallMs <= 0) return null;
  const pct = (ns: number) => (ns / 1e6 / wallMs) * 100;
  const threads: ThreadShare[] = [];
  let cpu = 0;
  let wait = 0;
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { cpuNs: 0, waitNs: 0, preempted: 0 };
    const t = { tid, cpuPct: pct(a.cpuNs - b.cpuNs), waitPct: pct(a.waitNs - b.waitNs), preemptedPerS: ((a.preempted - b.preempted) * 1000) / wallMs };
    cpu += t.cpuPct;
    wait += t.waitPct;
    if (t.cpuPct >= 5) threads.push(t);
  }
  threads.sort((x, y) => y.cpuPct - x.cpuPct);
  return { cpuPct: cpu, waitPct: wait, threads };
}

/** A process's peak RSS (VmHWM), bytes. */
function peakRssBytes(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** `A=1,B=2` → { A: '1', B: '2' }. */
export function parseEnvList(value: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) env[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return env;
}

/** The sizes with the BENCH_TAILS_* overrides (for an investigation; the suite's runs use the sizes as given). */
export function tailsSizes(base: TailsSizes, env: NodeJS.ProcessEnv): TailsSizes {
  const positive = (value: string | undefined, fallback: number) => {
    const n = Number(value);
    return value !== undefined && Number.isFinite(n) && n > 0 ? n : fallback;
  };
  const rates = (env.BENCH_TAILS_RATES ?? '')
    .split(',')
    .map(Number)
    .filter((r) => Number.isInteger(r) && r > 0);
  return {
    ...base,
    clientThreads: Math.floor(positive(env.BENCH_TAILS_CLIENT_THREADS, base.clientThreads)),
    durationS: positive(env.BENCH_TAILS_DURATION_S, base.durationS),
    rounds: Math.floor(positive(env.BENCH_TAILS_ROUNDS, base.rounds)),
    rates: rates.length ? rates : base.rates,
  };
}

async function start(target: TailsTarget, repoRoot: string, mqttUrl: string, env: Record<string, string>, execArgv: string[]): Promise<RunningTarget> {
  if (target === 'uws-bare') return startTarget('uws-bare', repoRoot, mqttUrl);
  const server = await startGateway({ repoRoot, mqttUrl, logLevel: 'info', startTimeoutMs: 20_000, env, execArgv });
  return { spec: TARGET_SPECS.gateway, server, mqttUrl, stop: async () => void (await server.stop()) };
}

export async function tails(
  repoRoot: string,
  mqttUrl: string,
  brokerPid: number | undefined,
  base: TailsSizes,
  say: (l: string) => void,
): Promise<TailsResult> {
  const sizes = tailsSizes(base, process.env);
  const gatewayEnv = parseEnvList(process.env.BENCH_TAILS_GATEWAY_ENV);
  const gatewayArgv = (process.env.BENCH_TAILS_GATEWAY_ARGV ?? '').split(' ').filter(Boolean);
  const rows: TailsRow[] = [];
  for (let round = 0; round < sizes.rounds; round++) {
    for (const [i, rate] of sizes.rates.entries()) {
      const order: TailsTarget[] = (i + round) % 2 === 0 ? ['gateway', 'uws-bare'] : ['uws-bare', 'gateway'];
      for (const name of order) {
        const target = await start(name, repoRoot, mqttUrl, gatewayEnv, gatewayArgv);
        try {
          const pids = { server: target.server.pid, broker: brokerPid, client: process.pid };
          const at: Partial<
            Record<'start' | 'end', { ms: number; server: Map<number, ThreadTimes>; broker: Map<number, ThreadTimes>; client: Map<number, ThreadTimes> }>
          > = {};
          const onWindow = (edge: 'start' | 'end') => {
            at[edge] = {
              ms: performance.now(),
              server: readThreads(pids.server),
              broker: pids.broker === undefined ? new Map<number, ThreadTimes>() : readThreads(pids.broker),
              client: readThreads(pids.client),
            };
          };
          const loadAvg = loadavg()[0];
          say(
            `${name}: ${sizes.connections.toLocaleString('en-US')} connections × ${sizes.perConn} of ${sizes.devices}, ${rate.toLocaleString('en-US')} msg/s (load ${loadAvg.toFixed(2)})`,
          );
          const run = await measure(
            target,
            { connections: sizes.connections, perConn: sizes.perConn, devices: sizes.devices, rate, encoding: 'json', onWindow },
            sizes,
            say,
          );
          const peak = peakRssBytes(pids.server);
          const s = at.start;
          const e = at.end;
          const wall = s && e ? e.ms - s.ms : 0;
          rows.push({
            target: name,
            rate,
            round,
            run,
            peakRssMb: peak === undefined ? null : peak / 1048576,
            loadAvg,
            server: s && e ? share(s.server, e.server, wall) : null,
            broker: s && e && pids.broker !== undefined ? share(s.broker, e.broker, wall) : null,
            client: s && e ? share(s.client, e.client, wall) : null,
          });
        } finally {
          await target.stop();
        }
      }
    }
  }
  return { sizes, gatewayEnv, rows };
}

const median = (values: readonly number[]): number => {
  const v = [...values].sort((a, b) => a - b);
  return v.length === 0 ? Number.NaN : v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/** Gateway ÷ bare uWS at one rate, the median of each target's rounds. */
export function tailsRatios(result: TailsResult, rate: number): { p50: number; p99: number; p999: number } | null {
  const of = (target: TailsTarget) => result.rows.filter((r) => r.rate === rate && r.target === target && r.run.received > 0);
  const gw = of('gateway');
  const uws = of('uws-bare');
  if (gw.length === 0 || uws.length === 0) return null;
  const ratio = (pick: (r: TailsRow) => number) => median(gw.map(pick)) / median(uws.map(pick));
  return { p50: ratio((r) => r.run.latencyMs.p50), p99: ratio((r) => r.run.latencyMs.p99), p999: ratio((r) => r.run.latencyMs.p999) };
}

/** Issue 18's tail target: gateway p99 ≤ 1.2× and p50 ≤ 1.1× bare uWS's, at each rate, default threads. */
export const TAILS_TARGET = { p50: 1.1, p99: 1.2 } as const;

export function evaluateTails(result: TailsResult | undefined): Check[] {
  if (!result) return [];
  return result.sizes.rates.map((rate) => {
    const target = `tails, ${result.sizes.connections.toLocaleString('en-US')} × ${result.sizes.perConn} of ${result.sizes.devices.toLocaleString('en-US')} at ${rate.toLocaleString('en-US')} msg/s: gateway p50 ≤ ${TAILS_TARGET.p50}×, p99 ≤ ${TAILS_TARGET.p99}× bare uWS`;
    const r = tailsRatios(result, rate);
    const lost = result.rows.filter((row) => row.rate === rate).reduce((sum, row) => sum + row.run.lost, 0);
    if (!r) return { target, measured: '—', status: 'n/a' as const };
    return {
      target,
      measured: `p50 ${r.p50.toFixed(2)}×, p99 ${r.p99.toFixed(2)}×`,
      status: r.p50 <= TAILS_TARGET.p50 && r.p99 <= TAILS_TARGET.p99 && lost === 0 ? ('PASS' as const) : ('FAIL' as const),
      ...(Object.keys(result.gatewayEnv).length ? { note: `gateway env ${JSON.stringify(result.gatewayEnv)}: not the default` } : {}),
      ...(lost ? { note: `${lost} lost` } : {}),
    };
  });
}

const f = (v: number | null | undefined, digits = 2) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const int = (v: number) => Math.round(v).toLocaleString('en-US');
const padL = (s: string, w: number) => s.padStart(w);
const padR = (s: string, w: number) => s.padEnd(w);

function threadsText(p: ProcessShare | null): string {
  if (!p) return '—';
  const busy = p.threads.map((t) => `${f(t.cpuPct, 0)}/${f(t.waitPct, 0)}`).join(' ');
  return `${f(p.cpuPct, 0)} % CPU, ${f(p.waitPct, 0)} % waiting; threads ≥ 5 %: ${busy || 'none'}`;
}

export function formatTails(result: TailsResult | undefined, errors: readonly string[]): string[] {
  const lines: string[] = [];
  lines.push("9. Tails (issue 18's harness): Mosquitto → server → raw WebSocket clients, latency of every delivery");
  if (!result) {
    lines.push(...errors.map((e) => `   error: ${e}`));
    return lines;
  }
  const s = result.sizes;
  lines.push(
    `   ${int(s.connections)} connections × ${s.perConn} of ${int(s.devices)} devices, ${s.warmupS} s warm-up, ${s.durationS} s window, ${s.clientThreads} client thread(s)` +
      (Object.keys(result.gatewayEnv).length ? `; gateway env ${JSON.stringify(result.gatewayEnv)}` : '; gateway at its defaults'),
  );
  lines.push(
    `${padR('msg/s', 8)}${padR('target', 20)}${padL('p50', 8)}${padL('p99', 9)}${padL('p99.9', 9)}${padL('max', 9)}${padL('deliv/s', 10)}${padL('lost', 7)}${padL('peak RSS', 10)}${padL('load', 6)}`,
  );
  for (const r of result.rows) {
    const l = r.run.latencyMs;
    lines.push(
      `${padR(int(r.rate), 8)}${padR(TARGET_SPECS[r.target].label.replace(' (ceiling)', ''), 20)}${padL(f(l.p50), 8)}${padL(f(l.p99), 9)}${padL(f(l.p999), 9)}${padL(f(l.max), 9)}` +
        `${padL(int(r.run.deliveriesPerS), 10)}${padL(int(r.run.lost), 7)}${padL(r.peakRssMb === null ? '—' : `${f(r.peakRssMb, 0)} MB`, 10)}${padL(f(r.loadAvg, 1), 6)}`,
    );
  }
  lines.push('   where the time went in each window (% of one core; per thread CPU/run-queue wait):');
  for (const r of result.rows) {
    const who = `${int(r.rate)} ${TARGET_SPECS[r.target].label.replace(' (ceiling)', '')}`;
    lines.push(`   ${padR(who, 20)} server: ${threadsText(r.server)}`);
    lines.push(`   ${padR('', 20)} broker: ${threadsText(r.broker)}; client: ${threadsText(r.client)}`);
  }
  for (const rate of s.rates) {
    const q = tailsRatios(result, rate);
    if (q) lines.push(`   gateway ÷ bare uWS at ${int(rate)} msg/s: p50 ${f(q.p50)}×, p99 ${f(q.p99)}×, p99.9 ${f(q.p999)}×`);
  }
  lines.push(...errors.map((e) => `   error: ${e}`));
  return lines;
}
