/**
 * Starts the built gateway (`dist/src/main.js`) as a child process for a benchmark run: HTTP and
 * embedded broker on free loopback ports, address learned from the "gateway listening" log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface GatewayProcessOptions {
  /** Repository root; the gateway is `<root>/dist/src/main.js`. */
  readonly repoRoot: string;
  /** GATEWAY_THREADS; the gateway's default when undefined. */
  readonly threads?: number;
  readonly logLevel: string;
  readonly startTimeoutMs: number;
}

export interface GatewayProcess {
  readonly pid: number;
  readonly port: number;
  readonly mqttUrl: string;
  /** Last log lines, for error reports. */
  logTail(): string[];
  /** Process CPU time (user + system) in ms from /proc, or undefined where unavailable. */
  cpuTimeMs(): number | undefined;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with how it ended. Idempotent. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
}

const TAIL_LINES = 30;
/** USER_HZ; 100 on every mainstream Linux build. */
const CLOCK_TICKS_PER_S = 100;

export async function startGateway(o: GatewayProcessOptions): Promise<GatewayProcess> {
  const main = join(o.repoRoot, 'dist', 'src', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} not found: build the gateway first (npm run build)`);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_BROKER_PORT: '0',
    GATEWAY_BROKER_HOST: '127.0.0.1',
    GATEWAY_LOG_LEVEL: o.logLevel,
  };
  // The benchmark publishes to the embedded broker; an inherited MQTT_URL would bypass it.
  delete env.MQTT_URL;
  if (o.threads !== undefined) env.GATEWAY_THREADS = String(o.threads);
  else delete env.GATEWAY_THREADS;

  const child = spawn(process.execPath, [main], { cwd: o.repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Never leave a gateway behind, whatever way this process ends.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const tail: string[] = [];
  const remember = (line: string): void => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      process.off('exit', killOnExit);
      resolve({ code, signal });
    }),
  );
  createInterface({ input: child.stderr! }).on('line', remember);

  const address = await new Promise<{ port: number; mqttUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not log "gateway listening" within ${o.startTimeoutMs} ms\n${tail.join('\n')}`));
    }, o.startTimeoutMs);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited during start (code ${code}, signal ${signal})\n${tail.join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      remember(line);
      if (!line.includes('gateway listening')) return;
      let entry: { msg?: unknown; port?: unknown; mqttUrl?: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch (err) {
        // Not a pino line after all (e.g. a pretty-printed log); keep waiting for a JSON one.
        remember(`(bench) unparsable log line: ${(err as Error).message}`);
        return;
      }
      if (entry.msg !== 'gateway listening') return;
      if (typeof entry.port !== 'number' || typeof entry.mqttUrl !== 'string') {
        reject(new Error(`"gateway listening" log line lacks numeric port or string mqttUrl: ${line}`));
        return;
      }
      clearTimeout(timer);
      resolve({ port: entry.port, mqttUrl: entry.mqttUrl });
    });
  });

  let stopping: ReturnType<GatewayProcess['stop']> | undefined;
  return {
    pid: child.pid!,
    port: address.port,
    mqttUrl: address.mqttUrl,
    logTail: () => [...tail],
    cpuTimeMs: () => readCpuTimeMs(child),
    stop(timeoutMs = 10_000) {
      stopping ??= (async () => {
        child.kill('SIGTERM');
        let killed = false;
        const timer = setTimeout(() => {
          killed = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        const result = await exited;
        clearTimeout(timer);
        return { ...result, killed };
      })();
      return stopping;
    },
  };
}

function readCpuTimeMs(child: ChildProcess): number | undefined {
  try {
    // /proc/<pid>/stat: fields 14 and 15 (utime, stime) in clock ticks; field 2 may contain spaces.
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_S : undefined;
  } catch (err) {
    // Not Linux, or the process is gone: CPU share is reported as unavailable.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
