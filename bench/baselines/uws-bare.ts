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
import type { Socket } from 'node:net';
import { connect } from 'mqtt';
import uWS from 'uWebSockets.js';

const MQTT_URL = process.env.MQTT_URL;
if (!MQTT_URL) throw new Error('MQTT_URL is required');
const HOST = process.env.HOST ?? '127.0.0.1';
const PORT = Number(process.env.PORT ?? 0);

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

const mqtt = connect(MQTT_URL); // mqtt.js defaults: reconnect every 1 s, resubscribe
mqtt.on('message', (_topic, payload) => {
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
mqtt.on('error', (err) => console.error(`mqtt error: ${err.message}`));

let port = 0;
let subscribed = false;
const announce = (): void => {
  if (port === 0 || !subscribed) return;
  console.log(JSON.stringify({ msg: 'baseline listening', port, name: 'uws-bare' }));
};
mqtt.on('connect', () => {
  (mqtt.stream as unknown as Socket).setNoDelay(true);
  mqtt.subscribe('gps/#', { qos: 0 }, (err) => {
    if (err) throw err;
    if (subscribed) return;
    subscribed = true;
    announce();
  });
});

let listenSocket: uWS.us_listen_socket | undefined;
app.listen(HOST, PORT, (token) => {
  if (!token) throw new Error(`cannot listen on ${HOST}:${PORT}`);
  listenSocket = token;
  port = uWS.us_socket_local_port(token);
  announce();
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
