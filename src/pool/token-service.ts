/**
 * The token-check pool, owned by the main thread: one pool for all edge threads, which reach it
 * over a MessagePort each (like ingest), so pool threads are siblings of the edges and their number
 * is set once (GATEWAY_POOL_THREADS), not multiplied by the edge count.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { FixedPool } from './fixed-pool.js';
import { servePort } from '../threads/port-rpc.js';
import type { PoolReply, PoolTask, TokenCheckConfig } from '../auth/token-checks.js';

/** A check's answer, or `internal` when the task itself failed. */
export type PoolServiceReply = PoolReply | { readonly ok: false; readonly reason: 'internal' };

export class TokenService {
  readonly pool: FixedPool<PoolTask, PoolReply>;

  constructor(
    config: TokenCheckConfig,
    threads: number,
    private readonly ports: readonly MessagePort[],
    logger: Logger,
  ) {
    // A connect storm queues here, not in the edges' event loops; bounded. The probe: a check of no token.
    this.pool = new FixedPool(
      'token-check pool',
      new URL('./token-check-task.js', import.meta.url),
      config,
      threads,
      { kind: 'jwt', token: undefined },
      logger,
    );
    for (const port of ports) {
      servePort<PoolTask, PoolServiceReply>(
        port,
        (task) => this.pool.run(task),
        () => ({ ok: false, reason: 'internal' }),
        logger,
      );
    }
  }

  /** Resolves once every pool thread has started and answered: a broken key fails the start, not a client. */
  ready(): Promise<void> {
    return this.pool.ready();
  }

  async close(): Promise<void> {
    for (const port of this.ports) port.close();
    await this.pool.close();
  }
}
