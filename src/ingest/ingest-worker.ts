/**
 * Entry of the ingest thread (GATEWAY_INGEST_THREAD=own, the default): ingest-thread.ts on a thread
 * of its own, reporting to the main thread.
 */
import { workerData } from 'node:worker_threads';
import { onCloseRequest, reportToMain } from '../threads/worker-runtime.js';
import { runIngest, type IngestWorkerData } from './ingest-thread.js';

export type { IngestWorkerData } from './ingest-thread.js';

runIngest(workerData as IngestWorkerData, { ownThread: true, report: reportToMain, onClose: onCloseRequest });
