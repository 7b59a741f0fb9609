/**
 * The one broker every target of a suite run consumes, so they all see the same MQTT path:
 * Mosquitto (from mosquitto/mosquitto.conf, Nagle off) when it is installed, else a standalone
 * aedes process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../load/server-process.js';

export interface Broker {
  readonly kind: 'mosquitto' | 'aedes';
  readonly url: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });

export async function startBroker(repoRoot: string): Promise<Broker> {
  const hasMosquitto = spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error === undefined;
  if (!hasMosquitto) {
    const aedes = await startServer({
      name: 'aedes broker', script: join(repoRoot, 'dist', 'bench', 'load', 'aedes-broker.js'), cwd: repoRoot,
      env: { ...process.env, PORT: '0' }, readyMsg: 'broker listening', startTimeoutMs: 10_000,
    });
    return { kind: 'aedes', url: `mqtt://127.0.0.1:${aedes.port}`, stop: async () => { await aedes.stop(); } };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-mosquitto-'));
  const conf = readFileSync(join(repoRoot, 'mosquitto', 'mosquitto.conf'), 'utf8')
    .replace(/^listener 1883.*$/m, `listener ${port} 127.0.0.1`)
    .replace(/^connection_messages true$/m, 'connection_messages false'); // thousands of connects would flood the log
  writeFileSync(join(dir, 'mosquitto.conf'), conf);
  const child: ChildProcess = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  const killOnExit = () => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('mosquitto did not listen within 10 s');
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    kind: 'mosquitto',
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => { child.once('exit', () => resolve()); child.kill('SIGTERM'); });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
