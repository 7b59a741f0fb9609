/**
 * The store pool, owned by the main thread like the token-check pool: edges reach it over one
 * MessagePort each. SQLite has one writer at a time, so GATEWAY_STORE_THREADS beyond 1 or 2 only
 * helps reads.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { fixedPool } from './fixed-pool.js';
import { servePort } from '../threads/port-rpc.js';
import type { StoreReply, StoreTask, StoreWorkerData } from './store-protocol.js';

export class StoreService {
  private readonly pool: Piscina<StoreTask, StoreReply>;

  constructor(data: StoreWorkerData, threads: number, private readonly ports: readonly MessagePort[], onError: (err: unknown) => void) {
    this.pool = fixedPool(new URL('./store-task.js', import.meta.url), data, threads);
    for (const port of ports) {
      servePort<StoreTask, StoreReply>(port, (task) => this.pool.run(task), (err) => {
        onError(err);
        const full = err instanceof Error && /queue is full/i.test(err.message);
        return full
          ? { ok: false, code: 'GW_ERR_OVERLOADED', message: 'The store is busy; retry shortly' }
          : { ok: false, code: 'GW_ERR_INTERNAL', message: 'Internal error' };
      });
    }
  }

  async close(): Promise<void> {
    for (const port of this.ports) port.close();
    await this.pool.close();
  }
}
