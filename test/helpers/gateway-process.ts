/**
 * Runs the real gateway as `npm start` would (node dist/src/main.js, built by `npm test`), on
 * free ports, and reads its JSON log lines so tests can await what it reports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { TEST_CLUSTER_KEY } from './control-key.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN = `${REPO_ROOT}dist/src/main.js`;

export interface LogLine {
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export interface GatewayProcess {
  readonly port: number;
  readonly mqttUrl: string;
  readonly http: string;
  readonly ws: string;
  readonly logs: LogLine[];
  readonly child: ChildProcess;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  stats(): Promise<Record<string, any>>;
}

export interface StartOptions {
  readonly env?: Record<string, string>;
  /** Wait until the MQTT client has subscribed (default true). */
  readonly waitForMqtt?: boolean;
}

/** A fresh data directory (SQLite), removed when the test ends. */
export function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gateway-test-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startGateway(options: StartOptions = {}): Promise<GatewayProcess> {
  const env: Record<string, string> = {
    GATEWAY_DATA_DIR: options.env?.GATEWAY_DATA_DIR ?? tempDataDir(),
    PATH: process.env.PATH ?? '',
    PORT: '0',
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_BROKER_PORT: '0',
    GATEWAY_BROKER_HOST: '127.0.0.1',
    GATEWAY_THREADS: '1',
    GATEWAY_LOG_LEVEL: 'info',
    GATEWAY_CLUSTER_KEY: TEST_CLUSTER_KEY,
    ...options.env,
  };
  const child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const waiters = new Set<{ predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      resolve(code);
    }),
  );
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text };
      }
      logs.push(line);
      for (const w of waiters)
        if (w.predicate(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
    }
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });

  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const found = logs.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = {
        predicate,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(
          new Error(
            `gateway did not log the awaited line within ${timeoutMs} ms; exit=${exited}; stderr=${stderr.slice(-2000)}; last logs=${JSON.stringify(logs.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      waiters.add(w);
      void exit.then(() => {
        if (waiters.has(w)) {
          waiters.delete(w);
          clearTimeout(timer);
          reject(new Error(`gateway exited (${exited}) before the awaited line; stderr=${stderr.slice(-2000)}; logs=${JSON.stringify(logs.slice(-5))}`));
        }
      });
    });
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (exited !== undefined) return exited;
    child.kill(signal);
    return exit;
  };
  onTestFinished(async () => {
    await stop('SIGKILL');
  });

  const listening = await waitForLog((l) => l.msg === 'gateway listening');
  if (options.waitForMqtt !== false) await waitForLog((l) => l.msg === 'mqtt subscribed');
  const port = listening.port as number;
  const secure = listening.serving === 'https/wss';
  const http = `${secure ? 'https' : 'http'}://127.0.0.1:${port}`;
  const mqttUrl = options.env?.MQTT_URL ?? (listening.mqttUrl as string);
  return {
    port,
    mqttUrl,
    http,
    ws: `${secure ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    logs,
    child,
    waitForLog,
    stop,
    async stats() {
      const res = await fetch(`${http}/api/v1/stream/stats`);
      return (await res.json()) as Record<string, any>;
    },
  };
}

/** Resolves once `probe` returns a truthy value; probes on every gateway stats change, bounded. */
export async function eventually<T>(probe: () => Promise<T | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Its own file so that helpers without vitest (postgres.ts) can use it; re-exported for the tests that import it from here.
export { freeFixedPort } from './free-fixed-port.js';
