/**
 * The product's targets (issue "npm run bench"), printed as PASS/FAIL and never weakened:
 * p99 < 10 ms at ≥ 500 connections and at 10,000 connections with 100,000 deliveries/s;
 * saturated deliveries/s ≥ 90 % of bare uWS, ≥ 4× ws, ≥ 5× Socket.IO; ≤ 3 KB RSS per idle connection.
 */
import type { MemoryResult, RunNumbers, SweepResult } from './scenarios.js';
import type { RestResult } from './rest-writes.js';
import type { TargetName } from './targets.js';
import type { ClusterResult } from './cluster.js';

export interface TargetResult {
  readonly memory?: MemoryResult;
  readonly fanout: Partial<Record<'json' | 'msgpack', RunNumbers[]>>;
  readonly broadcast?: RunNumbers;
  readonly sweep?: SweepResult;
  readonly errors: string[];
}

export interface Check {
  readonly target: string;
  readonly measured: string;
  readonly status: 'PASS' | 'FAIL' | 'n/a';
  readonly note?: string;
}

const ms = (v: number) => `${v.toFixed(2)} ms`;

export function evaluate(results: Partial<Record<TargetName, TargetResult>>): Check[] {
  const gw = results.gateway;
  const checks: Check[] = [];
  for (const encoding of ['json', 'msgpack'] as const) {
    const run = gw?.fanout[encoding]?.find((r) => r.connections >= 500);
    checks.push(
      run
        ? {
            target: `p99 < 10 ms at ≥ 500 connections (${encoding})`,
            measured: `${ms(run.latencyMs.p99)} at ${run.connections}`,
            status: run.latencyMs.p99 < 10 && run.lost === 0 ? 'PASS' : 'FAIL',
            note: run.lost ? `${run.lost} lost` : undefined,
          }
        : { target: `p99 < 10 ms at ≥ 500 connections (${encoding})`, measured: '—', status: 'n/a' },
    );
  }
  const big = gw?.fanout.json?.find((r) => r.connections >= 10_000);
  checks.push(
    big
      ? {
          target: 'p99 < 10 ms at 10,000 connections, 100,000 deliveries/s',
          measured: `${ms(big.latencyMs.p99)}, ${Math.round(big.deliveriesPerS).toLocaleString('en-US')}/s`,
          status: big.latencyMs.p99 < 10 && big.deliveriesPerS >= 99_000 && big.lost === 0 ? 'PASS' : 'FAIL',
        }
      : { target: 'p99 < 10 ms at 10,000 connections, 100,000 deliveries/s', measured: '—', status: 'n/a', note: 'full run only' },
  );
  const ratio = (other: TargetName, factor: number, label: string) => {
    const mine = gw?.sweep?.maxDeliveriesPerS;
    const theirs = results[other]?.sweep?.maxDeliveriesPerS;
    if (!mine || !theirs) return { target: label, measured: '—', status: 'n/a' as const };
    const r = mine / theirs;
    return {
      target: label,
      measured: `${r.toFixed(2)}× (${Math.round(mine).toLocaleString('en-US')} vs ${Math.round(theirs).toLocaleString('en-US')}/s)`,
      status: r >= factor ? ('PASS' as const) : ('FAIL' as const),
    };
  };
  checks.push(ratio('uws-bare', 0.9, 'saturated deliveries/s ≥ 90 % of bare uWS'));
  checks.push(ratio('ws-reference', 4, 'saturated deliveries/s ≥ 4× the ws baseline'));
  checks.push(ratio('socketio-rooms', 5, 'saturated deliveries/s ≥ 5× Socket.IO'));
  const kb = gw?.memory?.kbPerConnection;
  const at = gw?.memory?.connections ?? 0;
  checks.push(
    kb === undefined || kb === null
      ? { target: '≤ 3 KB RSS per idle connection', measured: '—', status: 'n/a' }
      : at < 10_000
        ? // Fixed costs dominate small samples; the target is stated at 10,000 connections.
          { target: '≤ 3 KB RSS per idle connection', measured: `${kb.toFixed(2)} KB at ${at}`, status: 'n/a', note: 'counts at 10,000 connections (full run)' }
        : { target: '≤ 3 KB RSS per idle connection', measured: `${kb.toFixed(2)} KB at ${at}`, status: kb <= 3 ? 'PASS' : 'FAIL' },
  );
  return checks;
}

/** The write path's target (issue 16): on PostgreSQL, writes on node A, subscribers on node B, at the run's most writers. */
export const REST_TARGET = { writesPerS: 2_000, p99Ms: 10 } as const;

