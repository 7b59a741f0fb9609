/**
 * Main-thread side of the load client: spreads connections over worker threads, announces the
 * measurement window, sums their progress and merges their histograms.
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { LatencyHistogram } from './histogram.js';
import type { Dialect, Encoding, FromWorker, ToWorker, WorkerConfig, WorkerCounters } from './worker-messages.js';

interface ClientPoolOptions {
  readonly host: string;
  readonly port: number;
  /**
   * Several servers (plain dialect): connection i opens to `ports[i % ports.length]`, so the
   * clients split evenly over the nodes; absent: every connection to `port`.
   */
  readonly ports?: readonly number[];
  /**
   * Path without the query: `/api/v1/stream`, or `/socket.io/` with the socketio dialect; with the
   * azure dialect the whole request target (`/client/hubs/<hub>?access_token=…`), device ids unused.
   */
  readonly path: string;
  /** Protocol on top of WebSocket (worker-messages.ts); default 'plain'. 'socketio' and 'azure' need encoding 'json'. */
  readonly dialect?: Dialect;
  /** Azure dialect: sequenceAck after this many messages and every `ackIntervalMs` (worker-messages.ts). */
  readonly ackEvery?: number;
  readonly ackIntervalMs?: number;
  readonly encoding: Encoding;
  /** Device ids per connection, in connection order. */
  readonly connections: ReadonlyArray<ReadonlyArray<string>>;
  readonly threads: number;
  readonly openConcurrency: number;
  readonly handshakeTimeoutMs: number;
  readonly bucketMs: number;
  readonly rangeMs: number;
}

interface PoolResult {
  readonly counters: WorkerCounters;
  readonly histogram: LatencyHistogram;
  readonly closeErrors: string[];
}

const emptyCounters = (): WorkerCounters => ({
  frames: 0,
  measured: 0,
  early: 0,
  late: 0,
  control: 0,
  unexpectedCloses: 0,
  lastMeasuredAt: 0,
  measuredBytes: 0,
  acks: 0,
});

function addCounters(into: WorkerCounters, c: WorkerCounters): void {
  into.frames += c.frames;
  into.measured += c.measured;
  into.early += c.early;
  into.late += c.late;
  into.control += c.control;
  into.unexpectedCloses += c.unexpectedCloses;
  into.lastMeasuredAt = Math.max(into.lastMeasuredAt, c.lastMeasuredAt);
  into.measuredBytes += c.measuredBytes;
  into.acks += c.acks;
}

interface WorkerSlot {
  readonly worker: Worker;
  latest: WorkerCounters;
  /** Resolvers waiting for the next message of a given type. */
  waiters: Map<FromWorker['type'], (m: FromWorker) => void>;
}

export class ClientPool {
  private readonly slots: WorkerSlot[];
  private failure: Error | undefined;
  private onFailure: ((err: Error) => void) | undefined;

  private constructor(slots: WorkerSlot[]) {
    this.slots = slots;
  }

  /**
   * Starts the workers and resolves once every connection has completed its handshake. Rejects,
   * after stopping the workers, if any connection failed: a run with fewer connections than asked
   * for would report numbers for a different load.
   */
  static async start(o: ClientPoolOptions): Promise<ClientPool> {
    const dialect = o.dialect ?? 'plain';
    if (dialect !== 'plain' && dialect !== 'socketio' && dialect !== 'azure') throw new Error(`unknown dialect "${String(dialect)}"`);
    if (dialect !== 'plain' && o.encoding !== 'json') throw new Error(`the ${dialect} dialect carries JSON only (encoding must be json)`);
    const threads = Math.max(1, Math.min(o.threads, o.connections.length));
    if (o.ports !== undefined && (o.ports.length === 0 || dialect !== 'plain')) throw new Error('ports: one or more, plain dialect only');
    const shares: Array<Array<ReadonlyArray<string>>> = Array.from({ length: threads }, () => []);
    const portShares: number[][] = Array.from({ length: threads }, () => []);
    o.connections.forEach((ids, i) => {
      shares[i % threads].push(ids);
      if (o.ports) portShares[i % threads].push(o.ports[i % o.ports.length]);
    });
    const slots = shares.map((share, t): WorkerSlot => {
      const workerData: WorkerConfig = {
        host: o.host,
        port: o.port,
        ...(o.ports ? { ports: portShares[t] } : {}),
        path: o.path,
        encoding: o.encoding,
        ...(dialect !== 'plain' ? { dialect } : {}),
        ...(o.ackEvery !== undefined ? { ackEvery: o.ackEvery } : {}),
        ...(o.ackIntervalMs !== undefined ? { ackIntervalMs: o.ackIntervalMs } : {}),
        connections: share,
        openConcurrency: Math.max(1, Math.ceil(o.openConcurrency / threads)),
        handshakeTimeoutMs: o.handshakeTimeoutMs,
        bucketMs: o.bucketMs,
        rangeMs: o.rangeMs,
      };
      const worker = new Worker(new URL('./client-worker.js', import.meta.url), { workerData });
      return { worker, latest: emptyCounters(), waiters: new Map() };
    });
    const pool = new ClientPool(slots);
    for (const slot of slots) pool.attach(slot);

    const readies = await pool.all('ready');
    let opened = 0;
    let failed = 0;
    let firstError: string | undefined;
    const protocols = new Set<string>();
    for (const r of readies) {
      if (r.type !== 'ready') continue;
      opened += r.opened;
      failed += r.failed;
      firstError ??= r.firstError;
      r.protocols.forEach((p) => protocols.add(p));
    }
    if (failed > 0) {
      await pool.terminate();
      throw new Error(
        `${failed} of ${o.connections.length} WebSocket connections failed (first error: ${firstError}). ` +
          'With many connections check `ulimit -n` and the server log.',
      );
    }
    if (opened !== o.connections.length) throw new Error(`opened ${opened} connections, expected ${o.connections.length}`);
    return pool;
  }

