/**
 * What every baseline shares, so each file holds only its own server: where to listen, the MQTT
 * feed (mqtt.js defaults: reconnect every 1 s, resubscribe; Nagle off; `gps/#` at QoS 0), and the
 * `{"msg":"baseline listening"}` line, printed once the server listens and the subscription is
 * acknowledged.
 */
import type { Socket } from 'node:net';
import { connect, type MqttClient } from 'mqtt';

export const HOST = process.env.HOST ?? '127.0.0.1';
export const PORT = Number(process.env.PORT ?? 0);

interface Feed {
  readonly mqtt: MqttClient;
  /** Call once the server listens, with its port. */
  listening(port: number): void;
}

export function startFeed(name: string, onMessage: (payload: Buffer) => void): Feed {
  const url = process.env.MQTT_URL;
  if (!url) throw new Error('MQTT_URL is required');
  const mqtt = connect(url);
  let port = 0;
  let subscribed = false;
  const announce = (): void => {
    if (port !== 0 && subscribed) console.log(JSON.stringify({ msg: 'baseline listening', port, name }));
  };
  mqtt.on('message', (_topic, payload) => onMessage(payload));
  mqtt.on('error', (err) => console.error(`mqtt error: ${err.message}`));
  mqtt.on('connect', () => {
    (mqtt.stream as unknown as Socket).setNoDelay(true);
    mqtt.subscribe('gps/#', { qos: 0 }, (err) => {
      if (err) throw err;
      if (subscribed) return;
      subscribed = true;
      announce();
    });
  });
  return {
    mqtt,
    listening(listeningPort) {
      port = listeningPort;
      announce();
    },
  };
}
