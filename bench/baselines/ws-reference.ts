/**
 * Baseline `ws-reference`: the design of the FastAPI system the gateway replaces
 * (docs/compat/gps-stream.md), written on Node's `http` server and the `ws` library.
 *
 * What it models, piece by piece as in the reference: one MQTT consumer for every connection; a
 * broker mapping device_id → the set of subscriber queues; one queue per (connection, device),
 * bounded at 100 messages, where a message that finds its queue full is dropped and counted
 * (`asyncio.Queue(maxsize=100)` + `QueueFull`); a sender per connection that drains its queues
 * into the socket; `{"event":"ping"}` every 60 s; the `error` event for a missing `device_ids`;
 * `GET /api/v1/stream/stats` with the reference fields (plus the drops).
 *
 * Why it is faithful and not handicapped: it is what a Node developer would write for that
 * design. The envelope is `JSON.stringify`'d once per MQTT message, not per socket; queues are
 * plain arrays; a sender runs once per event-loop turn (setImmediate) only when its connection has
 * something queued, and writes while `ws.bufferedAmount` stays under 64 KiB, the high-water mark
 * at which Python's `await websocket.send` (transport drain) would also wait. When it is over, the
 * last send's write callback (the frame reached the kernel, so the buffer ahead of it is gone)
 * resumes the sender, event-driven like `drain()`. permessage-deflate is off (also ws 8's default
 * for servers). Nagle is off on the MQTT socket; `ws` sets TCP_NODELAY on its sockets itself.
 */
import { HOST, PORT, startFeed } from './feed.js';
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';

const QUEUE_MAX = 100; // reference: asyncio.Queue(maxsize=100)
const HIGH_WATER = 64 * 1024;
const KEEPALIVE_MS = 60_000;
const PING = JSON.stringify({ event: 'ping', data: { type: 'keep-alive' } });
const MISSING = JSON.stringify({ event: 'error', data: { message: 'Debe especificar al menos un device_id en los query params' } });

interface Connection {
  readonly ws: WebSocket;
  readonly queues: string[][]; // one per device, in the order asked for
  scheduled: boolean;
  waiting: boolean; // over the high-water mark, until a write callback resumes it
}

const subscribers = new Map<string, Set<{ conn: Connection; queue: string[] }>>();
const stats = { total_messages_processed: 0, dropped_messages: 0 };

function schedule(conn: Connection): void {
  if (conn.scheduled || conn.waiting) return;
  conn.scheduled = true;
  setImmediate(flush, conn);
}

function flush(conn: Connection): void {
  conn.scheduled = false;
  const { ws } = conn;
  if (ws.readyState !== WebSocket.OPEN) return;
  for (const queue of conn.queues) {
    while (queue.length > 0) {
      const frame = queue.shift()!;
      if (ws.bufferedAmount + frame.length < HIGH_WATER) {
        ws.send(frame);
        continue;
      }
      conn.waiting = true;
      ws.send(frame, () => {
        conn.waiting = false;
        schedule(conn);
      });
      return;
    }
  }
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/api/v1/stream/stats') {
    let active = 0;
    for (const set of subscribers.values()) active += set.size;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...stats, active_subscribers: active, devices_being_monitored: subscribers.size }));
    return;
  }
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, path: '/api/v1/stream', perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  const raw = new URL(req.url ?? '/', 'http://x').searchParams.get('device_ids') ?? '';
  const ids = [
    ...new Set(
      raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    ),
  ];
  if (ids.length === 0) {
    ws.send(MISSING);
    ws.close(1008, 'device_ids required');
    return;
  }
  const conn: Connection = { ws, queues: [], scheduled: false, waiting: false };
  const subs = ids.map((id) => {
    const sub = { conn, queue: [] as string[] };
    conn.queues.push(sub.queue);
    let set = subscribers.get(id);
    if (!set) subscribers.set(id, (set = new Set()));
    set.add(sub);
    return [id, sub] as const;
  });
  ws.on('close', () => {
    for (const [id, sub] of subs) {
      const set = subscribers.get(id);
      set?.delete(sub);
      if (set?.size === 0) subscribers.delete(id);
    }
  });
  ws.on('error', () => undefined); // a reset client; 'close' follows
});

const keepalive = setInterval(() => {
  for (const ws of wss.clients) if (ws.readyState === WebSocket.OPEN) ws.send(PING);
}, KEEPALIVE_MS);

const feed = startFeed('ws-reference', (payload) => {
  let data: { DEVICE_ID?: unknown };
  try {
    data = JSON.parse(payload.toString('utf8')) as typeof data;
  } catch {
    return; // not JSON: the reference logs and skips it
  }
  if (data === null || typeof data !== 'object' || typeof data.DEVICE_ID !== 'string') return;
  stats.total_messages_processed++;
  const set = subscribers.get(data.DEVICE_ID);
  if (!set) return;
  const frame = JSON.stringify({ event: 'message', data: { timestamp: new Date().toISOString(), data } });
  for (const sub of set) {
    if (sub.queue.length >= QUEUE_MAX) {
      stats.dropped_messages++; // reference: "Cola llena … mensaje descartado"
      continue;
    }
    sub.queue.push(frame);
    schedule(sub.conn);
  }
});
const mqtt = feed.mqtt;

server.listen(PORT, HOST, () => {
  feed.listening((server.address() as { port: number }).port);
});

function shutdown(): void {
  clearInterval(keepalive);
  for (const ws of wss.clients) ws.close(1001, 'going away');
  wss.close();
  server.close(() => process.exit(0)); // once every client answered its close frame
  mqtt.end(true);
  setTimeout(() => process.exit(0), 3000).unref();
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
