/**
 * The benchmark's MQTT publisher: fixed payloads per device, stamped with TS right before publish,
 * paced evenly at a total rate (message k goes to device k mod D at t0 + k/rate).
 */
import type { Socket } from 'node:net';
import { connect, type MqttClient } from 'mqtt';

/** Shared clock of publisher, gateway and load client (docs/notes/latency.md). */
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
  // Nagle on this socket alone adds ~20 ms at p50 (docs/notes/latency.md).
  const stream = client.stream as Partial<Socket>;
  if (typeof stream.setNoDelay !== 'function') throw new Error('publisher stream is not a TCP socket; cannot disable Nagle');
  stream.setNoDelay(true);
  return client;
}

interface PaceResult {
  readonly published: number;
  readonly firstTs: number;
  readonly lastTs: number;
  /** Largest delay between when a message was due and when it was sent, ms, from `lagFromTs` on. */
  readonly maxLagMs: number;
}

/** Most messages sent in one timer turn, so a stalled loop catches up without starving I/O. */
const MAX_BURST = 2000;

/** The telemetry payload of device `i` up to its TS: fixed per device, so only TS varies on the wire. */
export function payloadHead(id: string, i: number): string {
  const lat = (-33.45 + ((i % 100) - 50) * 0.0005).toFixed(6);
  const lon = (-70.66 + ((Math.floor(i / 100) % 100) - 50) * 0.0005).toFixed(6);
  return `{"DEVICE_ID":${JSON.stringify(id)},"LAT":${lat},"LON":${lon},"SPEED":42.5,"HEADING":180.0,"TS":`;
}

/** The telemetry payload of device `i` with its TS (the `gps/<id>` message of every run). */
export const telemetryPayload = (head: string, ts: number): string => `${head}${ts}}`;

interface PacedSendOptions {
  /** Messages per second, all devices together. */
  readonly rate: number;
  /** Devices (message k goes to device k mod devices). */
  readonly devices: number;
  readonly lagFromTs: number;
  readonly endTs: number;
  /** Sends message `k` of `device`, stamped `ts` (taken immediately before this call). */
  readonly send: (device: number, ts: number) => void;
}

/** Even pacing of any sender: message k at t0 + k/rate, TS stamped right before each send. */
export function pace(o: PacedSendOptions): Promise<PaceResult> {
  const d = o.devices;
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
        o.send(device, ts);
        if (k === 0) firstTs = ts;
        lastTs = ts;
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
