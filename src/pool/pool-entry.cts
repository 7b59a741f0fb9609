/**
 * The CommonJS entry of every pool thread (see fixed-pool.ts). Piscina require()s this file and
 * awaits its default export, a promise of the task module's handler: the task module named in
 * workerData is import()ed once, and the thread reports ready only when it has loaded. A task
 * module that fails to load ends the thread with its error as it starts, which Piscina reports (as
 * the error of the task given to that thread, or an `error` event on the pool) and does not retry.
 */
import { workerData } from 'node:worker_threads';

type Handler = (task: unknown) => unknown;

const handler: Promise<Handler> = import((workerData as { readonly entry: string }).entry).then((m: { default: Handler }) => m.default);
// Piscina's loader swallows this rejection (and tries other ways to load this file, which find no
// handler): end the thread with the real error instead, which Piscina reports. From a microtask,
// at once: a nextTick or a timer could wait forever once the thread blocks in Atomics.wait.
handler.catch((err: unknown) =>
  queueMicrotask(() => {
    throw err;
  }),
);

export default handler;
