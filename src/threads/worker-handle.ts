/**
 * The main thread's handle on a worker: waits for its `ready`, asks it to close, and stops it hard
 * only past the shutdown deadline. A worker that dies unexpectedly after it was ready is reported
 * through `onUnexpectedExit` (before, its ready() rejects and the start fails).
 *
 * A thread that holds uWS sockets (an edge) cannot be stopped hard: terminating it, or exiting the
 * process while it runs, aborts the process (uv_loop_close with open handles). Such a handle is
 * `unstoppable`: past the deadline close() leaves it running and reports it stuck, and the caller
 * ends the process another way (main.ts).
 */
import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { MainToWorker, WorkerToMain } from './messages.js';
import { unreachable } from './dispatch.js';
import { reportPortErrors } from './port-rpc.js';

export interface WorkerHandleOptions {
  /** Never terminate it (uWS): close() reports it stuck instead. */
  readonly unstoppable?: boolean;
  /** V8 heap limits of the thread (e.g. its young generation: edge threads, src/gateway.ts). */
  readonly resourceLimits?: ResourceLimits;
}

export class WorkerHandle {
  private readonly worker: Worker;
  private exited = false;
  private wasReady = false;
  private readonly exitPromise: Promise<number>;
  private closeRequested = false;
  private readonly readyPromise: Promise<Extract<WorkerToMain, { t: 'ready' }>>;

  constructor(
    readonly name: string,
    file: URL,
    workerData: unknown,
    transferList: TransferListItem[],
    private readonly logger: Logger,
    onUnexpectedExit: (name: string, code: number) => void,
    private readonly options: WorkerHandleOptions = {},
  ) {
    this.worker = new Worker(file, { workerData, transferList, ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}) });
    this.exitPromise = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        this.exited = true;
        if (!this.closeRequested && this.wasReady) onUnexpectedExit(name, code);
        resolve(code);
      });
    });
    this.worker.on('error', (err) => logger.error({ err, thread: name }, 'thread failed'));
    reportPortErrors(this.worker, logger, name);
    // Listen from the start: a message posted before anyone listens is lost.
    this.readyPromise = new Promise((resolve, reject) => {
      const onMessage = (message: WorkerToMain) => {
        switch (message.t) {
          case 'ready':
            this.worker.off('message', onMessage);
            this.wasReady = true;
            resolve(message);
            break;
          case 'failed':
            this.worker.off('message', onMessage);
            reject(new Error(message.message));
            break;
          case 'closed':
            break; // the answer to close(), which waits for the exit
          default:
            unreachable(message);
        }
      };
      this.worker.on('message', onMessage);
      void this.exitPromise.then((code) => reject(new Error(`${name} thread exited with code ${code} before it was ready`)));
    });
    this.readyPromise.catch(() => undefined); // observed by ready(); avoid an unhandled rejection meanwhile
  }

  /** Resolves with the worker's `ready` message; rejects if it fails or exits first. */
  ready(): Promise<Extract<WorkerToMain, { t: 'ready' }>> {
    return this.readyPromise;
  }

  /**
   * Asks the worker to close; past `deadlineMs` it is terminated, unless it is unstoppable. Resolves
   * true once the thread has ended, false if it is still running (unstoppable, stuck). Safe to call twice.
   */
  async close(deadlineMs: number): Promise<boolean> {
    if (this.exited) return true;
    if (!this.closeRequested) {
      this.closeRequested = true;
      this.worker.postMessage({ t: 'close' } satisfies MainToWorker);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), deadlineMs);
    });
    const outcome = await Promise.race([this.exitPromise, timeout]);
    clearTimeout(timer);
    if (outcome !== 'timeout' || this.exited) return true;
    if (this.options.unstoppable) {
      this.logger.error({ thread: this.name, deadlineMs }, 'thread did not close in time, and it cannot be stopped while it holds sockets');
      return false;
    }
    this.logger.error({ thread: this.name, deadlineMs }, 'thread did not close in time; terminating');
    await this.worker.terminate();
    return true;
  }
}
