/**
 * The one broker every target of a suite run consumes, so they all see the same MQTT path:
 * Mosquitto (from mosquitto/mosquitto.conf, Nagle off) when it is installed, else a standalone
 * aedes process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../load/server-process.js';
import { freePort, waitForPort } from '../../src/util/ports.js';
import { localMosquittoConf } from '../../scripts/local-mosquitto.js';

export interface Broker {
  readonly kind: 'mosquitto' | 'aedes';
  readonly url: string;
  /** The broker's process id (CPU and run-queue waits per thread, tails.ts). */
  readonly pid?: number;
  stop(): Promise<void>;
}

export async function startBroker(repoRoot: string): Promise<Broker> {
  const hasMosquitto = spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error === undefined;
  if (!hasMosquitto) {
    const aedes = await startServer({
      name: 'aedes broker',
      script: join(repoRoot, 'dist', 'bench', 'load', 'aedes-broker.js'),
      cwd: repoRoot,
      env: { ...process.env, PORT: '0' },
      readyMsg: 'broker listening',
      startTimeoutMs: 10_000,
    });
    return {
      kind: 'aedes',
      url: `mqtt://127.0.0.1:${aedes.port}`,
      pid: aedes.pid,
      stop: async () => {
        await aedes.stop();
      },
    };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-mosquitto-'));
  writeFileSync(join(dir, 'mosquitto.conf'), localMosquittoConf(repoRoot, port, { logConnections: false }));
  const child: ChildProcess = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  const killOnExit = () => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  await waitForPort(port, 10_000, () => (child.exitCode !== null ? new Error(`mosquitto exited with ${child.exitCode}`) : undefined));
  return {
    kind: 'mosquitto',
    url: `mqtt://127.0.0.1:${port}`,
    ...(child.pid !== undefined ? { pid: child.pid } : {}),
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
