/**
 * The benchmark's MQTT publisher: fixed payloads per device, stamped with TS right before publish,
 * paced evenly at a total rate (message k goes to device k mod D at t0 + k/rate).
 */
import type { Socket } from 'node:net';
import { connect, type MqttClient } from 'mqtt';

/** Shared clock of publisher, gateway and load client (notes/latency.md). */
export const nowTs = (): number => performance.timeOrigin + performance.now();

export async function connectPublisher(url: string, timeoutMs = 10_000): Promise<MqttClient> {
  const client = connect(url, {
    clientId: `bench-latency-${process.pid}`,
    reconnectPeriod: 0, // a broker that drops the publisher mid-run invalidates the run
    connectTimeout: timeoutMs,
    queueQoSZero: false,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error(`could not connect to ${url}`)));
    });
  } catch (err) {
    client.end(true);
    throw err;
  }
  // Nagle on this socket alone adds ~20 ms at p50 (notes/latency.md).
  const stream = client.stream as Partial<Socket>;
  if (typeof stream.setNoDelay !== 'function') throw new Error('publisher stream is not a TCP socket; cannot disable Nagle');
  stream.setNoDelay(true);
  return client;
}

export interface PaceOptions {
  readonly client: MqttClient;
  readonly deviceIds: readonly string[];
  /** Messages per second, all devices together. */
  readonly rate: number;
  /** Publisher lag is tracked from here on (the measured window); earlier hiccups are warm-up. */
  readonly lagFromTs: number;
  /** Publishing stops before the first message whose TS would exceed this. */
  readonly endTs: number;
  /** Called with the device index and TS of every message published. */
  readonly onPublish: (device: number, ts: number) => void;
}

export interface PaceResult {
  readonly published: number;
  readonly firstTs: number;
  readonly lastTs: number;
  /** Largest delay between when a message was due and when it was sent, ms, from `lagFromTs` on. */
  readonly maxLagMs: number;
}

/** Most messages sent in one timer turn, so a stalled loop catches up without starving I/O. */
const MAX_BURST = 2000;

export function publishPaced(o: PaceOptions): Promise<PaceResult> {
  // Payload text around TS is fixed per device, so the bytes on the wire vary only in TS.
  const heads = o.deviceIds.map((id, i) => {
    const lat = (-33.45 + ((i % 100) - 50) * 0.0005).toFixed(6);
    const lon = (-70.66 + (Math.floor(i / 100) % 100 - 50) * 0.0005).toFixed(6);
    return `{"DEVICE_ID":${JSON.stringify(id)},"LAT":${lat},"LON":${lon},"SPEED":42.5,"HEADING":180.0,"TS":`;
  });
  const topics = o.deviceIds.map((id) => `gps/${id}`);
  const d = o.deviceIds.length;
  const t0 = performance.now();
  let k = 0;
  let firstTs = Number.NaN;
  let lastTs = Number.NaN;
  let maxLagMs = 0;

  return new Promise((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      const dueCount = Math.floor(((now - t0) * o.rate) / 1000) + 1;
      const limit = Math.min(dueCount, k + MAX_BURST);
      if (k < limit && nowTs() >= o.lagFromTs) maxLagMs = Math.max(maxLagMs, now - (t0 + (k * 1000) / o.rate));
      while (k < limit) {
        const device = k % d;
        const ts = nowTs();
        if (ts > o.endTs) {
          resolve({ published: k, firstTs, lastTs, maxLagMs });
          return;
        }
        o.client.publish(topics[device], `${heads[device]}${ts}}`, { qos: 0 });
        if (k === 0) firstTs = ts;
        lastTs = ts;
        o.onPublish(device, ts);
        k++;
      }
      if (nowTs() >= o.endTs) {
        resolve({ published: k, firstTs, lastTs, maxLagMs });
        return;
      }
      const nextAt = t0 + (k * 1000) / o.rate;
      setTimeout(tick, Math.max(0, nextAt - performance.now()));
    };
    tick();
  });
}
