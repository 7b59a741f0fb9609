/**
 * The main thread's handle on a worker: waits for its `ready`, asks it to close, and stops it hard
 * only past the shutdown deadline. A worker that dies unexpectedly is reported through `onExit`.
 */
import { Worker, type TransferListItem } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { MainToWorker, WorkerToMain } from './messages.js';

export class WorkerHandle {
  private readonly worker: Worker;
  private exited = false;
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
  ) {
    this.worker = new Worker(file, { workerData, transferList });
    this.exitPromise = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        this.exited = true;
        if (!this.closeRequested) onUnexpectedExit(name, code);
        resolve(code);
      });
    });
    this.worker.on('error', (err) => logger.error({ err, thread: name }, 'thread failed'));
    // Listen from the start: a message posted before anyone listens is lost.
    this.readyPromise = new Promise((resolve, reject) => {
      const onMessage = (message: WorkerToMain) => {
        if (message.t === 'ready') {
          this.worker.off('message', onMessage);
          resolve(message);
        } else if (message.t === 'failed') {
          this.worker.off('message', onMessage);
          reject(new Error(message.message));
        }
      };
      this.worker.on('message', onMessage);
      this.exitPromise.then((code) => reject(new Error(`${name} thread exited with code ${code} before it was ready`)));
    });
    this.readyPromise.catch(() => undefined); // observed by ready(); avoid an unhandled rejection meanwhile
  }

  /** Resolves with the worker's `ready` message; rejects if it fails or exits first. */
  ready(): Promise<Extract<WorkerToMain, { t: 'ready' }>> {
    return this.readyPromise;
  }

  /** Asks the worker to close; past `deadlineMs` it is terminated. Safe to call twice. */
  async close(deadlineMs: number): Promise<void> {
    if (this.exited) return;
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
    if (outcome === 'timeout' && !this.exited) {
      this.logger.error({ thread: this.name, deadlineMs }, 'thread did not close in time; terminating');
      await this.worker.terminate();
    }
  }
}
