/**
 * Command line of `bench/latency.ts`: parsed with node:util parseArgs, every value checked with an
 * error naming its option, then frozen.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { Dialect, Encoding } from './worker-messages.js';

export const HELP = `Usage: npm run bench:latency -- [options]

End-to-end latency, MQTT publish → WebSocket receive. Starts the built gateway (dist/src/main.js)
on free loopback ports unless --url and --mqtt point at a running one, opens WebSocket clients
watching a fixed set of devices, publishes at a fixed rate and reports latency percentiles,
deliveries and loss. Results go to bench/results/latency-<date>-<gitrev>.json.

Load:
  --connections <n>     WebSocket clients                                 (default 500)
  --per-conn <n>        devices watched by each client                    (default 5)
  --devices <n>         devices publishing                                (default 1000)
  --rate <n>            MQTT messages per second, all devices together    (default 1000)
  --encoding <e>        json | msgpack (Sec-WebSocket-Protocol)           (default json)
  --warmup <s>          seconds of traffic before measuring               (default 2)
  --duration <s>        seconds measured                                  (default 10)
  --quick               100 connections for 3 s (explicit options win)

Target:
  --url <ws-url>        running gateway, e.g. ws://127.0.0.1:8080 (path defaults to /api/v1/stream)
  --mqtt <mqtt-url>     its broker, e.g. mqtt://127.0.0.1:1883 (required with --url)
  --dialect <d>         plain | socketio: what the server at --url speaks (default plain);
                        socketio = Socket.IO 4, path defaults to /socket.io/, json only
  --server-threads <n>  GATEWAY_THREADS of the started gateway            (default: gateway's own)
  --server-log-level <l> GATEWAY_LOG_LEVEL of the started gateway         (default info)

Load client:
  --client-threads <n>  worker threads holding the connections           (default ${defaultClientThreads()})
  --open-concurrency <n> handshakes in flight at once                     (default 200)
  --drain-timeout <s>   longest wait for in-flight deliveries after the last publish (default 5)

Output and thresholds:
  --out <file>          JSON result path (default bench/results/latency-<date>-<gitrev>.json)
  --max-p99 <ms>        exit 1 if p99 latency exceeds this
  --max-loss <percent>  exit 1 if more than this share of expected deliveries is missing
  -h, --help            show this text

Traffic only ever goes to 127.0.0.1.`;

export interface BenchOptions {
  readonly connections: number;
  readonly perConn: number;
  readonly devices: number;
  readonly rate: number;
  readonly encoding: Encoding;
  /** Protocol the target speaks on top of WebSocket; 'socketio' only with --url. */
  readonly dialect: Dialect;
  readonly warmupS: number;
  readonly durationS: number;
  readonly quick: boolean;
  /** Set together with `mqttUrl` for an external gateway. */
  readonly target: { readonly host: string; readonly port: number; readonly path: string; readonly mqttUrl: string } | undefined;
  readonly serverThreads: number | undefined;
  readonly serverLogLevel: string;
  readonly clientThreads: number;
  readonly openConcurrency: number;
  readonly drainTimeoutS: number;
  readonly out: string | undefined;
  readonly maxP99Ms: number | undefined;
  readonly maxLossPct: number | undefined;
}

export class UsageError extends Error {}

/** One client thread per spare core beyond those the gateway needs, at most two. */
function defaultClientThreads(): number {
  return availableParallelism() >= 4 ? 2 : 1;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function num(name: string, raw: string | undefined, check: (n: number) => boolean, expect: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${name} must be ${expect}, got "${raw}"`);
  return n;
}

const int = (min: number, max: number) => (n: number) => Number.isInteger(n) && n >= min && n <= max;

function loopbackUrl(name: string, raw: string, protocols: string[]): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--${name} must be a URL, got "${raw}"`);
  }
  if (!protocols.includes(url.protocol)) throw new UsageError(`--${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}, got "${raw}"`);
  if (!LOOPBACK.has(url.hostname)) throw new UsageError(`--${name} must point at 127.0.0.1 (the benchmark only loads loopback), got "${url.hostname}"`);
  if (url.port === '') throw new UsageError(`--${name} must include a port, got "${raw}"`);
  return url;
}

