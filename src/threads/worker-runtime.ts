/**
 * What every worker thread does the same way: report ready/closed/failed to the main thread,
 * and run its close routine once when asked. The thread then ends by itself (its handles are
 * closed), which uWS requires: terminating a thread whose App is still open aborts the process.
 */
import { parentPort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { unreachable } from './dispatch.js';
import type { MainToWorker, WorkerToMain } from './messages.js';

function workerPort() {
  if (!parentPort) throw new Error('this module must run in a worker thread');
  return parentPort;
}

export function reportToMain(message: WorkerToMain): void {
  workerPort().postMessage(message);
}

export function onCloseRequest(logger: Logger, close: () => Promise<void> | void): void {
  const port = workerPort();
  let closing = false;
  port.on('message', (message: MainToWorker) => {
    switch (message.t) {
      case 'close':
        if (closing) return;
        closing = true;
        Promise.resolve()
          .then(close)
          .catch((err: unknown) => logger.error({ err }, 'error while closing thread'))
          .finally(() => {
            reportToMain({ t: 'closed' });
            port.close();
          });
        return;
      default:
        // A type nobody handles does not compile; at run time the crash guard logs it and the thread goes on.
        unreachable(message.t);
    }
  });
}

/** A thrown error in a callback must not end the thread silently: log it and keep serving. */
export function installCrashGuard(logger: Logger): void {
  process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception in thread'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection in thread'));
}
