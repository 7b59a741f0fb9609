/**
 * The child processes of scripts/cluster-local.ts (brokers, gateways, nginx): started with their
 * output in a log file, stopped, and waited for until ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly log: string;
  readonly failure: () => Error | undefined;
}

export function run(command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): Proc {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const out = createWriteStream(logFile);
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  let failure: Error | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (err) => {
      failure = new Error(`cannot run ${command}: ${err.message}`);
      resolve(null);
    });
    child.once('exit', (code, signal) => {
      failure ??= new Error(`${command} exited (${code ?? signal}); its log: ${logFile}`);
      resolve(code);
    });
  });
  return { child, exited, log: logFile, failure: () => failure };
}

export async function stopProc(proc: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill(signal);
  await proc.exited;
}

/** Resolves once GET url answers 200 (the compose healthcheck's /readyz), polling every 50 ms. */
export async function waitReady(url: string, timeoutMs: number, failed: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const failure = failed();
    if (failure) throw failure;
    try {
      const res = await fetch(url);
      last = `${res.status} ${await res.text()}`;
      if (res.ok) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Replaces `pattern` in `text`, or throws: a template that lost a line the script adapts must not run half-adapted. */