export function parseBenchOptions(argv: string[]): BenchOptions | 'help' {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      connections: { type: 'string' },
      'per-conn': { type: 'string' },
      devices: { type: 'string' },
      rate: { type: 'string' },
      encoding: { type: 'string' },
      warmup: { type: 'string' },
      duration: { type: 'string' },
      quick: { type: 'boolean', default: false },
      url: { type: 'string' },
      mqtt: { type: 'string' },
      dialect: { type: 'string' },
      'server-threads': { type: 'string' },
      'server-log-level': { type: 'string' },
      'client-threads': { type: 'string' },
      'open-concurrency': { type: 'string' },
      'drain-timeout': { type: 'string' },
      out: { type: 'string' },
      'max-p99': { type: 'string' },
      'max-loss': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) return 'help';

  const quick = v.quick === true;
  const connections = num('connections', v.connections, int(1, 200_000), 'an integer from 1 to 200000') ?? (quick ? 100 : 500);
  const devices = num('devices', v.devices, int(1, 10_000_000), 'an integer from 1 to 10000000') ?? 1000;
  const perConn = num('per-conn', v['per-conn'], int(1, 100_000), 'an integer from 1 to 100000') ?? 5;
  if (perConn > devices) throw new UsageError(`--per-conn (${perConn}) must not exceed --devices (${devices})`);
  const encoding = v.encoding ?? 'json';
  if (encoding !== 'json' && encoding !== 'msgpack') throw new UsageError(`--encoding must be json or msgpack, got "${encoding}"`);

  const dialect = v.dialect ?? 'plain';
  if (dialect !== 'plain' && dialect !== 'socketio') throw new UsageError(`--dialect must be plain or socketio, got "${dialect}"`);
  if (dialect === 'socketio' && encoding !== 'json') throw new UsageError('--dialect socketio carries JSON only (drop --encoding msgpack)');
  if (dialect === 'socketio' && v.url === undefined) throw new UsageError('--dialect socketio needs --url (the started gateway speaks plain WebSocket)');
  if ((v.url === undefined) !== (v.mqtt === undefined)) {
    throw new UsageError(v.url === undefined ? '--mqtt needs --url (the gateway it feeds)' : '--url needs --mqtt (the broker the gateway reads)');
  }
  let target: BenchOptions['target'];
  if (v.url !== undefined && v.mqtt !== undefined) {
    const ws = loopbackUrl('url', v.url, ['ws:']);
    const mqtt = loopbackUrl('mqtt', v.mqtt, ['mqtt:', 'tcp:']);
    // 'localhost' may resolve to ::1 while the server listens on IPv4 only.
    const host = ws.hostname === 'localhost' ? '127.0.0.1' : ws.hostname.replace(/^\[|\]$/g, '');
    if (mqtt.hostname === 'localhost') mqtt.hostname = '127.0.0.1';
    let path = ws.pathname === '/' ? (dialect === 'socketio' ? '/socket.io/' : '/api/v1/stream') : ws.pathname;
    // Engine.IO matches its path as a prefix of the request target, trailing slash included.
    if (dialect === 'socketio' && !path.endsWith('/')) path += '/';
    target = { host, port: Number(ws.port), path, mqttUrl: mqtt.toString() };
  }
  const serverLogLevel = v['server-log-level'] ?? 'info';
  if (!LOG_LEVELS.includes(serverLogLevel)) throw new UsageError(`--server-log-level must be one of ${LOG_LEVELS.join(', ')}, got "${serverLogLevel}"`);
  const serverThreads = num('server-threads', v['server-threads'], int(1, 64), 'an integer from 1 to 64');
  if (target && serverThreads !== undefined) throw new UsageError('--server-threads only applies to a gateway the benchmark starts (drop --url/--mqtt)');

  return Object.freeze({
    connections,
    perConn,
    devices,
    rate: num('rate', v.rate, (n) => n > 0 && n <= 1_000_000, 'a number > 0 and ≤ 1000000') ?? 1000,
    encoding,
    dialect,
    warmupS: num('warmup', v.warmup, (n) => n >= 0 && n <= 3600, 'seconds from 0 to 3600') ?? 2,
    durationS: num('duration', v.duration, (n) => n > 0 && n <= 3600, 'seconds > 0 and ≤ 3600') ?? (quick ? 3 : 10),
    quick,
    target,
    serverThreads,
    serverLogLevel,
    clientThreads: num('client-threads', v['client-threads'], int(1, 64), 'an integer from 1 to 64') ?? defaultClientThreads(),
    openConcurrency: num('open-concurrency', v['open-concurrency'], int(1, 10_000), 'an integer from 1 to 10000') ?? 200,
    drainTimeoutS: num('drain-timeout', v['drain-timeout'], (n) => n >= 0 && n <= 600, 'seconds from 0 to 600') ?? 5,
    out: v.out,
    maxP99Ms: num('max-p99', v['max-p99'], (n) => n > 0, 'a number of ms > 0'),
    maxLossPct: num('max-loss', v['max-loss'], (n) => n >= 0 && n <= 100, 'a percentage from 0 to 100'),
  });
}
