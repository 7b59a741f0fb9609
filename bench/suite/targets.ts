/**
 * What the suite measures: the gateway and the servers users would pick instead (bench/baselines),
 * all consuming the same broker and serving the same stream to the same load client.
 */
import { join } from 'node:path';
import { startGateway } from '../load/gateway-process.js';
import type { Dialect } from '../load/load-run.js';
import { startServer, type ServerProcess } from '../load/server-process.js';
import type { Encoding } from '../load/worker-messages.js';
import type { MemoryProbe } from '../load/memory-sample.js';

export type TargetName = 'gateway' | 'uws-bare' | 'ws-reference' | 'socketio-rooms';
export const TARGETS: readonly TargetName[] = ['gateway', 'uws-bare', 'ws-reference', 'socketio-rooms'];

interface TargetSpec {
  readonly name: TargetName;
  readonly label: string;
  readonly path: string;
  readonly dialect: Dialect;
  readonly encodings: readonly Encoding[];
}

export const TARGET_SPECS: Readonly<Record<TargetName, TargetSpec>> = {
  gateway: { name: 'gateway', label: 'gateway', path: '/api/v1/stream', dialect: 'plain', encodings: ['json', 'msgpack'] },
  'uws-bare': { name: 'uws-bare', label: 'bare uWS (ceiling)', path: '/api/v1/stream', dialect: 'plain', encodings: ['json'] },
  'ws-reference': { name: 'ws-reference', label: 'ws, reference design', path: '/api/v1/stream', dialect: 'plain', encodings: ['json'] },
  'socketio-rooms': { name: 'socketio-rooms', label: 'Socket.IO rooms', path: '/socket.io/', dialect: 'socketio', encodings: ['json'] },
};

export interface RunningTarget {
  readonly spec: TargetSpec;
  readonly server: ServerProcess;
  /** The broker it consumes (the suite's), where the load client publishes. */
  readonly mqttUrl: string;
  stop(): Promise<void>;
}

/** `probe`: load the per-thread memory probe into the process (the memory scenario). */
export async function startTarget(name: TargetName, repoRoot: string, mqttUrl: string, probe?: MemoryProbe): Promise<RunningTarget> {
  const spec = TARGET_SPECS[name];
  const execArgv = probe?.execArgv(repoRoot) ?? [];
  const server =
    name === 'gateway'
      ? // As `npm start` runs it (default threads), on the suite's broker.
        await startGateway({ repoRoot, mqttUrl, logLevel: 'info', startTimeoutMs: 20_000, execArgv, env: probe?.env })
      : await startServer({
          name,
          script: join(repoRoot, 'dist', 'bench', 'baselines', `${name}.js`),
          cwd: repoRoot,
          env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MQTT_URL: mqttUrl, ...probe?.env },
          readyMsg: 'baseline listening',
          startTimeoutMs: 20_000,
          execArgv,
        });
  return {
    spec,
    server,
    mqttUrl,
    stop: async () => {
      await server.stop();
    },
  };
}
