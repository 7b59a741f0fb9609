/**
 * Baseline `socketio-rooms`: what most Node teams would build for this job, Socket.IO 4 with one
 * room per device.
 *
 * What it models: the textbook Socket.IO fan-out. A connection middleware refuses a handshake
 * without `device_ids` (the client gets `connect_error`, Socket.IO's way of refusing); on
 * `connection` the socket joins `device:<id>` for each id in `socket.handshake.query.device_ids`
 * (comma list, as the reference endpoint takes it); each MQTT message is parsed once and emitted
 * to its room with `io.to('device:' + id).emit('message', envelope)`. The envelope object is the
 * reference's, so the client frame is `42["message",{"event":"message","data":{…}}]`.
 *
 * Why it is faithful and not handicapped: Socket.IO encodes a room broadcast once per emit, not
 * per socket (the in-memory adapter pre-encodes the packet and engine.io reuses the WebSocket
 * frame), which is its fast path; transports are limited to `websocket` (no long-polling
 * handshake or upgrade), permessage-deflate and HTTP compression are off, no client is served,
 * and everything else keeps Socket.IO's defaults (its 25 s heartbeat included, which clients must
 * answer). Nagle is off on the MQTT socket; `ws` (engine.io's engine) sets TCP_NODELAY itself.
 */
import { HOST, PORT, startFeed } from './feed.js';
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const MISSING = 'Debe especificar al menos un device_id en los query params';

/** Device ids of a handshake query (`?device_ids=A,B`), deduplicated. */
function deviceIds(query: unknown): string[] {
  const raw = Array.isArray(query) ? query.join(',') : typeof query === 'string' ? query : '';
  return [
    ...new Set(
      raw
        .split(',')
        .map((id) => id.trim())
        .filter((id) => id !== ''),
    ),
  ];
}

// Requests Socket.IO does not handle (everything but /socket.io/) get a 404.
const httpServer = createServer((_req, res) => void res.writeHead(404).end());
const io = new Server(httpServer, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});

io.use((socket, next) => {
  if (deviceIds(socket.handshake.query.device_ids).length > 0) return next();
  const err = new Error(MISSING) as Error & { data?: unknown };
  err.data = { event: 'error', data: { message: MISSING } };
  next(err);
});

io.on('connection', (socket) => {
  for (const id of deviceIds(socket.handshake.query.device_ids)) void socket.join(`device:${id}`);
});

const feed = startFeed('socketio-rooms', (payload) => {
  let data: { DEVICE_ID?: unknown };
  try {
    data = JSON.parse(payload.toString('utf8')) as typeof data;
  } catch {
    return; // not JSON
  }
  if (data === null || typeof data !== 'object' || typeof data.DEVICE_ID !== 'string') return;
  io.to(`device:${data.DEVICE_ID}`).emit('message', { event: 'message', data: { timestamp: new Date().toISOString(), data } });
});
const mqtt = feed.mqtt;

httpServer.listen(PORT, HOST, () => {
  feed.listening((httpServer.address() as { port: number }).port);
});

function shutdown(): void {
  // Disconnects every socket (Socket.IO close packet, then the WebSocket close) and closes the server.
  void io.close(() => process.exit(0));
  mqtt.end(true);
  setTimeout(() => process.exit(0), 3000).unref();
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
