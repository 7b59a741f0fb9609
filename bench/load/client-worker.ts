/**
 * Load-client worker thread: opens its share of WebSocket connections, records one latency sample
 * per live telemetry message, and reports counters and a histogram to the main thread.
 *
 * A message is a sample iff its TS lies inside the window the main thread announced before it
 * published anything in that window, so snapshots (older TS) and warm-up traffic never count,
 * whatever order the frames and the announcement arrive in.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { extractJsonTs, extractMsgpackTs } from './frame-ts.js';
import { LatencyHistogram } from './histogram.js';
import { RawWsClient } from './raw-ws-client.js';
import type { FromWorker, ToWorker, WorkerConfig, WorkerCounters } from './worker-messages.js';

if (!parentPort) throw new Error('client-worker must run in a worker thread');
const port = parentPort;
const config = workerData as WorkerConfig;
const post = (message: FromWorker): void => port.postMessage(message);

const histogram = new LatencyHistogram({ bucketMs: config.bucketMs, rangeMs: config.rangeMs });
const counters: WorkerCounters = { frames: 0, measured: 0, early: 0, late: 0, control: 0, unexpectedCloses: 0, lastMeasuredAt: 0 };
const closeErrors: string[] = [];
const clients: RawWsClient[] = [];
// Until the window is announced nothing is a sample.
let windowStart = Number.POSITIVE_INFINITY;
let windowEnd = Number.POSITIVE_INFINITY;
let finishing = false;

const extractTs = config.encoding === 'msgpack' ? extractMsgpackTs : extractJsonTs;

function onMessage(payload: Buffer, _binary: boolean, receivedAt: number): void {
  counters.frames++;
  const ts = extractTs(payload);
  if (ts !== ts) {
    counters.control++;
  } else if (ts < windowStart) {
    counters.early++;
  } else if (ts > windowEnd) {
    counters.late++;
  } else {
    counters.measured++;
    counters.lastMeasuredAt = receivedAt;
    histogram.record(receivedAt - ts);
  }
}

function onClose(info: { code: number | undefined; error: Error | undefined; byUs: boolean }): void {
  if (info.byUs || finishing) return;
  counters.unexpectedCloses++;
  // Keep a few reasons for the report; thousands of identical lines help nobody.
  if (closeErrors.length < 5) closeErrors.push(info.error?.message ?? `closed by server with code ${info.code ?? 'none'}`);
}

async function openAll(): Promise<void> {
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const protocols = new Set<string>();
  const protocol = config.encoding;
  const openNext = async (): Promise<void> => {
    while (next < config.connections.length) {
      const ids = config.connections[next++];
      const query = ids.map(encodeURIComponent).join(',');
      try {
        const client = await RawWsClient.connect({
          host: config.host,
          port: config.port,
          path: `${config.path}?device_ids=${query}`,
          protocol,
          handshakeTimeoutMs: config.handshakeTimeoutMs,
          onMessage,
          onClose,
        });
        clients.push(client);
        protocols.add(client.protocol ?? '(none)');
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, config.openConcurrency) }, openNext));
  post({ type: 'ready', opened: clients.length, failed, firstError, protocols: [...protocols] });
}

const progress = setInterval(() => post({ type: 'progress', counters: { ...counters } }), 250);

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'window':
      windowStart = message.start;
      windowEnd = message.end;
      post({ type: 'window-set' });
      return;
    case 'finish':
      finishing = true;
      clearInterval(progress);
      post({ type: 'result', counters: { ...counters }, histogram: histogram.snapshot(), closeErrors });
      for (const client of clients) client.close(500);
      // Sockets close within the timeout above; then nothing keeps this thread alive.
      port.close();
      return;
  }
});

void openAll();
