/** Text helpers of the suite's report (report.ts, report-gateway.ts). */
import type { RunNumbers } from './scenarios.js';

export const n = (v: number | null | undefined, digits = 0) =>
  v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const pad = (s: string, w: number) => (s.length >= w ? s : ' '.repeat(w - s.length) + s);
export const padEnd = (s: string, w: number) => (s.length >= w ? s : s + ' '.repeat(w - s.length));

/** A run's latency columns: p50, p90, p99, p99.9 and (withMax) max. */
export function latencyCells(r: RunNumbers, withMax: boolean): string[] {
  const l = r.latencyMs;
  const cells = [pad(n(l.p50, 2), 7), pad(n(l.p90, 2), 7), pad(n(l.p99, 2), 7), pad(n(l.p999, 2), 7)];
  if (withMax) cells.push(pad(n(l.max, 1), 7));
  return cells;
}

/** A run's load columns: deliveries/s, lost, conflations, server CPU %, µs per delivery, RSS, client CPU %. */
export function loadCells(r: RunNumbers): string[] {
  return [
    pad(n(r.deliveriesPerS), 10),
    pad(n(r.lost), 7),
    pad(n(r.serverConflations), 6),
    pad(n(r.serverCpuPct), 6),
    pad(n(r.serverUsPerDelivery, 1), 6),
    pad(n(r.serverRssMb), 6),
    pad(n(r.clientCpuPct), 6),
  ];
}
