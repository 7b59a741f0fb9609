/**
 * Proves `npm run bench` works end to end, at tiny sizes (--smoke): every target starts, every
 * scenario produces numbers, the report and the files are written. Timing thresholds belong to
 * the benchmark itself, not to this test.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { REPO_ROOT } from '../helpers/gateway-process.js';

const run = promisify(execFile);

describe('npm run bench (smoke sizes)', () => {
  it('measures the gateway and the three baselines, and writes JSON and charts', async () => {
    const outcome = await run(process.execPath, [`${REPO_ROOT}dist/bench/suite.js`, '--smoke'], { timeout: 170_000, maxBuffer: 16 * 1024 * 1024 }).catch(
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    const { stdout } = outcome as { stdout: string; stderr: string };
    // Exit 1 only means a target failed (tiny sizes make no promises); anything else is a crash.
    expect([undefined, 0, 1]).toContain((outcome as { code?: number }).code);
    const files = /^results: (.+)$/m
      .exec(stdout)![1]
      .split(', ')
      .map((f) => `${REPO_ROOT}${f}`);
    onTestFinished(() => {
      for (const f of files) rmSync(f, { force: true });
    });
    expect(files).toHaveLength(3);
    for (const f of files) expect(existsSync(f)).toBe(true);
    expect(readFileSync(files[1], 'utf8')).toMatch(/^<svg/);

    const result = JSON.parse(readFileSync(files[0], 'utf8'));
    expect(Object.keys(result.targets)).toEqual(['gateway', 'uws-bare', 'ws-reference', 'socketio-rooms']);
    for (const [name, target] of Object.entries<any>(result.targets)) {
      expect(target.errors, name).toEqual([]);
      expect(target.fanout.json[0].received, name).toBeGreaterThan(0);
      expect(target.fanout.json[0].lost, name).toBe(0);
      expect(target.broadcast.received, name).toBeGreaterThan(0);
      expect(target.sweep.steps.length, name).toBeGreaterThan(0);
      expect(target.memory.kbPerConnection, name).toEqual(expect.any(Number));
    }
    expect(result.targets.gateway.fanout.msgpack[0].received).toBeGreaterThan(0);
    // The storm: authenticated connects, inline and on the pool, for HS256 and ES256.
    expect(result.storm.map((s: { mode: string; alg: string }) => `${s.mode}/${s.alg}`)).toEqual(['inline/HS256', 'pool/HS256', 'inline/ES256', 'pool/ES256']);
    for (const s of result.storm) {
      expect(s.errors).toEqual([]);
      expect(s.connects).toBe(40);
      expect(s.streamLost).toBe(0);
    }
    // Azure Web PubSub: reliable clients in one group, fed over the bus and over REST, nothing lost.
    expect(result.azureErrors ?? []).toEqual([]);
    for (const route of ['azure-bus', 'azure-rest']) {
      const row = result.azure.rows.find((r: { route: string }) => r.route === route);
      expect(row?.run.received, route).toBeGreaterThan(0);
      expect(row.run.lost, route).toBe(0);
      expect(row.run.clientAcks, route).toBeGreaterThan(0);
    }
    expect(result.checks.map((c: { status: string }) => c.status)).toEqual(expect.arrayContaining(['n/a']));
    expect(result.checks).toHaveLength(7);
    expect(stdout).toMatch(/Targets\n/);
    expect(stdout).toMatch(/1\. Fan-out/);
    expect(stdout).toMatch(/gw ×/);
    expect(stdout).toMatch(/5\. Connection storm/);
    expect(stdout).toMatch(/7\. Azure Web PubSub/);
  }, 180_000);
});
