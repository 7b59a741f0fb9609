/** A small dependency-free SVG line chart for the suite's results; the axes are chart-axis.ts's. */
import { chooseAxis, linearAxis, logAxis, tickLabel } from './chart-axis.js';

interface Series {
  readonly name: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
}

interface ChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** A log x axis (connections, publish rates: they double or grow tenfold). */
  readonly logX?: boolean;
  /** 'auto' (the default): log when the values span decades (chart-axis.ts). */
  readonly yScale?: 'log' | 'linear' | 'auto';
  /** A horizontal line, e.g. a target. */
  readonly threshold?: { readonly y: number; readonly label: string };
}

const COLORS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#57606a'];
const W = 720;
const H = 420;
const M = { left: 70, right: 170, top: 40, bottom: 55 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function lineChart(spec: ChartSpec): string {
  const all = spec.series.flatMap((s) => s.points);
  const x = spec.logX
    ? logAxis(all.map(([v]) => v))
    : linearAxis(
        all.map(([v]) => v),
        { fromZero: false },
      );
  const y = chooseAxis(all.map(([, v]) => v).concat(spec.threshold ? [spec.threshold.y] : []), spec.yScale ?? 'auto');
  const px = (v: number) => M.left + x.fraction(v) * (W - M.left - M.right);
  const py = (v: number) => H - M.bottom - y.fraction(v) * (H - M.top - M.bottom);
  const yLabel = y.log && !spec.yLabel.includes('log') ? `${spec.yLabel}, log scale` : spec.yLabel;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - M.right / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(spec.title)}</text>`,
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(spec.xLabel)}</text>`,
    `<text x="16" y="${(M.top + H - M.bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(M.top + H - M.bottom) / 2})">${esc(yLabel)}</text>`,
  ];
  for (const t of y.ticks) {
    const at = py(t).toFixed(1);
    out.push(
      `<line x1="${M.left}" y1="${at}" x2="${W - M.right}" y2="${at}" stroke="#eee"/>`,
      `<text x="${M.left - 6}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end">${tickLabel(t)}</text>`,
    );
  }
  for (const t of x.ticks) {
    const at = px(t).toFixed(1);
    out.push(
      `<line x1="${at}" y1="${M.top}" x2="${at}" y2="${H - M.bottom}" stroke="#f4f4f4"/>`,
      `<text x="${at}" y="${H - M.bottom + 16}" text-anchor="middle">${tickLabel(t)}</text>`,
    );
  }
  if (spec.threshold) {
    const at = py(spec.threshold.y);
    out.push(
      `<line x1="${M.left}" y1="${at}" x2="${W - M.right}" y2="${at}" stroke="#888" stroke-dasharray="6 4"/>`,
      `<text x="${W - M.right - 4}" y="${at - 5}" text-anchor="end" fill="#555">${esc(spec.threshold.label)}</text>`,
    );
  }
  spec.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.map(([a, b]) => [px(a).toFixed(1), py(b).toFixed(1)] as const);
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => p.join(',')).join(' ')}"/>`);
    for (const [cx, cy] of pts) out.push(`<circle cx="${cx}" cy="${cy}" r="3.5" fill="${color}"/>`);
    out.push(
      `<rect x="${W - M.right + 14}" y="${M.top + i * 20 - 9}" width="12" height="12" fill="${color}"/>`,
      `<text x="${W - M.right + 32}" y="${M.top + i * 20 + 1}">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}
