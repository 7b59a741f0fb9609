/**
 * Load-client worker thread: opens its share of WebSocket connections, records one latency sample
 * per live telemetry message, and reports counters and a histogram to the main thread.
 *
 * A message is a sample iff its TS lies inside the window the main thread announced before it
 * published anything in that window, so snapshots (older TS) and warm-up traffic never count,
 * whatever order the frames and the announcement arrive in.
 *
 * With `dialect: 'socketio'` each connection speaks Engine.IO 4 / Socket.IO 4 (websocket transport
 * only): it waits for the open packet `0{…}`, sends `40` (connect to the default namespace), counts
 * as opened only once `40{…}` comes back, answers every ping `2` with `3`, and hands each event
 * packet `42[…]` to the same counting as a plain message (TS is found by the same byte search).
 *
 * With `dialect: 'azure'` each connection speaks Azure Web PubSub's json.reliable.webpubsub.azure.v1
 * on `config.path` as given (its token names the groups): it counts as opened at the `connected`
 * system message, hands each `message` frame to the same counting, and acknowledges as the
 * official client does, with a cumulative `{"type":"sequenceAck","sequenceId":n}`: once `ackEvery`
 * messages arrived since its last ack, and on a timer every `ackIntervalMs` if anything arrived
 * (the server ends a session with 1000 messages unacknowledged). A `disconnected` message is kept
 * as the reason of the close that follows.
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
const counters: WorkerCounters = { frames: 0, measured: 0, early: 0, late: 0, control: 0, unexpectedCloses: 0, lastMeasuredAt: 0, measuredBytes: 0, acks: 0 };
const closeErrors: string[] = [];
const clients: RawWsClient[] = [];
// Until the window is announced nothing is a sample.
let windowStart = Number.POSITIVE_INFINITY;
let windowEnd = Number.POSITIVE_INFINITY;
let finishing = false;

const extractTs = config.encoding === 'msgpack' ? extractMsgpackTs : extractJsonTs;
const dialect = config.dialect ?? 'plain';

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
    counters.measuredBytes += payload.length;
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

// Engine.IO / Socket.IO packet type bytes (first characters of a text frame).
const EIO_OPEN = 0x30; // '0'
const EIO_CLOSE = 0x31; // '1'
const EIO_PING = 0x32; // '2'
const EIO_MESSAGE = 0x34; // '4', followed by the Socket.IO packet type:
const SIO_CONNECT = 0x30; // '40'
const SIO_DISCONNECT = 0x31; // '41'
const SIO_EVENT = 0x32; // '42'
const SIO_CONNECT_ERROR = 0x34; // '44'
const SIO_CONNECT_PACKET = Buffer.from('40', 'latin1');
const EIO_PONG_PACKET = Buffer.from('3', 'latin1');

/**
 * One Socket.IO connection: the WebSocket handshake, then the Engine.IO open and the namespace
 * connect. Resolves at the `40` ack; rejects on `44`, a close, or the handshake timeout.
 */
