/**
 * 5. Connection storm: thousands of authenticated connects to /ws/connect while the fan-out keeps
 * flowing, with token checks on the pool and inline, per algorithm. Reports connects per second
 * and the streams' p99 during the storm: the numbers that decide GATEWAY_TOKEN_CHECKS.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { ClientPool } from '../load/client-pool.js';
import { startGateway } from '../load/gateway-process.js';
import { BUCKET_MS, RANGE_MS, runLoad } from '../load/load-run.js';
import type { LatencySummary } from '../load/histogram.js';

export interface StormSizes {
  readonly streamConnections: number;
  readonly stormConnections: number;
  readonly rate: number;
  readonly warmupS: number;
  readonly durationS: number;
}

export const STORM_FULL: StormSizes = { streamConnections: 500, stormConnections: 3000, rate: 1000, warmupS: 2, durationS: 5 };
export const STORM_QUICK: StormSizes = { streamConnections: 200, stormConnections: 1000, rate: 500, warmupS: 1, durationS: 3 };
export const STORM_SMOKE: StormSizes = { streamConnections: 20, stormConnections: 40, rate: 100, warmupS: 0.5, durationS: 1 };

export interface StormRun {
  readonly mode: 'pool' | 'inline';
  readonly alg: 'HS256' | 'ES256';
  readonly connects: number;
  readonly connectsPerS: number;
  /** The fan-out's latency over the window the storm ran in. */
  readonly streamLatencyMs: LatencySummary;
  readonly streamLost: number;
  readonly errors: string[];
}

export const SECRET = 'bench-secret-with-at-least-32-bytes-long';

/** An HS256 token for /ws/connect, signed with SECRET. */
export const hs256Token = (): Promise<string> =>
  new SignJWT({ roles: ['bench'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('bench').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

export type StormNumbers = Omit<StormRun, 'mode' | 'alg'>;

/**
 * One storm on running nodes: a `streamConnections` fan-out, and once its window opens
 * `stormConnections` connects to /ws/connect with `token`; both split evenly over `ports`
 * (connection i to ports[i % ports.length]).
 */
export async function stormDuringFanout(o: {
  readonly ports: readonly number[];
  readonly mqttUrl: string;
  readonly token: string;
  readonly sizes: StormSizes;
}): Promise<StormNumbers> {
  const { sizes } = o;
  let connects = 0;
  let connectMs = 0;
  const errors: string[] = [];
  const load = await runLoad({
    host: '127.0.0.1',
    port: o.ports[0],
    ...(o.ports.length > 1 ? { ports: o.ports } : {}),
    path: '/api/v1/stream',
    mqttUrl: o.mqttUrl,
    encoding: 'json',
    connections: sizes.streamConnections,
    perConn: 5,
    devices: 1000,
    rate: sizes.rate,
    warmupS: sizes.warmupS,
    durationS: sizes.durationS,
    drainTimeoutS: 5,
    clientThreads: 1,
    openConcurrency: 200,
    connected: () => {
      // The storm starts with the measured window and overlaps it.
      setTimeout(() => {
        const started = performance.now();
        ClientPool.start({
          host: '127.0.0.1',
          port: o.ports[0],
          ...(o.ports.length > 1 ? { ports: o.ports } : {}),
          path: `/ws/connect?token=${o.token}`,
          encoding: 'json',
          connections: Array.from({ length: sizes.stormConnections }, () => ['x']),
          threads: 1,
          openConcurrency: 500,
          handshakeTimeoutMs: 30_000,
          bucketMs: BUCKET_MS,
          rangeMs: RANGE_MS,
        }).then(
          async (pool) => {
            connectMs = performance.now() - started;
            connects = sizes.stormConnections;
            await pool.terminate();
          },
          (err: Error) => errors.push(`storm: ${err.message.split('\n')[0]}`),
        );
      }, sizes.warmupS * 1000);
    },
  });
  // The storm may outlast the window on a slow machine; wait for it (bounded).
  const deadline = Date.now() + 60_000;
  while (connects === 0 && errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return {
    connects,
    connectsPerS: connectMs > 0 ? connects / (connectMs / 1000) : 0,
    streamLatencyMs: load.histogram.summary(),
    streamLost: Math.max(0, load.expected - load.counters.measured),
    errors: [...errors, ...load.errors],
  };
}

export async function storm(repoRoot: string, mqttUrl: string, sizes: StormSizes, say: (l: string) => void): Promise<StormRun[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-keys-'));
  try {
    const es = await generateKeyPair('ES256', { extractable: true });
    writeFileSync(join(dir, 'es256.pem'), await exportSPKI(es.publicKey));
    const tokens = {
      HS256: await hs256Token(),
      ES256: await new SignJWT({ roles: ['bench'] }).setProtectedHeader({ alg: 'ES256' }).setSubject('bench').setExpirationTime('1h').sign(es.privateKey),
    };
    const runs: StormRun[] = [];
    for (const alg of ['HS256', 'ES256'] as const) {
      for (const mode of ['inline', 'pool'] as const) {
        say(`storm: ${sizes.stormConnections} connects with ${alg} tokens checked ${mode}, during a ${sizes.streamConnections}-connection fan-out`);
        const gateway = await startGateway({
          repoRoot,
          mqttUrl,
          logLevel: 'info',
          startTimeoutMs: 20_000,
          env: {
            GATEWAY_JWT_SECRET: SECRET,
            GATEWAY_JWT_PUBLIC_KEYS: `ES256:${join(dir, 'es256.pem')}`,
            GATEWAY_TOKEN_CHECKS: mode,
            GATEWAY_CONNECT_RATE_PER_IP: '1000000',
            GATEWAY_CONNECT_BURST_PER_IP: '1000000',
          },
        }).catch((err: Error) => {
          throw new Error(`gateway (storm ${mode}): ${err.message}`);
        });
        try {
          const run = await stormDuringFanout({ ports: [gateway.port], mqttUrl, token: tokens[alg], sizes });
          runs.push({ mode, alg, ...run });
        } finally {
          await gateway.stop();
        }
      }
    }
    return runs;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
