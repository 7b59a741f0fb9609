/**
 * The axes of the suite's charts (svg-chart.ts): linear or logarithmic, with ticks at round values.
 * A linear axis gets ticks at 1, 2 or 5 × a power of ten, its range widened to whole ticks; a log
 * axis, chosen when the largest value is LOG_WHEN or more times the smallest, gets its ticks at
 * 1, 2 and 5 × the powers of ten (the powers alone past three decades), from the last tick at or
 * below the smallest value to the first at or above the largest.
 */
export interface Axis {
  readonly log: boolean;
  /** The range drawn, from tick to tick. */
  readonly min: number;
  readonly max: number;
  readonly ticks: readonly number[];
  /** 0 at `min`, 1 at `max`. */
  fraction(value: number): number;
}

/** Values whose largest ÷ smallest is at least this get a log axis (when asked for 'auto'). */
export const LOG_WHEN = 20;

/** The round step (1, 2 or 5 × 10^k) that cuts `span` into about `count` parts. */
export function niceStep(span: number, count = 5): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const mantissa = raw / power;
  return (mantissa <= 1 ? 1 : mantissa <= 2 ? 2 : mantissa <= 5 ? 5 : 10) * power;
}

/** Rounds away float noise (0.30000000000000004 → 0.3) at the step's precision. */
const clean = (v: number, step: number) => {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(v.toFixed(Math.min(20, digits)));
};

export function linearAxis(values: readonly number[], options: { readonly fromZero?: boolean; readonly count?: number } = {}): Axis {
  const finite = values.filter((v) => Number.isFinite(v));
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (options.fromZero !== false) lo = Math.min(0, lo);
  if (hi === lo) hi = lo + 1;
  const step = niceStep(hi - lo, options.count ?? 5);
  const min = clean(Math.floor(lo / step) * step, step);
  const max = clean(Math.ceil(hi / step) * step, step);
  const ticks: number[] = [];
  for (let i = 0; min + i * step <= max + step / 1e6; i++) ticks.push(clean(min + i * step, step));
  return { log: false, min, max, ticks, fraction: (v) => (v - min) / (max - min) };
}

export function logAxis(values: readonly number[]): Axis {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  const lo = positive.length ? Math.min(...positive) : 1;
  const hi = positive.length ? Math.max(...positive) : 10;
  const from = Math.floor(Math.log10(lo));
  let to = Math.ceil(Math.log10(hi));
  if (to === from) to = from + 1;
  const multiples = to - from <= 3 ? [1, 2, 5] : [1];
  const candidates: number[] = [];
  for (let e = from; e <= to; e++) for (const m of multiples) candidates.push(Number((m * 10 ** e).toPrecision(12)));
  // The range: the last tick at or below the smallest value to the first at or above the largest.
  const min = candidates.filter((t) => t <= lo * (1 + 1e-9)).at(-1) ?? candidates[0];
  const max = candidates.find((t) => t >= hi * (1 - 1e-9)) ?? candidates.at(-1)!;
  const ticks = candidates.filter((t) => t >= min && t <= max);
  const [a, b] = [Math.log10(min), Math.log10(max)];
  return { log: true, min, max, ticks, fraction: (v) => (Math.log10(Math.max(v, min / 10)) - a) / (b - a) };
}

/** True when the positive values span LOG_WHEN or more (largest ÷ smallest). */
export function spansDecades(values: readonly number[]): boolean {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  return positive.length > 1 && Math.max(...positive) / Math.min(...positive) >= LOG_WHEN;
}

/** `scale`: 'log', 'linear', or 'auto' (log when the values span decades, spansDecades). */
export function chooseAxis(values: readonly number[], scale: 'log' | 'linear' | 'auto'): Axis {
  return scale === 'log' || (scale === 'auto' && spansDecades(values)) ? logAxis(values) : linearAxis(values);
}

/** A tick's label: 500, 2k, 10k, 1.5M, 0.5, 0.05. */
export function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}
