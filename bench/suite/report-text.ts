/** Text helpers of the suite's report (report.ts, report-gateway.ts). */
export const n = (v: number | null | undefined, digits = 0) =>
  v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const pad = (s: string, w: number) => (s.length >= w ? s : ' '.repeat(w - s.length) + s);
export const padEnd = (s: string, w: number) => (s.length >= w ? s : s + ' '.repeat(w - s.length));
