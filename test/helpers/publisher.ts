/** A device-side MQTT publisher (mqtt.js) with Nagle off, as real low-latency publishers should be. */
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
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

export interface BusLogin {
  readonly username: string;
  readonly password: string;
}

/**
 * The backend login tests use to publish on the control topics (gateway/channels/…, gateway/events/…,
 * gateway/azure/…, gateway/revocations, gateway/watchdog/…), which the embedded broker keeps from
 * anonymous and device clients. Start the gateway with `...BACKEND_BUS_ENV` and connect with
 * `connectBackend(gw.mqttUrl)`.
 */
export const BACKEND_LOGIN: BusLogin = { username: 'test-backend', password: 'test-backend-secret' };
/** A device login (role device) known to the gateway started with BACKEND_BUS_ENV. */
export const DEVICE_LOGIN: BusLogin = { username: 'test-device', password: 'test-device-secret' };

/**
 * Gateway env giving its embedded broker the two logins above, and keeping anonymous telemetry
 * publishers allowed (logins configured would turn them off) so the telemetry in the same tests works.
 */
export const BACKEND_BUS_ENV: Readonly<Record<string, string>> = {
  GATEWAY_BROKER_USERS: JSON.stringify({
    [BACKEND_LOGIN.username]: { role: 'backend', secret: BACKEND_LOGIN.password },
    [DEVICE_LOGIN.username]: { role: 'device', secret: DEVICE_LOGIN.password },
  }),
  GATEWAY_BROKER_ANONYMOUS: 'telemetry',
};

export async function connectPublisher(url: string, login?: BusLogin, options: IClientOptions = {}): Promise<Publisher> {
  const client = await connectAsync(url, { reconnectPeriod: 0, ...login, ...options });
  (client.stream as unknown as Partial<Socket>).setNoDelay?.(true);
  onTestFinished(async () => {
    await client.endAsync(true);
  });
  return {
    client,
    position: (deviceId, fields = {}) =>
      client.publishAsync(`gps/${deviceId}`, JSON.stringify({ DEVICE_ID: deviceId, LAT: -33.45, LON: -70.66, SPEED: 10, ...fields })).then(() => undefined),
    raw: (topic, payload) => client.publishAsync(topic, payload).then(() => undefined),
    control: (topic, payload, key) => client.publishAsync(topic, signControl(topic, payload, key)).then(() => undefined),
  };
}

/** A publisher with BACKEND_LOGIN, for the control topics. */
export function connectBackend(url: string): Promise<Publisher> {
  return connectPublisher(url, BACKEND_LOGIN);
}
