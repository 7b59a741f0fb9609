/** A device-side MQTT publisher (mqtt.js) with Nagle off, as real low-latency publishers should be. */
import { connectAsync, type MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import { onTestFinished } from 'vitest';
import { signControl } from './control-key.js';

export interface Publisher {
  readonly client: MqttClient;
  position(deviceId: string, fields?: Record<string, unknown>): Promise<void>;
  raw(topic: string, payload: string | Buffer): Promise<void>;
  /** A control message (channel, user/role event, Azure command, revocation) tagged as a backend tags it, with the tests' cluster key by default. */
  control(topic: string, payload: string | Buffer, key?: string): Promise<void>;
}

export async function connectPublisher(url: string): Promise<Publisher> {
  const client = await connectAsync(url, { reconnectPeriod: 0 });
  (client.stream as unknown as Partial<Socket>).setNoDelay?.(true);
  onTestFinished(async () => { await client.endAsync(true); });
  return {
    client,
    position: (deviceId, fields = {}) =>
      client.publishAsync(`gps/${deviceId}`, JSON.stringify({ DEVICE_ID: deviceId, LAT: -33.45, LON: -70.66, SPEED: 10, ...fields })).then(() => undefined),
    raw: (topic, payload) => client.publishAsync(topic, payload).then(() => undefined),
    control: (topic, payload, key) => client.publishAsync(topic, signControl(topic, payload, key)).then(() => undefined),
  };
}
