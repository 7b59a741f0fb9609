/**
 * A Piscina pool as the main thread runs them: a fixed number of threads (started with the
 * gateway, not on the first task) and a bounded queue, so a storm of tasks waits here, not in the
 * edges' event loops, and past the bound is refused instead of growing memory.
 *
 * Every pool thread starts from one CommonJS entry (pool-entry.cts) that loads the task module
 * with import(), before the thread reports ready. Piscina's own loader first require()s the task file and falls back to import()
 * when that throws; on Node 20 with require(esm) a task module that is require()d and then
 * imported again can fail start-up with ERR_INTERNAL_ASSERTION ("Unexpected status of a module
 * that is imported again after being required"). Through the entry, the task module is only ever
 * imported, once. A pool thread that fails anyway is an `error` event here: it fails the start
 * (ready() rejects) or, later, is logged while Piscina starts another thread.
 *
 * The pool also tracks its progress for the watchdog (threads/progress.ts): since when it has had
 * work waiting and finished none.
 */
import { Piscina } from 'piscina';
import type { Logger } from 'pino';

/** Tasks that may wait for a thread, unless the pool is given its own bound (the store pool: GATEWAY_STORE_QUEUE). */
const MAX_QUEUE = 10_000;
const ENTRY = new URL('./pool-entry.cjs', import.meta.url);

export interface FixedPoolOptions {
  /** Tasks that may wait for a thread; past it run() rejects with Piscina's "Task queue is at limit" (default 10,000). */
  readonly maxQueue?: number;
  /** Tasks one thread runs at once (default 1): an async task that mostly waits on a database may share its thread. */
  readonly concurrentTasksPerWorker?: number;
  /**
   * How an idle thread waits for its next task (default 'sync': Atomics.wait, the lowest latency,
   * but nothing else runs on the thread meanwhile). 'async' (Atomics.waitAsync) keeps the thread's
   * event loop turning between tasks: what a thread with database sockets of its own needs.
   */
  readonly atomics?: 'sync' | 'async';
}

/** Piscina's refusal of a task when the queue is at maxQueue. */
export function isQueueFull(err: unknown): boolean {
  return err instanceof Error && /queue is at limit|queue is full|no task queue available/i.test(err.message);
}

/** What a pool thread's workerData holds: the task module to import, and that module's own data. */
export interface PoolData<D> {
  readonly entry: string;
  readonly data: D;
}

export class FixedPool<T, R> {
  private readonly pool: Piscina<T, R>;
  private outstanding = 0;
  private busySince = 0;
  private lastDone = 0;
  private failStart: ((err: unknown) => void) | undefined;
  private readonly startFailed: Promise<never>;

  constructor(
    /** For logs: `store pool`, `token-check pool`. */
    readonly name: string,
    task: URL,
    workerData: unknown,
    readonly threads: number,
    /** A cheap task that proves a thread answers: ready() and the watchdog send it. */
    private readonly probeTask: T,
    private readonly logger: Logger,
    options: FixedPoolOptions = {},
  ) {
    this.pool = new Piscina<T, R>({
      filename: ENTRY.href,
      workerData: { entry: task.href, data: workerData } satisfies PoolData<unknown>,
      minThreads: threads,
      maxThreads: threads,
      maxQueue: options.maxQueue ?? MAX_QUEUE,
      concurrentTasksPerWorker: options.concurrentTasksPerWorker ?? 1,
      atomics: options.atomics ?? 'sync',
    });
    this.startFailed = new Promise<never>((_, reject) => {
      this.failStart = reject;
    });
    this.startFailed.catch(() => undefined); // observed by ready()
    this.pool.on('error', (err: unknown) => {
      if (this.failStart) {
        this.failStart(err);
        return;
      }
      // A thread that ended with no task of its own (one that failed as it started, or crashed
      // between tasks). Piscina replaces a thread that had started; a replacement that fails to
      // start is not retried, and the watchdog sees the pool stop (threads/progress.ts).
      this.logger.error({ err, pool: name }, 'pool thread failed');
    });
  }

  /** Resolves once every thread has loaded its task module and answered the probe; rejects if one fails. */
  async ready(): Promise<void> {
    try {
      await Promise.race([Promise.all(Array.from({ length: this.threads }, () => this.run(this.probeTask))), this.startFailed]);
    } catch (err) {
      throw new Error(`${this.name} could not start: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.failStart = undefined;
    }
  }

  run(task: T): Promise<R> {
    if (this.outstanding++ === 0) this.busySince = Date.now();
    return this.pool.run(task).finally(() => {
      this.outstanding--;
      this.lastDone = Date.now();
    });
  }

  /** Since when the pool has had work and finished none (0: idle, or it finished something since). */
  waitingSinceMs(): number {
    return this.outstanding === 0 ? 0 : Math.max(this.busySince, this.lastDone);
  }

  /** Sends the probe task when the pool is idle, so that an idle pool is judged too. */
  probe(): void {
    if (this.outstanding > 0) return;
    this.run(this.probeTask).catch((err: unknown) => this.logger.warn({ err, pool: this.name }, 'pool probe task failed'));
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
