/**
 * A WebSocket reader in its own thread, so it keeps up even while the test's thread is busy
 * publishing: the "fast client" of the slow-consumer tests. It reports the SEQ field of every
 * `message` event once it has seen `untilSeq`.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { onTestFinished } from 'vitest';

const require = createRequire(import.meta.url);

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require(workerData.wsPath);
const ws = new WebSocket(workerData.url);
const seqs = [];
ws.on('message', (data) => {
  const frame = JSON.parse(data.toString());
  if (frame.event === 'subscribed') parentPort.postMessage({ t: 'ready' });
  if (frame.event !== 'message') return;
  seqs.push(frame.data.data.SEQ);
  if (frame.data.data.SEQ === workerData.untilSeq) { parentPort.postMessage({ t: 'done', seqs }); ws.close(); }
});
ws.on('error', (err) => parentPort.postMessage({ t: 'error', message: err.message }));
`;

export interface FastReader {
  ready: Promise<void>;
  done: Promise<number[]>;
}

export function startFastReader(url: string, untilSeq: number): FastReader {
  const worker = new Worker(SOURCE, { eval: true, workerData: { url, untilSeq, wsPath: require.resolve('ws') } });
  onTestFinished(() => worker.terminate().then(() => undefined));
  let ready!: () => void;
  const readyP = new Promise<void>((r) => {
    ready = r;
  });
  const done = new Promise<number[]>((resolve, reject) => {
    worker.on('message', (m: { t: string; seqs?: number[]; message?: string }) => {
      if (m.t === 'ready') ready();
      else if (m.t === 'done') resolve(m.seqs!);
      else reject(new Error(m.message));
    });
    worker.on('error', reject);
  });
  return { ready: readyP, done };
}
