/**
 * The token-check pool, owned by the main thread: one pool for all edge threads, which reach it
 * over a MessagePort each (like ingest), so pool threads are siblings of the edges and their number
 * is set once (GATEWAY_POOL_THREADS), not multiplied by the edge count.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { fixedPool } from './fixed-pool.js';
import { servePort } from '../threads/port-rpc.js';
import type { PoolReply, PoolTask, TokenCheckConfig } from '../auth/token-checks.js';

/** A check's answer, or `internal` when the task itself failed. */
export type PoolServiceReply = PoolReply | { readonly ok: false; readonly reason: 'internal' };

export class TokenService {
  private readonly pool: Piscina<PoolTask, PoolReply>;

  constructor(config: TokenCheckConfig, threads: number, private readonly ports: readonly MessagePort[]) {
    // A connect storm queues here, not in the edges' event loops; bounded.
    this.pool = fixedPool(new URL('./token-check-task.js', import.meta.url), config, threads);
    for (const port of ports) {
      servePort<PoolTask, PoolServiceReply>(port, (task) => this.pool.run(task), () => ({ ok: false, reason: 'internal' }));
    }
  }

  /** Resolves once every pool thread has started and answered: a broken key fails the start, not a client. */
  async ready(threads: number): Promise<void> {
    await Promise.all(Array.from({ length: threads }, () => this.pool.run({ kind: 'jwt', token: undefined })));
  }

  async close(): Promise<void> {
    for (const port of this.ports) port.close();
    await this.pool.close();
  }
}