  get threadCount(): number {
    return this.slots.length;
  }

  /** Tells every worker which TS range counts as a sample; resolves when all have applied it. */
  async setWindow(start: number, end: number): Promise<void> {
    await this.all('window-set', { type: 'window', start, end });
  }

  /** Sum of the latest progress reports (at most 250 ms old). */
  progress(): WorkerCounters {
    const total = emptyCounters();
    for (const slot of this.slots) addCounters(total, slot.latest);
    return total;
  }

  /** Event-loop utilisation of each worker since it started, or since `previous`. */
  eventLoopUtilization(previous?: EventLoopUtilization[]): EventLoopUtilization[] {
    return this.slots.map((s, i) => s.worker.performance.eventLoopUtilization(previous?.[i]));
  }

  /** Collects the counters and merged histogram, closes every connection and stops the workers. */
  async finish(): Promise<PoolResult> {
    const results = await this.all('result', { type: 'finish' });
    const counters = emptyCounters();
    let histogram: LatencyHistogram | undefined;
    const closeErrors: string[] = [];
    for (const r of results) {
      if (r.type !== 'result') continue;
      addCounters(counters, r.counters);
      closeErrors.push(...r.closeErrors);
      if (histogram) histogram.merge(r.histogram);
      else histogram = LatencyHistogram.fromSnapshot(r.histogram);
    }
    await this.terminate(2000);
    return { counters, histogram: histogram ?? new LatencyHistogram(), closeErrors };
  }

  /** Waits up to `graceMs` for the workers to exit on their own, then terminates the rest. */
  async terminate(graceMs = 0): Promise<void> {
    await Promise.all(
      this.slots.map(async ({ worker }) => {
        if (worker.threadId < 0) return; // already exited
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        if (graceMs > 0) await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
        if (worker.threadId >= 0) await worker.terminate();
      }),
    );
  }

  private attach(slot: WorkerSlot): void {
    slot.worker.on('message', (m: FromWorker) => {
      if (m.type === 'progress') slot.latest = m.counters;
      if (m.type === 'result') slot.latest = m.counters;
      const waiter = slot.waiters.get(m.type);
      if (waiter) {
        slot.waiters.delete(m.type);
        waiter(m);
      }
    });
    const fail = (err: Error): void => {
      this.failure ??= err;
      this.onFailure?.(err);
    };
    slot.worker.on('error', fail);
    slot.worker.on('exit', (code) => {
      if (code !== 0 && !this.failure) fail(new Error(`client worker exited with code ${code}`));
    });
  }

  /** Optionally sends `message` to every worker and resolves with each worker's next `type` reply. */
  private all(type: FromWorker['type'], message?: ToWorker): Promise<FromWorker[]> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.onFailure = reject;
      Promise.all(
        this.slots.map(
          (slot) =>
            new Promise<FromWorker>((done) => {
              slot.waiters.set(type, done);
              if (message) slot.worker.postMessage(message);
            }),
        ),
      ).then((replies) => {
        this.onFailure = undefined;
        resolve(replies);
      }, reject);
    });
  }
}
