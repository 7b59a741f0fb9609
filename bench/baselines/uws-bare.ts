/**
 * Baseline `uws-bare`: the ceiling. The least a uWebSockets.js server can do to serve the same
 * stream: one App on one thread, a topic per device, `app.publish` per MQTT message.
 *
 * What it models: the idiomatic uWS pub/sub server (upstream's examples): the upgrade handler
 * reads `device_ids` from the query and passes it as userData, `open` subscribes the socket to
 * `gps:<id>` for each, and each MQTT message is parsed once for its DEVICE_ID and published once;
 * uWS queues it per subscriber and flushes every socket once per event-loop turn (so no cork is
 * needed around publishes). The envelope is built once per message by splicing the payload's own
 * text into it, as the gateway does, and only when the topic has subscribers.
 *
 * Why it is the ceiling and not a strawman: uWS's defaults are kept where they are the idiomatic
 * choice (compression off, maxBackpressure 64 KiB, idleTimeout 120 s with automatic pings), Nagle
 * is off on the MQTT socket (uWS writes WebSocket frames without delay), and there is no gateway
 * logic at all: no snapshots, no stats, no slow-consumer policy, no edge threads, no msgpack, no
 * validation beyond what is needed to find the topic. What the gateway costs is its ratio to this.
 */
import { HOST, PORT, startFeed } from './feed.js';
import uWS from 'uWebSockets.js';

interface UserData {
  readonly ids: string[];
}

const app = uWS.App();
app.ws<UserData>('/api/v1/stream', {
  compression: uWS.DISABLED,
  idleTimeout: 120,
  upgrade: (res, req, context) => {
    const ids = (req.getQuery('device_ids') ?? '').split(',').filter((id) => id !== '');
    if (ids.length === 0) {
      res.writeStatus('400 Bad Request').end('device_ids is required');
      return;
    }
    res.upgrade<UserData>(
      { ids },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    for (const id of ws.getUserData().ids) ws.subscribe(`gps:${id}`);
  },
});
app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end();
});

const feed = startFeed('uws-bare', (payload) => {
  const text = payload.toString('utf8');
  let deviceId: unknown;
  try {
    deviceId = (JSON.parse(text) as { DEVICE_ID?: unknown } | null)?.DEVICE_ID;
  } catch {
    return; // not JSON
  }
  if (typeof deviceId !== 'string') return;
  const topic = `gps:${deviceId}`;
  if (app.numSubscribers(topic) === 0) return;
  app.publish(topic, `{"event":"message","data":{"timestamp":"${new Date().toISOString()}","data":${text}}}`);
});
const mqtt = feed.mqtt;

let listenSocket: uWS.us_listen_socket | undefined;
app.listen(HOST, PORT, (token) => {
  if (!token) throw new Error(`cannot listen on ${HOST}:${PORT}`);
  listenSocket = token;
  feed.listening(uWS.us_socket_local_port(token));
});

function shutdown(): void {
  if (listenSocket) uWS.us_listen_socket_close(listenSocket);
  listenSocket = undefined;
  app.close(); // force-closes every socket (clients see 1006); a ceiling keeps no socket list
  mqtt.end(true, () => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
