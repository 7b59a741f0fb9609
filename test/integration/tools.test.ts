/**
 * The tools people run: the example Python client, the simulator, the latency load script, and
 * the gateway's refusal of a bad configuration. Each runs as a real process.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MAIN, REPO_ROOT, startGateway } from '../helpers/gateway-process.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';

const run = promisify(execFile);

describe('example Python client (standard library only)', () => {
  it('receives the snapshot and live positions of the devices it asks for', async () => {
    const gw = await startGateway();
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.position('PY1', { N: 1 });
    const sync = await connectStream(gw.ws, '?device_ids=PY1');
    await sync.next(isMessage('PY1'));
    const child = spawn(
      'python3',
      [`${REPO_ROOT}examples/stream_client.py`, '--url', `${gw.ws}/api/v1/stream`, '--device-ids', 'PY1', '--count', '2', '--json', '--timeout', '20'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      // Once the snapshot is in, publish a live position.
      if (out.includes('"N":1') && !out.includes('"N":2')) void pub.position('PY1', { N: 2 });
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    const messages = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((f) => f.event === 'message');
    expect(messages.map((m) => m.data.data.N)).toEqual([1, 2]);
  });

  it('reports the error event and close code on a bad request', async () => {
    const gw = await startGateway();
    const result = await run('python3', [`${REPO_ROOT}examples/stream_client.py`, '--url', `${gw.ws}/api/v1/stream`, '--device-ids', 'bad id'], {
      timeout: 20_000,
    }).catch((e: { code: number; stderr: string }) => e);
    expect((result as { code: number }).code).toBe(2);
    expect((result as { stderr: string }).stderr).toMatch(/GW_ERR_DEVICE_ID_INVALID/);
    expect((result as { stderr: string }).stderr).toMatch(/4500/);
  });
});

describe('npm run simulate', () => {
  it('publishes moving devices that reach a dashboard client', async () => {
    const gw = await startGateway();
    const client = await connectStream(gw.ws, '?device_ids=SIM-0001,SIM-0003');
    await client.next((f) => f.event === 'subscribed');
    const { stdout } = await run(
      process.execPath,
      [`${REPO_ROOT}dist/scripts/simulate.js`, '--devices', '3', '--rate', '10', '--duration', '1', '--url', gw.mqttUrl],
      { timeout: 20_000 },
    );
    expect(stdout).toMatch(/SIM/);
    const a = await client.next(isMessage('SIM-0001'));
    await client.next(isMessage('SIM-0003'));
    expect(a.data.data).toMatchObject({ DEVICE_ID: 'SIM-0001', LAT: expect.any(Number), LON: expect.any(Number), SPEED: expect.any(Number) });
    expect(client.count(isMessage('SIM-0002'))).toBe(0);
  });
});

describe('bench/latency (tiny run, proves it works; timing belongs to npm run bench)', () => {
  it('starts its own gateway, measures, loses nothing and writes a JSON result', async () => {
    const out = `${REPO_ROOT}test-artifacts/latency-smoke.json`;
    const { stdout } = await run(
      process.execPath,
      [
        `${REPO_ROOT}dist/bench/latency.js`,
        '--connections',
        '20',
        '--devices',
        '20',
        '--per-conn',
        '2',
        '--rate',
        '200',
        '--duration',
        '1',
        '--warmup',
        '0.5',
        '--out',
        out,
      ],
      { timeout: 60_000 },
    );
    expect(stdout).toMatch(/p99/);
    const { readFileSync } = await import('node:fs');
    const result = JSON.parse(readFileSync(out, 'utf8'));
    expect(JSON.stringify(result)).toMatch(/p50/);
    expect(stdout).not.toMatch(/lost [1-9]/i);
  }, 90_000);
});

describe('configuration errors', () => {
  it('exits 2 with a message naming the variable', async () => {
    const result = await run(process.execPath, [MAIN], { env: { PATH: process.env.PATH, GATEWAY_IDLE_TIMEOUT_S: '5' }, timeout: 10_000 }).catch(
      (e: { code: number; stdout: string }) => e,
    );
    expect((result as { code: number }).code).toBe(2);
    expect((result as { stdout: string }).stdout).toContain('Invalid configuration: GATEWAY_IDLE_TIMEOUT_S must be 0 (off) or between 9 and 960 (got \\"5\\")');
  });
});
