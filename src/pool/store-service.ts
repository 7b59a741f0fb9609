/**
 * The store pool, owned by the main thread like the token-check pool: edges reach it over one
 * MessagePort each, ingest over one more (its batches of last positions). SQLite has one writer at
 * a time, so GATEWAY_STORE_THREADS beyond 1 or 2 only helps reads, and each thread runs its tasks
 * one after the other, up to SQLITE_TASKS_IN_FLIGHT handed to it ahead; on PostgreSQL each thread
 * runs as many tasks at once as it has connections.
 *
 * The queue in front of the threads is bounded (GATEWAY_STORE_QUEUE): past it a call is answered
 * 503 GW_ERR_OVERLOADED at once, as is a task that waited too long for a connection. Both are
 * counted (store_overloaded_total).
 *
 * Availability (docs/design/cluster-store.md §5.3): a reply GW_ERR_STORE_UNAVAILABLE from any
 * thread sets the shared gauge store_available to 0 (/readyz answers 503 "store unavailable"), and
 * from then on a `store-ping` task (one round trip to the database) is sent once a second until
 * one succeeds, which sets it back to 1. The gauge lives in the main thread's row of the shared
 * stats, whose one writer is this thread: the pool threads report through their replies. The
 * watchdog's probe (`ping`) never touches the store, so an outage is never a stalled pool.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { FixedPool, isQueueFull } from './fixed-pool.js';
import { servePort } from '../threads/port-rpc.js';
import type { SharedStats } from '../metrics/shared-stats.js';
import type { StoreReply, StoreTask, StoreWorkerData } from './store-protocol.js';

export interface StoreServiceOptions {
  /** GATEWAY_STORE_QUEUE. */
  readonly queue: number;
  /** Tasks per thread at once: 1 on SQLite, the thread's connections on PostgreSQL. */
  readonly concurrency: number;
  /** Where store_available and the 503 counters go (the global row: this thread writes it). */
  readonly stats: SharedStats;
  /** How often the store is pinged while unavailable (default 1,000 ms). */
  readonly pingIntervalMs?: number;
}

/**
 * SQLite: tasks a store thread is handed before it answers the previous ones. Each runs to its end
 * before the next starts (better-sqlite3 is synchronous; one writer anyway), but the next is
 * already in the thread's port when one ends, so under load the thread goes from one write to the
 * next without waiting for this thread (the main thread) to see the reply and send the next task:
 * that round trip was on the serial path of every write.
 */
export const SQLITE_TASKS_IN_FLIGHT = 8;

const OVERLOADED: StoreReply = { ok: false, code: 'GW_ERR_OVERLOADED', message: 'The store is busy (its queue is full); retry after a backoff' };

export class StoreService {
  readonly pool: FixedPool<StoreTask, StoreReply>;
  private readonly stats: SharedStats;
  private readonly pingIntervalMs: number;
  private pinger: NodeJS.Timeout | undefined;
  private pinging = false;
  private closed = false;

  constructor(
    data: StoreWorkerData,
    threads: number,
    private readonly ports: readonly MessagePort[],
    private readonly logger: Logger,
    options: StoreServiceOptions,
  ) {
    this.stats = options.stats;
    this.pingIntervalMs = options.pingIntervalMs ?? 1_000;
    this.stats.setGlobal('store_available', 1);
    this.pool = new FixedPool('store pool', new URL('./store-task.js', import.meta.url), data, threads, { op: 'ping' }, logger, {
      maxQueue: options.queue,
      concurrentTasksPerWorker: options.concurrency,
      // PostgreSQL: each thread's pg.Pool has sockets whose events (a dropped idle connection, keepalives) must be served between tasks.
      atomics: data.database === undefined ? 'sync' : 'async',
    });
    for (const port of ports) {
      servePort<StoreTask, StoreReply>(
        port,
        (task) => this.pool.run(task).then((reply) => this.observe(reply)),
        (err) => {
          if (isQueueFull(err)) return this.observe(OVERLOADED);
          logger.error({ err }, 'store task failed');
          return { ok: false, code: 'GW_ERR_INTERNAL', message: 'Internal error' };
        },
        logger,
      );
    }
  }

  /** Resolves once every store thread has opened the database and answered. */
  ready(): Promise<void> {
    return this.pool.ready();
  }

  /** Counts the 503s and notices an unavailable store; the reply goes on unchanged. */
  private observe(reply: StoreReply): StoreReply {
    if (reply.ok) return reply;
    if (reply.code === 'GW_ERR_OVERLOADED') this.stats.setGlobal('store_overloaded_total', this.stats.getGlobal('store_overloaded_total') + 1);
    if (reply.code === 'GW_ERR_STORE_UNAVAILABLE') {
      this.stats.setGlobal('store_unavailable_total', this.stats.getGlobal('store_unavailable_total') + 1);
      this.lost(reply.message);
    }
    return reply;
  }

  private lost(message: string): void {
    if (this.closed || this.pinger !== undefined) return;
    this.stats.setGlobal('store_available', 0);
    this.logger.warn({ reason: message }, 'store unavailable: readiness 503 until a ping succeeds');
    const since = Date.now();
    this.pinger = setInterval(() => {
      if (this.pinging) return;
      this.pinging = true;
      this.pool
        .run({ op: 'store-ping' })
        .then(
          (reply) => {
            if (!reply.ok || this.pinger === undefined) return;
            clearInterval(this.pinger);
            this.pinger = undefined;
            this.stats.setGlobal('store_available', 1);
            this.logger.info({ unavailableMs: Date.now() - since }, 'store available again');
          },
          () => undefined, // queue full or the thread ended: the next tick tries again
        )
        .finally(() => {
          this.pinging = false;
        });
    }, this.pingIntervalMs);
    this.pinger.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pinger !== undefined) clearInterval(this.pinger);
    this.pinger = undefined;
    for (const port of this.ports) port.close();
    await this.pool.close();
  }
}
