/**
 * Starts a benchmark target (the gateway, or a baseline server) as a child process and learns its
 * address from the JSON line it logs once it is listening. Samples its CPU time and RSS from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

interface ServerProcessOptions {
  /** Shown in errors. */
  readonly name: string;
  /** Script run with this Node binary. */
  readonly script: string;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** `msg` of the JSON log line that announces the listening port. */
  readonly readyMsg: string;
  readonly startTimeoutMs: number;
  /** Node options before the script (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). */
  readonly execArgv?: readonly string[];
}

export interface ServerProcess {
  readonly pid: number;
  readonly port: number;
  /** The ready line, parsed (e.g. the gateway's `mqttUrl`). */
  readonly ready: Readonly<Record<string, unknown>>;
  /** Last log lines, for error reports. */
  logTail(): string[];
  /** Process CPU time (user + system, all threads) in ms from /proc, or undefined where unavailable. */
  cpuTimeMs(): number | undefined;
  /** Resident set size in bytes from /proc, or undefined where unavailable. */
  rssBytes(): number | undefined;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with how it ended. Idempotent. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
}

const TAIL_LINES = 30;
/** USER_HZ; 100 on every mainstream Linux build. */
const CLOCK_TICKS_PER_S = 100;

export async function startServer(o: ServerProcessOptions): Promise<ServerProcess> {
  if (!existsSync(o.script)) throw new Error(`${o.script} not found: build first (npm run build)`);
  const child = spawn(process.execPath, [...(o.execArgv ?? []), o.script], { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
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

  const ready = await new Promise<Record<string, unknown> & { port: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${o.name} did not log "${o.readyMsg}" within ${o.startTimeoutMs} ms\n${tail.join('\n')}`));
    }, o.startTimeoutMs);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${o.name} exited during start (code ${code}, signal ${signal})\n${tail.join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      remember(line);
      if (!line.includes(o.readyMsg)) return;
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch (err) {
        // Not a pino line after all (e.g. a pretty-printed log); keep waiting for a JSON one.
        remember(`(bench) unparsable log line: ${(err as Error).message}`);
        return;
      }
      if (entry.msg !== o.readyMsg) return;
      if (typeof entry.port !== 'number') {
        reject(new Error(`"${o.readyMsg}" log line lacks a numeric port: ${line}`));
        return;
      }
      clearTimeout(timer);
      resolve(entry as Record<string, unknown> & { port: number });
    });
  });

  let stopping: ReturnType<ServerProcess['stop']> | undefined;
  return {
    pid: child.pid!,
    port: ready.port,
    ready,
    logTail: () => [...tail],
    cpuTimeMs: () => readCpuTimeMs(child),
    rssBytes: () => readRssBytes(child),
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

function readRssBytes(child: ChildProcess): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'latin1'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
