/**
 * Fixed-bucket latency histogram: O(1) record with no allocation on the hot path, mergeable across
 * worker threads by adding counts, and small enough to post between threads (≈400 KB by default).
 *
 * Resolution: `bucketMs` (default 0.01 ms) up to `rangeMs` (default 1 s); slower samples go to one
 * overflow bucket. min, max, mean and the count are exact. Negative samples (clock skew between
 * processes) are counted in bucket 0 and in `negative`.
 */

export interface HistogramSnapshot {
  readonly bucketMs: number;
  readonly counts: Uint32Array;
  readonly count: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  readonly negative: number;
}

export interface LatencySummary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** Samples at or beyond the histogram's range; their percentiles read as `max`. */
  readonly overflow: number;
  readonly negative: number;
}

export class LatencyHistogram {
  readonly bucketMs: number;
  /** counts[0 .. n-1] are regular buckets, counts[n] is the overflow bucket. */
  readonly counts: Uint32Array;
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  negative = 0;
  private readonly overflowIndex: number;
  private readonly scale: number;

  constructor(options: { bucketMs?: number; rangeMs?: number } = {}) {
    const bucketMs = options.bucketMs ?? 0.01;
    const rangeMs = options.rangeMs ?? 1000;
    if (!(bucketMs > 0) || !(rangeMs >= bucketMs)) {
      throw new RangeError(`histogram needs bucketMs > 0 and rangeMs ≥ bucketMs, got ${bucketMs}, ${rangeMs}`);
    }
    this.bucketMs = bucketMs;
    this.scale = 1 / bucketMs;
    this.overflowIndex = Math.round(rangeMs / bucketMs);
    this.counts = new Uint32Array(this.overflowIndex + 1);
  }

  static fromSnapshot(s: HistogramSnapshot): LatencyHistogram {
    const h = new LatencyHistogram({ bucketMs: s.bucketMs, rangeMs: (s.counts.length - 1) * s.bucketMs });
    h.merge(s);
    return h;
  }

  record(ms: number): void {
    if (ms !== ms) return; // NaN: nothing to record
    this.count++;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
    if (ms < 0) {
      this.negative++;
      this.counts[0]++;
      return;
    }
    const i = Math.floor(ms * this.scale);
    this.counts[i < this.overflowIndex ? i : this.overflowIndex]++;
  }

  merge(other: HistogramSnapshot): void {
    if (other.bucketMs !== this.bucketMs || other.counts.length !== this.counts.length) {
      throw new RangeError('cannot merge histograms with different bucket layouts');
    }
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    this.negative += other.negative;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  /**
   * Nearest-rank percentile, p in [0, 100]: the upper edge of the bucket holding the sample of rank
   * ⌈p/100 · count⌉, capped at `max`. So it is never below the exact value, at most one bucket
   * width above it, and p100 is the exact maximum. NaN when empty.
   */
  percentile(p: number): number {
    if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${p}`);
    if (this.count === 0) return Number.NaN;
    if (p === 0) return this.min;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        if (i === this.overflowIndex) return this.max;
        // Rounded: (i + 1) · 0.01 is not exact in binary and would print as 1.3900000000000001.
        return Math.max(this.min, Math.min(this.max, Number(((i + 1) * this.bucketMs).toPrecision(12))));
      }
    }
    return this.max;
  }

  summary(): LatencySummary {
    const empty = this.count === 0;
    return {
      count: this.count,
      min: empty ? Number.NaN : this.min,
      mean: empty ? Number.NaN : this.sum / this.count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: empty ? Number.NaN : this.max,
      overflow: this.counts[this.overflowIndex],
      negative: this.negative,
    };
  }

  /** A copy safe to post to another thread. */
  snapshot(): HistogramSnapshot {
    return {
      bucketMs: this.bucketMs,
      counts: this.counts.slice(),
      count: this.count,
      sum: this.sum,
      min: this.min,
      max: this.max,
      negative: this.negative,
    };
  }

  /** Non-empty buckets as [upperEdgeMs, count] pairs, for compact JSON output; overflow edge is Infinity → null. */
  sparse(): Array<[number | null, number]> {
    const out: Array<[number | null, number]> = [];
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i];
      if (c === 0) continue;
      out.push([i === this.overflowIndex ? null : Number(((i + 1) * this.bucketMs).toFixed(6)), c]);
    }
    return out;
  }
}