function connectSocketIo(path: string): Promise<RawWsClient> {
  return new Promise((resolve, reject) => {
    let client: RawWsClient | undefined;
    let connected = false;
    let settled = false;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      client?.destroy();
      if (!settled) {
        settled = true;
        reject(err);
      }
    };
    const timer = setTimeout(() => fail(new Error(`Socket.IO connect not acknowledged within ${config.handshakeTimeoutMs} ms`)), config.handshakeTimeoutMs);
    const text = (payload: Buffer): string => payload.toString('utf8', 0, Math.min(payload.length, 200));
    const onFrame = (payload: Buffer, binary: boolean, receivedAt: number): void => {
      const type = payload[0];
      if (type === EIO_MESSAGE) {
        const sio = payload[1];
        if (sio === SIO_EVENT) {
          onMessage(payload, binary, receivedAt);
        } else if (sio === SIO_CONNECT) {
          if (connected) return;
          connected = true;
          clearTimeout(timer);
          settled = true;
          resolve(client!);
        } else if (sio === SIO_CONNECT_ERROR && !connected) {
          fail(new Error(`Socket.IO connect refused: ${text(payload)}`));
        } else if (sio === SIO_DISCONNECT && connected) {
          // The server left the namespace: no more telemetry on this socket. Count it once and drop
          // the transport (closed by us from here on, so it is not counted again).
          onClose({ code: undefined, error: new Error('Socket.IO server disconnected the socket (41)'), byUs: false });
          client?.destroy();
        }
      } else if (type === EIO_PING) {
        client?.sendText(EIO_PONG_PACKET);
      } else if (type === EIO_OPEN) {
        client?.sendText(SIO_CONNECT_PACKET);
      } else if (type === EIO_CLOSE && !connected) {
        fail(new Error('Engine.IO close before the Socket.IO connect'));
      }
    };
    RawWsClient.connect({
      host: config.host,
      port: config.port,
      path,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      onOpen: (c) => (client = c),
      onMessage: onFrame,
      onClose: (info) => {
        if (connected) onClose(info);
        else fail(info.error ?? new Error(`closed before the Socket.IO connect (code ${info.code ?? 'none'})`));
      },
    }).catch((err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
  });
}

const AZURE_SUBPROTOCOL = 'json.reliable.webpubsub.azure.v1';
/** A reliable data message starts with its sequence id: `{"sequenceId":123,"type":"message",…}`. */
const SEQUENCE_PREFIX = Buffer.from('{"sequenceId":', 'latin1');
const CONNECTED = Buffer.from('"event":"connected"', 'latin1');
const DISCONNECTED = Buffer.from('"event":"disconnected"', 'latin1');
const ackEvery = Math.max(1, config.ackEvery ?? 100);
const ackIntervalMs = Math.max(10, config.ackIntervalMs ?? 1000);

/** One reliable Azure connection's acknowledgement state. */
interface AzureSession {
  client: RawWsClient | undefined;
  /** Highest sequenceId received, and the last one acknowledged. */
  received: number;
  acked: number;
}
const azureSessions: AzureSession[] = [];

function sendAck(session: AzureSession): void {
  if (session.client === undefined || !session.client.isOpen) return;
  session.acked = session.received;
  session.client.sendText(Buffer.from(`{"type":"sequenceAck","sequenceId":${session.received}}`, 'latin1'));
  counters.acks++;
}

/** The sequence id at the start of a reliable data message, or -1 for any other frame. */
function sequenceIdOf(payload: Buffer): number {
  if (payload.length <= SEQUENCE_PREFIX.length || payload.compare(SEQUENCE_PREFIX, 0, SEQUENCE_PREFIX.length, 0, SEQUENCE_PREFIX.length) !== 0) return -1;
  let n = 0;
  for (let i = SEQUENCE_PREFIX.length; i < payload.length; i++) {
    const c = payload[i];
    if (c < 0x30 || c > 0x39) break;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/**
 * One reliable Azure connection: the WebSocket handshake with the subprotocol, then the
 * `connected` system message. Rejects on a close before it, or the handshake timeout.
 */
function connectAzure(path: string): Promise<RawWsClient> {
  return new Promise((resolve, reject) => {
    const session: AzureSession = { client: undefined, received: 0, acked: 0 };
    let connected = false;
    let settled = false;
    let disconnected: string | undefined;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      session.client?.destroy();
      if (!settled) {
        settled = true;
        reject(err);
      }
    };
    const timer = setTimeout(() => fail(new Error(`Azure "connected" not received within ${config.handshakeTimeoutMs} ms`)), config.handshakeTimeoutMs);
    const onFrame = (payload: Buffer, binary: boolean, receivedAt: number): void => {
      const seq = sequenceIdOf(payload);
      if (seq >= 0) {
        // Count first: the receive time is already taken, the ack is the client's own work after it.
        onMessage(payload, binary, receivedAt);
        if (seq > session.received) session.received = seq;
        if (session.received - session.acked >= ackEvery) sendAck(session);
        return;
      }
      if (!connected && payload.includes(CONNECTED)) {
        connected = true;
        clearTimeout(timer);
        settled = true;
        azureSessions.push(session);
        resolve(session.client!);
        return;
      }
      if (payload.includes(DISCONNECTED)) disconnected = payload.toString('utf8', 0, Math.min(payload.length, 200));
      onMessage(payload, binary, receivedAt); // acks, pongs, anything else: control frames
    };
    RawWsClient.connect({
      host: config.host,
      port: config.port,
      path,
      protocol: AZURE_SUBPROTOCOL,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      onOpen: (c) => (session.client = c),
      onMessage: onFrame,
      onClose: (info) => {
        if (connected)
          onClose(disconnected === undefined || info.byUs ? info : { ...info, error: new Error(`code ${info.code ?? 'none'} after ${disconnected}`) });
        else fail(info.error ?? new Error(`closed before "connected" (code ${info.code ?? 'none'})`));
      },
    }).catch((err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
  });
}

/** The official client's timer: every connection with something unacknowledged acks it. */
const ackTimer =
  dialect === 'azure'
    ? setInterval(() => {
        for (const session of azureSessions) if (session.received > session.acked) sendAck(session);
      }, ackIntervalMs)
    : undefined;

async function openAll(): Promise<void> {
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const protocols = new Set<string>();
  const protocol = config.encoding;
  const openNext = async (): Promise<void> => {
    while (next < config.connections.length) {
      const index = next++;
      const ids = config.connections[index];
      const query = ids.map(encodeURIComponent).join(',');
      try {
        const client =
          dialect === 'socketio'
            ? await connectSocketIo(`${config.path}?EIO=4&transport=websocket&device_ids=${query}`)
            : dialect === 'azure'
              ? await connectAzure(config.path)
              : await RawWsClient.connect({
                  host: config.host,
                  port: config.ports?.[index] ?? config.port,
                  path: `${config.path}${config.path.includes('?') ? '&' : '?'}device_ids=${query}`,
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
      clearInterval(ackTimer);
      post({ type: 'result', counters: { ...counters }, histogram: histogram.snapshot(), closeErrors });
      for (const client of clients) client.close(500);
      // Sockets close within the timeout above; then nothing keeps this thread alive.
      port.close();
      return;
  }
});

void openAll();
