/**
 * The memory scenario's per-thread probe, loaded into a benchmark target with `--require` (Node
 * runs `--require` preloads in every worker thread too, which `--import` does not). Each thread
 * (main, ingest, each edge, each pool thread) writes its V8 heap to `<BENCH_MEMORY_PROBE_DIR>/<threadId>.json`
 * once at start and again whenever `<dir>/request` holds a new number (`<n>`; `<n> gc`: run a
 * full GC first, with `--expose-gc`; `<n> snapshot`: write `<threadId>.heapsnapshot` too). The bench reads them (memory-sample.ts). Nothing of the
 * gateway is changed: the probe only reads `v8.getHeapStatistics()` and `process.memoryUsage()`.
 *
 * Threads with a free event loop check the request file every 200 ms (an unref'd timer). An idle
 * Piscina thread in 'sync' atomics mode blocks in Atomics.wait and runs no timer: it checks each
 * time Piscina reads a task (`receiveMessageOnPort`, wrapped here), which the watchdog's probe task
 * makes happen about once a second.
 */
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { basename, join } from 'node:path';
import { getHeapStatistics, getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import workerThreads from 'node:worker_threads';

const dir = process.env.BENCH_MEMORY_PROBE_DIR;

/** Which thread of the gateway this is, from what its workerData holds (src/gateway.ts, src/pool/fixed-pool.ts). */
function label(): string {
  if (workerThreads.isMainThread) return 'main';
  const data = workerThreads.workerData as Record<string, unknown> | null | undefined;
  if (data && typeof data.entry === 'string') {
    const task = basename(data.entry).replace(/\.js$/, '');
    return task === 'store-task' ? 'store pool' : task === 'token-check-task' ? 'token pool' : task;
  }
  if (data && 'edgePorts' in data) return 'ingest';
  if (data && typeof data.index === 'number' && 'ingestPort' in data) return `edge ${data.index}`;
  return `worker ${workerThreads.threadId}`;
}

let answered = -1;

function sample(request: number, gc: boolean): void {
  if (gc) (globalThis as { gc?: () => void }).gc?.();
  const heap = getHeapStatistics();
  const usage = process.memoryUsage();
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size }]),
  );
  const file = join(dir!, `${workerThreads.threadId}.json`);
  const record = {
    thread: label(),
    threadId: workerThreads.threadId,
    request,
    gc,
    at: Date.now(),
    heapUsed: heap.used_heap_size,
    heapTotal: heap.total_heap_size,
    heapPhysical: heap.total_physical_size,
    mallocedMemory: heap.malloced_memory,
    externalMemory: heap.external_memory,
    arrayBuffers: usage.arrayBuffers,
    /** The Worker's young generation limit (V8's default 48, or the edges' cap); 0 on the main thread. */
    maxYoungGenerationSizeMb: workerThreads.resourceLimits.maxYoungGenerationSizeMb ?? 0,
    spaces,
  };
  writeFileSync(`${file}.tmp`, JSON.stringify(record));
  renameSync(`${file}.tmp`, file);
}

function check(): void {
  let text: string;
  try {
    text = readFileSync(join(dir!, 'request'), 'latin1');
  } catch {
    return; // no request yet
  }
  const [n, flag] = text.trim().split(' ');
  const request = Number(n);
  if (!Number.isInteger(request) || request === answered) return;
  answered = request;
  // `<n> snapshot`: a heap snapshot of each thread too, for finding what the heap holds (by hand).
  if (flag === 'snapshot') writeHeapSnapshot(join(dir!, `${workerThreads.threadId}.heapsnapshot`));
  sample(request, flag === 'gc' || flag === 'snapshot');
}

if (dir) {
  sample(0, false);
  setInterval(check, 200).unref();
  if (!workerThreads.isMainThread) {
    const receive = workerThreads.receiveMessageOnPort;
    workerThreads.receiveMessageOnPort = (port) => {
      check();
      return receive(port);
    };
  }
}
