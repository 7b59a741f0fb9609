/**
 * A real Mosquitto (Debian's package, installed by .ci/run) on a free port, configured from
 * mosquitto/mosquitto.conf with only the listener port changed. It can be stopped and started
 * again on the same port to test broker restarts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { REPO_ROOT } from './gateway-process.js';
import { freePort, waitForPort } from '../../src/util/ports.js';
import { localMosquittoConf } from '../../scripts/local-mosquitto.js';

export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startMosquitto(): Promise<Mosquitto> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gw-mosquitto-'));
  const confPath = join(dir, 'mosquitto.conf');
  writeFileSync(confPath, localMosquittoConf(REPO_ROOT, port));
  let child: ChildProcess | undefined;

  // Mosquitto block-buffers its log when stdout is a pipe, so readiness is "the port accepts".
  const start = async () => {
    const proc = spawn('mosquitto', ['-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let failure: Error | undefined;
    proc.once('error', (err) => { failure = new Error(`cannot run mosquitto (is it installed? .ci/run installs it): ${err.message}`); });
    proc.once('exit', (code) => { failure ??= new Error(`mosquitto exited with ${code}`); });
    await waitForPort(port, 10_000, () => failure);
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  };
  await start();
  onTestFinished(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { url: `mqtt://127.0.0.1:${port}`, port, stop, start };
}
