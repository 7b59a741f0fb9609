/**
 * The benchmark's baseline servers (bench/baselines): each runs as the suite runs it (built JS,
 * PORT=0, a real Mosquitto), announces itself, serves the reference envelope for the devices a
 * client asked for and nothing else, refuses a request without device_ids, carries a small run of
 * the real load client (bench/latency.js with --url/--dialect) without losing a delivery, and
 * exits 0 on SIGTERM.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Server as SocketIoServer } from 'socket.io';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { REPO_ROOT } from '../helpers/gateway-process.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { connectPublisher } from '../helpers/publisher.js';

const run = promisify(execFile);
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface Baseline {
  readonly name: 'ws-reference' | 'uws-bare' | 'socketio-rooms';
  readonly dialect: 'plain' | 'socketio';
}
const BASELINES: Baseline[] = [
  { name: 'ws-reference', dialect: 'plain' },
  { name: 'uws-bare', dialect: 'plain' },
  { name: 'socketio-rooms', dialect: 'socketio' },
];

interface Running {
  readonly port: number;
  /** SIGTERM; resolves with how the process ended (SIGKILL after 5 s). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startBaseline(name: Baseline['name'], mqttUrl: string): Promise<Running> {
  const child = spawn(process.execPath, [`${REPO_ROOT}dist/bench/baselines/${name}.js`], {
    env: { PATH: process.env.PATH ?? '', MQTT_URL: mqttUrl, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  let stopping: ReturnType<Running['stop']> | undefined;
  const stop = (): ReturnType<Running['stop']> =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    })());
  onTestFinished(async () => void (await stop()));
  const lines: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not announce itself in 10 s: ${lines.join('\n')}\n${stderr}`)), 10_000);
    void exited.then(({ code }) => reject(new Error(`${name} exited with ${code} during start: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (!line.includes('baseline listening')) return;
      clearTimeout(timer);
      const entry = JSON.parse(line) as Record<string, unknown>;
      expect(entry).toEqual({ msg: 'baseline listening', port: expect.any(Number), name });
      resolve(entry.port as number);
    });
  });
  return { port, stop };
}

/** A `ws` client that keeps text frames, answers Engine.IO pings, and awaits frames instead of sleeping. */
function textClient(url: string) {
  const ws = new WebSocket(url);
  const texts: string[] = [];
  let cursor = 0;
  const waiters: Array<() => void> = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  ws.on('message', (data: Buffer) => {
    const text = data.toString();
    if (text === '2') ws.send('3'); // Engine.IO ping; harmless for plain servers, which never send it
    texts.push(text);
    wake();
  });
  const closed = new Promise<number>((resolve) =>
    ws.on('close', (code) => {
      resolve(code);
      wake();
    }),
  );
  ws.on('error', () => undefined); // surfaced as close or as an 'unexpected-response'
  onTestFinished(() => ws.terminate());
  const next = (match: (t: string) => boolean, timeoutMs = 5000): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame in ${timeoutMs} ms; got ${JSON.stringify(texts)}`)), timeoutMs);
      const check = (): void => {
        while (cursor < texts.length) {
          const t = texts[cursor++];
          if (match(t)) {
            clearTimeout(timer);
            resolve(t);
            return;
          }
        }
        if (ws.readyState === WebSocket.CLOSED) {
          clearTimeout(timer);
          reject(new Error(`closed; got ${JSON.stringify(texts)}`));
          return;
        }
        waiters.push(check);
      };
      check();
    });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
  return { ws, texts, next, closed, opened };
}

/** Connects as a client of the baseline's dialect; resolves once it is subscribed. */
async function connectClient(b: Baseline, port: number, query: string) {
  if (b.dialect === 'plain') {
    const c = textClient(`ws://127.0.0.1:${port}/api/v1/stream${query}`);
    await c.opened;
    return c;
  }
  const c = textClient(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket${query.replace('?', '&')}`);
  await c.opened;
  await c.next((t) => t.startsWith('0{')); // Engine.IO open
  c.ws.send('40'); // Socket.IO connect, default namespace
  return c;
}

describe.each(BASELINES)('baseline $name', (b) => {
  it('serves the reference envelope for the watched devices only, refuses no device_ids, exits 0 on SIGTERM', async () => {
    const mosquitto = await startMosquitto();
    const server = await startBaseline(b.name, mosquitto.url);

    const client = await connectClient(b, server.port, '?device_ids=BL-A,BL-B');
    if (b.dialect === 'socketio') expect(await client.next((t) => t.startsWith('4'))).toMatch(/^40\{"sid":"[^"]+"\}$/);
    const payloads = {
      'BL-A': JSON.stringify({ DEVICE_ID: 'BL-A', LAT: -33.4567, LON: -70.6789, SPEED: 45, TS: 1732400000123.456 }),
      'BL-C': JSON.stringify({ DEVICE_ID: 'BL-C', LAT: 1, LON: 2 }),
      'BL-B': JSON.stringify({ DEVICE_ID: 'BL-B', LAT: -33.5, LON: -70.5, SPEED: 0, NAME: 'camión 7' }),
    };
    const pub = await connectPublisher(mosquitto.url);
    for (const [device, text] of Object.entries(payloads)) await pub.raw(`gps/${device}`, text);

    const isTelemetry = (t: string): boolean => t.includes('"event":"message"');
    const frames = [await client.next(isTelemetry), await client.next(isTelemetry)];
    for (const frame of frames) {
      const envelope = b.dialect === 'socketio' ? frame.slice('42["message",'.length, -1) : frame;
      const parsed = JSON.parse(envelope) as { data: { timestamp: string; data: { DEVICE_ID: keyof typeof payloads } } };
      const { timestamp } = parsed.data;
      expect(timestamp).toMatch(ISO);
      expect(Math.abs(Date.parse(timestamp) - Date.now())).toBeLessThan(10_000);
      const exact = `{"event":"message","data":{"timestamp":"${timestamp}","data":${payloads[parsed.data.data.DEVICE_ID]}}}`;
      expect(frame).toBe(b.dialect === 'socketio' ? `42["message",${exact}]` : exact);
    }
    expect(frames.map((f) => /"DEVICE_ID":"([^"]+)"/.exec(f)![1]).sort()).toEqual(['BL-A', 'BL-B']);
    // BL-C was published between them on the same MQTT connection: had it been sent, it would be here.
    expect(client.texts.filter((t) => t.includes('BL-C'))).toEqual([]);

    // No device_ids: each refuses the way its stack does.
    if (b.name === 'uws-bare') {
      await expect(connectClient(b, server.port, '')).rejects.toMatchObject({ status: 400 });
    } else if (b.name === 'ws-reference') {
      const bad = await connectClient(b, server.port, '');
      expect(JSON.parse(await bad.next(() => true))).toEqual({
        event: 'error',
        data: { message: 'Debe especificar al menos un device_id en los query params' },
      });
      expect(await bad.closed).toBe(1008);
    } else {
      const bad = await connectClient(b, server.port, '');
      expect(await bad.next((t) => t.startsWith('4'))).toMatch(/^44\{"message":"Debe especificar al menos un device_id/);
    }

    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('carries a latency run of the load client (bench/latency.js --url --dialect) with zero loss', async () => {
    const mosquitto = await startMosquitto();
    const server = await startBaseline(b.name, mosquitto.url);
    const dir = mkdtempSync(join(tmpdir(), 'baseline-bench-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, 'result.json');
    await run(
      process.execPath,
      [
        `${REPO_ROOT}dist/bench/latency.js`,
        ...['--url', `ws://127.0.0.1:${server.port}`, '--mqtt', mosquitto.url, '--dialect', b.dialect],
        ...['--connections', '10', '--devices', '10', '--per-conn', '2', '--rate', '100'],
        ...['--duration', '1', '--warmup', '0.5', '--client-threads', '1', '--out', out],
      ],
      { timeout: 30_000 },
    );
    const result = JSON.parse(readFileSync(out, 'utf8')) as {
      target: { wsUrl: string };
      deliveries: { expected: number; received: number; lost: number; unexpectedCloses: number };
      errors: string[];
    };
    expect(result.target.wsUrl).toBe(`ws://127.0.0.1:${server.port}${b.dialect === 'socketio' ? '/socket.io/' : '/api/v1/stream'}`);
    // 100 msg/s for 1 s over 10 devices, each watched by 2 of the 10 connections.
    expect(result.deliveries.expected).toBeGreaterThanOrEqual(150);
    expect(result.deliveries).toMatchObject({ received: result.deliveries.expected, lost: 0, unexpectedCloses: 0 });
    expect(result.errors).toEqual([]);
  });
});

