/** A pool task module's own data (fixed-pool.ts wraps it with the name of the module to load). */
import { workerData } from 'node:worker_threads';
import type { PoolData } from './fixed-pool.js';

export function poolData<D>(): D {
  return (workerData as PoolData<D>).data;
}
