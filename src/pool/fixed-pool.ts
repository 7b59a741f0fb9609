/**
 * A Piscina pool as the main thread runs them: a fixed number of threads (started with the
 * gateway, not on the first task) and a bounded queue, so a storm of tasks waits here, not in the
 * edges' event loops, and past the bound is refused instead of growing memory.
 */
import { Piscina } from 'piscina';

const MAX_QUEUE = 10_000;

export function fixedPool<T, R>(task: URL, workerData: unknown, threads: number): Piscina<T, R> {
  return new Piscina<T, R>({ filename: task.href, workerData, minThreads: threads, maxThreads: threads, maxQueue: MAX_QUEUE });
}