describe('load client, socketio dialect', () => {
  it('answers Engine.IO pings, so a Socket.IO server with a short heartbeat keeps its connections', async () => {
    // The worker runs as built JS (it is started from dist by URL), so the pool comes from dist too.
    const { ClientPool } = (await import(`${REPO_ROOT}dist/bench/load/client-pool.js`)) as typeof import('../../bench/load/client-pool.js');
    const http = createServer();
    const io = new SocketIoServer(http, { transports: ['websocket'], pingInterval: 50, pingTimeout: 100 });
    onTestFinished(() => new Promise<void>((resolve) => void io.close(() => resolve())));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const joined: string[] = [];
    let heartbeats = 0;
    let enough: () => void;
    let dropped: (err: Error) => void;
    const tenHeartbeats = new Promise<void>((resolve, reject) => ((enough = resolve), (dropped = reject)));
    io.engine.on('connection', (socket: { on(event: 'heartbeat', cb: () => void): void }) =>
      socket.on('heartbeat', () => {
        if (++heartbeats >= 10) enough();
      }),
    );
    io.on('connection', (socket) => {
      joined.push(String(socket.handshake.query.device_ids));
      socket.on('disconnect', (reason) => dropped(new Error(`server dropped a load client: ${reason}`)));
    });

    const pool = await ClientPool.start({
      host: '127.0.0.1',
      port: (http.address() as { port: number }).port,
      path: '/socket.io/',
      dialect: 'socketio',
      encoding: 'json',
      connections: [['P-1', 'P-2'], ['P-3']],
      threads: 1,
      openConcurrency: 2,
      handshakeTimeoutMs: 5000,
      bucketMs: 0.01,
      rangeMs: 1000,
    });
    onTestFinished(() => pool.terminate());
    // 'ready' waited for the Socket.IO connect: both namespaces are joined with their device ids.
    expect(joined.sort()).toEqual(['P-1,P-2', 'P-3']);
    await tenHeartbeats; // ≥ 250 ms of 50 ms pings with a 100 ms timeout: a client without pongs is gone by now
    expect(io.engine.clientsCount).toBe(2);
    const { counters } = await pool.finish();
    expect(counters.unexpectedCloses).toBe(0);
  });
});
