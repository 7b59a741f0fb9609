/**
 * Attempts on the bus's control topics by clients that must not reach them (anonymous, device
 * logins), shared by the embedded-broker and Mosquitto tests.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { onTestFinished } from 'vitest';
import type { BusLogin } from './publisher.js';

/** One topic under each control prefix (the defaults), with a payload the gateway would accept there. */
export const CONTROL_PUBLISHES: ReadonlyArray<{ readonly topic: string; readonly payload: string }> = [
  {
    topic: 'gateway/channels/sensors',
    payload: JSON.stringify({ type: 'entity_event', entity_type: 'sensor', event_type: 'created', entity_id: 666, data: { forged: 'FORGED-PAYLOAD' } }),
  },
  { topic: 'gateway/events/all', payload: JSON.stringify({ type: 'system_event', data: { forged: 'FORGED-PAYLOAD' } }) },
  { topic: 'gateway/events/user/u1', payload: JSON.stringify({ type: 'task_event', data: { forged: 'FORGED-PAYLOAD' } }) },
  { topic: 'gateway/events/role/admin', payload: JSON.stringify({ type: 'role_event', data: { forged: 'FORGED-PAYLOAD' } }) },
  { topic: 'gateway/azure/extraccion', payload: JSON.stringify({ op: 'send', to: { kind: 'all' }, dataType: 'json', data: 'FORGED-PAYLOAD' }) },
  { topic: 'gateway/revocations', payload: JSON.stringify({ jti: 'FORGED-PAYLOAD', exp: 9_999_999_999 }) },
  { topic: 'gateway/watchdog/_test', payload: JSON.stringify({ hook: 'exit-ingest' }) },
];

/** Filters a device must not be granted: each could read a control topic. */
export const CONTROL_FILTERS = [
  '#',
  'gateway/#',
  'gateway/channels/+',
  'gateway/events/user/u1',
  '+/events/#',
  'gateway/azure/extraccion',
  'gateway/revocations',
  '+/+/+',
];

export async function busClient(url: string, login?: BusLogin, clientId?: string): Promise<MqttClient> {
  const client = await connectAsync(url, { reconnectPeriod: 0, ...login, ...(clientId ? { clientId } : {}) });
  onTestFinished(async () => {
    await client.endAsync(true);
  });
  return client;
}

/**
 * Publishes `payload` on `topic` (QoS 0), then a QoS 1 telemetry probe; resolves 'closed' when the
 * broker dropped the connection (aedes refuses that way) or 'open' when the probe was acknowledged
 * (Mosquitto drops a refused publish silently for MQTT 3.1.1 clients).
 */
export async function publishAttempt(url: string, login: BusLogin | undefined, topic: string, payload: string): Promise<'closed' | 'open'> {
  const client = await busClient(url, login);
  const closed = new Promise<'closed'>((resolve) => client.once('close', () => resolve('closed')));
  client.publish(topic, payload, { qos: 0 });
  const probe = client.publishAsync('gps/PROBE', JSON.stringify({ DEVICE_ID: 'PROBE', LAT: 0, LON: 0 }), { qos: 1 }).then(
    () => 'open' as const,
    () => 'closed' as const,
  );
  return Promise.race([closed, probe]);
}

/** The granted QoS of each filter (128: refused). */
export async function subscribeAttempt(url: string, login: BusLogin | undefined, filters: readonly string[]): Promise<number[]> {
  const client = await busClient(url, login);
  try {
    const granted = await client.subscribeAsync([...filters], { qos: 0 });
    return granted.map((g) => g.qos);
  } catch (err) {
    // mqtt.js rejects a SUBACK with any 0x80 in it; the packet has every grant, in order.
    const granted = (err as { packet?: { granted?: Array<number | { qos: number }> } }).packet?.granted;
    if (!granted) throw err;
    return granted.map((g) => (typeof g === 'number' ? g : g.qos));
  }
}
