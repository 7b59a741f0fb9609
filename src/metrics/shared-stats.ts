/**
 * Stats shared by all threads through one SharedArrayBuffer of float64 slots:
 * row 0 global, row 1 ingest, rows 2-3 the watchdog's progress marks, rows 4.. one per edge.
 * Each slot has a single writer, so plain stores suffice; readers may see a value a moment old,
 * never a torn one (aligned float64).
 */
import { EDGE_METRICS, GLOBAL_METRICS, INGEST_METRICS, type EdgeMetric, type GlobalMetric, type IngestMetric, type MetricSpec } from './metric-table.js';

const ROW = 64;
const GLOBAL_ROW = 0;
const INGEST_ROW = 1;
const HEALTH_ROW = 2;
const HEALTH_ROWS = 2;
const FIRST_EDGE_ROW = HEALTH_ROW + HEALTH_ROWS;

/**
 * The watchdog's marks (threads/progress.ts), all ms since the epoch, 0 for "none": each written
 * by one thread, named by its prefix (main, ingest). Edge heartbeats follow, one slot per edge.
 */
const HEALTH_KEYS = [
  /** main: its watchdog tick. */
  'main_beat_ms',
  /** ingest: its heartbeat timer. */
  'ingest_beat_ms',
  /** ingest: since when the MQTT probe has been sent on this connection (0 while not subscribed). */
  'ingest_probe_since_ms',
  /** ingest: when a probe last came back through the MQTT message handler. */
  'ingest_probe_seen_ms',
  /** main: since when the token-check pool has had work and finished none (0: idle or progressing). */
  'main_token_pool_waiting_ms',
  /** main: likewise for the store pool. */
  'main_store_pool_waiting_ms',
] as const;
type HealthMark = (typeof HEALTH_KEYS)[number];
const HEALTH_SLOT = Object.fromEntries(HEALTH_KEYS.map((k, i) => [k, i])) as Record<HealthMark, number>;
const EDGE_BEATS = 16;
const MAX_EDGES = HEALTH_ROWS * ROW - EDGE_BEATS;

function slots(specs: readonly MetricSpec[]): Record<string, number> {
  if (specs.length > ROW) throw new Error('metric table larger than a stats row');
  return Object.fromEntries(specs.map((s, i) => [s.key, i]));
}
const GLOBAL_SLOT = slots(GLOBAL_METRICS);
const INGEST_SLOT = slots(INGEST_METRICS);
const EDGE_SLOT = slots(EDGE_METRICS);

export class SharedStats {
  readonly buffer: SharedArrayBuffer;
  readonly edges: number;
  private readonly f64: Float64Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.f64 = new Float64Array(buffer);
    this.edges = this.f64.length / ROW - FIRST_EDGE_ROW;
  }

  static create(edges: number): SharedStats {
    if (edges > MAX_EDGES) throw new RangeError(`at most ${MAX_EDGES} edge threads`);
    return new SharedStats(new SharedArrayBuffer((FIRST_EDGE_ROW + edges) * ROW * 8));
  }

  /** Wraps the buffer another thread created. */
  static attach(buffer: SharedArrayBuffer): SharedStats {
    return new SharedStats(buffer);
  }

  getGlobal(key: GlobalMetric): number {
    return this.f64[GLOBAL_ROW * ROW + GLOBAL_SLOT[key]];
  }
  setGlobal(key: GlobalMetric, value: number): void {
    this.f64[GLOBAL_ROW * ROW + GLOBAL_SLOT[key]] = value;
  }

  /** A watchdog mark; each has one writer (the thread its name starts with). */
  setMark(key: HealthMark, value: number): void {
    this.f64[HEALTH_ROW * ROW + HEALTH_SLOT[key]] = value;
  }
  mark(key: HealthMark): number {
    return this.f64[HEALTH_ROW * ROW + HEALTH_SLOT[key]];
  }

  /** Edge `index`'s heartbeat; written by that edge only. */
  setEdgeBeat(index: number, value: number): void {
    this.f64[HEALTH_ROW * ROW + EDGE_BEATS + index] = value;
  }
  edgeBeat(index: number): number {
    return this.f64[HEALTH_ROW * ROW + EDGE_BEATS + index];
  }

  getIngest(key: IngestMetric): number {
    return this.f64[INGEST_ROW * ROW + INGEST_SLOT[key]];
  }

  /** A writer bound to the ingest row; only the ingest thread may hold one. */
  ingestWriter(): RowWriter<IngestMetric> {
    return new RowWriter(this.f64, INGEST_ROW * ROW, INGEST_SLOT);
  }

  /** A writer bound to edge `index`'s row; only that edge thread may hold one. */
  edgeWriter(index: number): RowWriter<EdgeMetric> {
    if (index < 0 || index >= this.edges) throw new RangeError(`edge index ${index} out of range`);
    return new RowWriter(this.f64, (FIRST_EDGE_ROW + index) * ROW, EDGE_SLOT);
  }

  /** Largest value of one edge metric over all edges (for timestamps). */
  maxEdges(key: EdgeMetric): number {
    const slot = EDGE_SLOT[key];
    let max = 0;
    for (let e = 0; e < this.edges; e++) max = Math.max(max, this.f64[(FIRST_EDGE_ROW + e) * ROW + slot]);
    return max;
  }

  /** Sum of one edge metric over all edges. */
  sumEdges(key: EdgeMetric): number {
    const slot = EDGE_SLOT[key];
    let total = 0;
    for (let e = 0; e < this.edges; e++) total += this.f64[(FIRST_EDGE_ROW + e) * ROW + slot];
    return total;
  }
}

/** Increments and sets one row. Hot paths call inc/set with a key; the slot lookup is a property read. */
export class RowWriter<K extends string> {
  constructor(
    private readonly f64: Float64Array,
    private readonly base: number,
    private readonly slot: Record<string, number>,
  ) {}

  inc(key: K, by = 1): void {
    this.f64[this.base + this.slot[key]] += by;
  }
  set(key: K, value: number): void {
    this.f64[this.base + this.slot[key]] = value;
  }
  get(key: K): number {
    return this.f64[this.base + this.slot[key]];
  }
}
