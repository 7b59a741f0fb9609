/**
 * 6. REST writes: concurrent POSTs to a collection while WebSocket clients watch its channel.
 * Reports writes per second, the HTTP round trip of a write, and write-to-subscriber latency (POST
 * sent → entity_event received, same clock, every subscriber), with two baselines from the same
 * run: the same transaction on SQLite alone (the storage's ceiling, no HTTP, no bus) and GET /healthz
 * at the same concurrency (the HTTP stack's ceiling, no write).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { DEFAULT_CHANNELS, parseChannelsConfig } from '../../src/features/channels/channel-config.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../../src/protocol/bounded-json.js';
import { openDatabase } from '../../src/store/database.js';
import { EntityStore } from '../../src/features/channels/store/entity-store.js';
import { LatencyHistogram, type LatencySummary } from '../load/histogram.js';
import { startGateway } from '../load/gateway-process.js';

interface RestSizes {
  readonly durationS: number;
  readonly concurrency: number;
  readonly subscribers: number;
}

export const REST_FULL: RestSizes = { durationS: 10, concurrency: 16, subscribers: 10 };
export const REST_QUICK: RestSizes = { durationS: 3, concurrency: 8, subscribers: 5 };
export const REST_SMOKE: RestSizes = { durationS: 1, concurrency: 2, subscribers: 2 };

export interface RestRun {
  readonly concurrency: number;
  readonly subscribers: number;
  readonly writes: number;
  readonly writesPerS: number;
  readonly failedWrites: number;
  readonly httpMs: LatencySummary;
  readonly toSubscriberMs: LatencySummary;
  /** Events a subscriber should have received and did not (0 means every write reached everyone). */
  readonly lost: number;
  readonly sqliteAloneWritesPerS: number;
  readonly healthzPerS: number;
  readonly errors: string[];
}

const histogram = () => new LatencyHistogram({ bucketMs: 0.05, rangeMs: 5000 });

/** Runs `worker` on `concurrency` loops until `durationS` passes; returns calls done. */
async function loop(concurrency: number, durationS: number, worker: () => Promise<void>): Promise<number> {
  const end = performance.now() + durationS * 1000;
  let calls = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await worker();
        calls++;
      }
    }),
  );
  return calls;
}

function sqliteAlone(durationS: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sqlite-'));
  try {
    const db = openDatabase(dir);
    const store = new EntityStore(db, DEFAULT_MAX_JSON_DEPTH);
    const sensores = parseChannelsConfig(DEFAULT_CHANNELS, { historySize: 1000, historyTtlS: 3600 }, 'extraccion').collections.find(
      (c) => c.path === 'sensores',
    )!;
    const end = performance.now() + durationS * 1000;
    let writes = 0;
    while (performance.now() < end) {
      store.create(sensores, { tipo: 'bench', descripcion: String(performance.now()) });
      writes++;
    }
    db.close();
    return writes / durationS;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One writer (latency without queueing), then `sizes.concurrency` writers (throughput). */
export async function restWrites(repoRoot: string, mqttUrl: string, sizes: RestSizes, say: (l: string) => void): Promise<RestRun[]> {
  const runs: RestRun[] = [];
  for (const concurrency of [...new Set([1, sizes.concurrency])]) runs.push(await restRun(repoRoot, mqttUrl, { ...sizes, concurrency }, say));
  return runs;
}

async function restRun(repoRoot: string, mqttUrl: string, sizes: RestSizes, say: (l: string) => void): Promise<RestRun> {
  const errors: string[] = [];
  const gateway = await startGateway({ repoRoot, mqttUrl, logLevel: 'info', startTimeoutMs: 20_000, env: {} });
  const sockets: WebSocket[] = [];
  try {
    const base = `http://127.0.0.1:${gateway.port}`;
    const toSubscriber = histogram();
    let received = 0;
    let lastOffset = 0;
    for (let i = 0; i < sizes.subscribers; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/api/v1/ws?channel=sensors`);
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as { type: string; offset: number; data: { descripcion?: string } };
        if (frame.type !== 'entity_event') return;
        toSubscriber.record(performance.now() - Number(frame.data.descripcion));
        received++;
        if (frame.offset > lastOffset) lastOffset = frame.offset;
      });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      sockets.push(ws);
    }

    say(`rest: ${sizes.concurrency} concurrent writers for ${sizes.durationS}s, ${sizes.subscribers} subscribers on the channel`);
    const http = histogram();
    let failed = 0;
    let ok = 0;
    const started = performance.now();
    await loop(sizes.concurrency, sizes.durationS, async () => {
      const sent = performance.now();
      const res = await fetch(`${base}/api/v1/test-sensors/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tipo: 'bench', descripcion: String(sent) }),
      });
      await res.arrayBuffer();
      http.record(performance.now() - sent);
      if (res.status === 201) ok++;
      else if (failed++ === 0) errors.push(`write answered ${res.status}`);
    });
    const elapsedS = (performance.now() - started) / 1000;
    const expected = ok * sizes.subscribers;
    const deadline = Date.now() + 10_000;
    while (received < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

    say('rest: baselines (SQLite alone, GET /healthz)');
    const sqliteWritesPerS = sqliteAlone(Math.max(1, sizes.durationS / 2));
    const healthzCalls = await loop(sizes.concurrency, Math.max(1, sizes.durationS / 2), async () => {
      await (await fetch(`${base}/healthz`)).arrayBuffer();
    });
    return {
      concurrency: sizes.concurrency,
      subscribers: sizes.subscribers,
      writes: ok,
      writesPerS: ok / elapsedS,
      failedWrites: failed,
      httpMs: http.summary(),
      toSubscriberMs: toSubscriber.summary(),
      lost: Math.max(0, expected - received),
      sqliteAloneWritesPerS: sqliteWritesPerS,
      healthzPerS: healthzCalls / Math.max(1, sizes.durationS / 2),
      errors,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await gateway.stop();
  }
}
