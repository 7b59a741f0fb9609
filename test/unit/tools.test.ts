/** Pure pieces of the tools: the simulator's path model and the load client's histogram and TS reader. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { GpsPath, distanceKm } from '../../scripts/gps-path.js';
import { LatencyHistogram } from '../../bench/load/histogram.js';
import { extractJsonTs, extractMsgpackTs } from '../../bench/load/frame-ts.js';

describe('GPS path model', () => {
  const options = { centerLat: -33.45, centerLon: -70.66, radiusKm: 5, seed: 7 };

  it('is deterministic for a seed and stays near its area at plausible speeds', () => {
    const a = new GpsPath(options);
    const b = new GpsPath(options);
    for (let i = 0; i < 3600; i++) {
      const fa = a.advance(1);
      expect(fa).toEqual(b.advance(1));
      expect(fa.speedKmh).toBeLessThanOrEqual(90.0001);
      expect(distanceKm(options.centerLat, options.centerLon, fa.lat, fa.lon)).toBeLessThan(options.radiusKm * 1.8);
    }
  });
});

describe('latency histogram', () => {
  it('gives percentiles within one bucket of the exact value', () => {
    const h = new LatencyHistogram({ bucketMs: 0.01, rangeMs: 100 });
    const values = Array.from({ length: 10_000 }, (_, i) => (i % 1000) / 10); // 0 .. 99.9 ms
    for (const v of values) h.record(v);
    const sorted = [...values].sort((x, y) => x - y);
    for (const p of [50, 90, 99, 99.9]) {
      const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1];
      expect(Math.abs(h.percentile(p) - exact)).toBeLessThanOrEqual(0.011);
    }
    expect(h.count).toBe(10_000);
  });

  it('merges snapshots and keeps overflow as the max', () => {
    const a = new LatencyHistogram({ rangeMs: 10 });
    const b = new LatencyHistogram({ rangeMs: 10 });
    a.record(1);
    b.record(500);
    a.merge(b.snapshot());
    expect(a.count).toBe(2);
    expect(a.max).toBe(500);
    expect(a.percentile(100)).toBeGreaterThanOrEqual(10);
  });
});

describe('frame TS readers', () => {
  it('finds TS in JSON and msgpack envelopes', () => {
    const envelope = { event: 'message', data: { timestamp: '2024-01-01T00:00:00.000Z', data: { DEVICE_ID: 'A', TS: 1732400000123.456 } } };
    expect(extractJsonTs(Buffer.from(JSON.stringify(envelope)))).toBe(1732400000123.456);
    expect(extractMsgpackTs(pack(envelope))).toBe(1732400000123.456);
    expect(extractJsonTs(Buffer.from('{"event":"ping"}'))).toBeNaN();
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

  it('runs what npm start runs, on the Node major the package targets, as a non-root user', () => {
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[];
    expect(pkg.scripts.start).toContain(cmd.join(' '));
    expect(pkg.main).toBe(cmd[1]);
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(bases).toEqual(['node:20-bookworm', 'node:20-bookworm-slim']);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/RUN npm ci/);
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(dockerfile).toMatch(/\/healthz/);
  });

  it("leaves the embedded broker on the container's loopback: the image sets no GATEWAY_BROKER_HOST", () => {
    expect(dockerfile).not.toMatch(/^ENV\s+GATEWAY_BROKER_HOST/m);
  });

  it('copies every folder the build compiles', () => {
    const tsconfig = JSON.parse(readFileSync(new URL('../../tsconfig.json', import.meta.url), 'utf8')) as { include: string[] };
    for (const glob of tsconfig.include) {
      const folder = glob.split('/')[0];
      expect(dockerfile).toMatch(new RegExp(`^COPY ${folder} \\./${folder}$`, 'm'));
    }
  });
});