export function evaluateRest(rest: RestResult | undefined, channelCounts: readonly number[]): Check[] {
  return channelCounts.map((channels) => {
    const target = `PostgreSQL writes A → B subscribers (${channels} channel${channels > 1 ? 's' : ''}): ≥ ${REST_TARGET.writesPerS.toLocaleString('en-US')} writes/s, p99 < ${REST_TARGET.p99Ms} ms`;
    const runs = (rest?.runs ?? []).filter((r) => r.backend === 'postgres' && r.channels === channels);
    const run = runs.reduce<(typeof runs)[number] | undefined>((a, b) => (a && a.concurrency >= b.concurrency ? a : b), undefined);
    if (!run) return { target, measured: '—', status: 'n/a' as const };
    const lostNote = run.lost || run.failedWrites ? `${run.lost} lost, ${run.failedWrites} failed` : undefined;
    return {
      target,
      measured: `${Math.round(run.writesPerS).toLocaleString('en-US')} writes/s, p99 ${ms(run.toSubscriberMs.p99)} (${run.concurrency} writers)`,
      status:
        run.writesPerS >= REST_TARGET.writesPerS && run.toSubscriberMs.p99 < REST_TARGET.p99Ms && run.lost === 0 && run.failedWrites === 0
          ? ('PASS' as const)
          : ('FAIL' as const),
      note: lostNote,
    };
  });
}

/** The write path's target on one node (issue 18): SQLite, 2,000 writes/s paced, write → subscriber p99 < 5 ms. */
export const SQLITE_REST_TARGET = { writesPerS: 2_000, p99Ms: 5 } as const;

export function evaluateRestSqlite(rest: RestResult | undefined): Check {
  const target = `SQLite, one node, ${SQLITE_REST_TARGET.writesPerS.toLocaleString('en-US')} writes/s paced: write → subscriber p99 < ${SQLITE_REST_TARGET.p99Ms} ms`;
  const run = (rest?.runs ?? []).find((r) => r.backend === 'sqlite' && r.paced !== undefined);
  if (!run?.paced) return { target, measured: '—', status: 'n/a' };
  const lostNote = run.lost || run.failedWrites ? `${run.lost} lost, ${run.failedWrites} failed` : undefined;
  return {
    target,
    measured: `${Math.round(run.writesPerS).toLocaleString('en-US')} writes/s (${run.paced.rate.toLocaleString('en-US')} asked), p99 ${ms(run.toSubscriberMs.p99)}`,
    status:
      run.paced.rate >= SQLITE_REST_TARGET.writesPerS &&
      run.writesPerS >= 0.98 * SQLITE_REST_TARGET.writesPerS &&
      run.toSubscriberMs.p99 < SQLITE_REST_TARGET.p99Ms &&
      run.lost === 0 &&
      run.failedWrites === 0
        ? 'PASS'
        : 'FAIL',
    note: lostNote,
  };
}

/**
 * Two nodes (scenario 8) under the fan-out targets that exist (issue "npm run bench"): p99 < 10 ms at
 * ≥ 500 connections, and at 10,000 connections with 100,000 deliveries/s. No target of its own.
 */
export function evaluateCluster(cluster: ClusterResult | undefined): Check[] {
  const runs = (cluster?.fanout ?? []).filter((f) => f.setup === 'two-nodes').map((f) => f.run);
  const small = runs.find((r) => r.connections >= 500);
  const big = runs.find((r) => r.connections >= 10_000);
  const lostNote = (r: RunNumbers) => (r.lost ? `${r.lost} lost` : undefined);
  return [
    small
      ? {
          target: 'two nodes: p99 < 10 ms at ≥ 500 connections (json)',
          measured: `${ms(small.latencyMs.p99)} at ${small.connections}`,
          status: small.latencyMs.p99 < 10 && small.lost === 0 ? 'PASS' : 'FAIL',
          note: lostNote(small),
        }
      : { target: 'two nodes: p99 < 10 ms at ≥ 500 connections (json)', measured: '—', status: 'n/a' },
    big
      ? {
          target: 'two nodes: p99 < 10 ms at 10,000 connections, 100,000 deliveries/s',
          measured: `${ms(big.latencyMs.p99)}, ${Math.round(big.deliveriesPerS).toLocaleString('en-US')}/s`,
          status: big.latencyMs.p99 < 10 && big.deliveriesPerS >= 99_000 && big.lost === 0 ? 'PASS' : 'FAIL',
          note: lostNote(big),
        }
      : { target: 'two nodes: p99 < 10 ms at 10,000 connections, 100,000 deliveries/s', measured: '—', status: 'n/a', note: 'full run only' },
  ];
}
