/**
 * The store pool, owned by the main thread like the token-check pool: edges reach it over one
 * MessagePort each, ingest over one more (its batches of last positions). SQLite has one writer at a time, so GATEWAY_STORE_THREADS beyond 1 or 2 only
 * helps reads.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { FixedPool } from './fixed-pool.js';
import { servePort } from '../threads/port-rpc.js';
import type { StoreReply, StoreTask, StoreWorkerData } from './store-protocol.js';

export class StoreService {
  readonly pool: FixedPool<StoreTask, StoreReply>;

  constructor(
    data: StoreWorkerData,
    threads: number,
    private readonly ports: readonly MessagePort[],
    logger: Logger,
  ) {
    this.pool = new FixedPool('store pool', new URL('./store-task.js', import.meta.url), data, threads, { op: 'ping' }, logger);
    for (const port of ports) {
      servePort<StoreTask, StoreReply>(
        port,
        (task) => this.pool.run(task),
        (err) => {
          logger.error({ err }, 'store task failed');
          const full = err instanceof Error && /queue is full/i.test(err.message);
          return full
            ? { ok: false, code: 'GW_ERR_OVERLOADED', message: 'The store is busy; retry shortly' }
            : { ok: false, code: 'GW_ERR_INTERNAL', message: 'Internal error' };
        },
        logger,
      );
    }
  }

  /** Resolves once every store thread has opened the database and answered. */
  ready(): Promise<void> {
    return this.pool.ready();
  }

  async close(): Promise<void> {
    for (const port of this.ports) port.close();
    await this.pool.close();
  }
}
