/**
 * Starts the built gateway (`dist/src/main.js`) for a benchmark run, on free loopback ports, with
 * its embedded broker unless `mqttUrl` names one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type ServerProcess } from './server-process.js';

interface GatewayProcessOptions {
  /** Repository root; the gateway is `<root>/dist/src/main.js`. */
  readonly repoRoot: string;
  /** GATEWAY_THREADS; the gateway's default when undefined. */
  readonly threads?: number;
  readonly logLevel: string;
  readonly startTimeoutMs: number;
  /** An external broker; undefined: the gateway's embedded one. */
  readonly mqttUrl?: string;
  /** Extra environment (e.g. limits for a scenario). */
  readonly env?: Readonly<Record<string, string>>;
  /** Node options before the script (e.g. `--cpu-prof`). */
  readonly execArgv?: readonly string[];
}

export interface GatewayProcess extends ServerProcess {
  readonly mqttUrl: string;
}

export async function startGateway(o: GatewayProcessOptions): Promise<GatewayProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gateway-bench-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_BROKER_PORT: '0',
    GATEWAY_BROKER_HOST: '127.0.0.1',
    GATEWAY_LOG_LEVEL: o.logLevel,
    // The load client is one IP opening thousands of connections: lift the per-IP limits.
    GATEWAY_CONNECT_RATE_PER_IP: '1000000',
    GATEWAY_CONNECT_BURST_PER_IP: '1000000',
    // Each run starts from an empty database of its own.
    GATEWAY_DATA_DIR: dataDir,
    ...o.env,
  };
  // An inherited MQTT_URL would silently replace the broker this run means to use.
  if (o.mqttUrl === undefined) delete env.MQTT_URL;
  else env.MQTT_URL = o.mqttUrl;
  if (o.threads !== undefined) env.GATEWAY_THREADS = String(o.threads);
  else delete env.GATEWAY_THREADS;
  const server = await startServer({
    name: 'gateway',
    script: join(o.repoRoot, 'dist', 'src', 'main.js'),
    cwd: o.repoRoot,
    env,
    readyMsg: 'gateway listening',
    startTimeoutMs: o.startTimeoutMs,
    execArgv: o.execArgv,
  });
  const mqttUrl = server.ready.mqttUrl;
  if (typeof mqttUrl !== 'string') throw new Error('"gateway listening" log line lacks a string mqttUrl');
  const stop = server.stop.bind(server);
  return Object.assign(server, {
    mqttUrl: o.mqttUrl ?? mqttUrl,
    async stop(timeoutMs?: number) {
      const result = await stop(timeoutMs);
      rmSync(dataDir, { recursive: true, force: true });
      return result;
    },
  });
}
