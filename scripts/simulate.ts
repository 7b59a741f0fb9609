/**
 * GPS device simulator: publishes moving vehicles to MQTT `gps/<DEVICE_ID>` in the gateway's
 * telemetry format. See `--help`.
 *
 * Publishes are paced, not bursted: message k goes to device k mod N at time k / (N · rate), so
 * every device reports every 1/rate seconds and the devices are staggered across that interval.
 */
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { connect, type MqttClient } from 'mqtt';
import { GpsPath } from './gps-path.js';

const HELP = `Usage: npm run simulate -- [options]

Publishes simulated GPS devices moving around a centre point to MQTT topic gps/<DEVICE_ID>.
Payload: {"DEVICE_ID","LAT","LON","SPEED" (km/h),"HEADING" (deg),"TS" (ms since epoch, float)}

Options:
  --devices <n>       number of devices                                 (default 50)
  --rate <n>          messages per second per device                    (default 1)
  --duration <s>      seconds to run, 0 = until Ctrl-C                  (default 0)
  --url <url>         MQTT broker URL (mqtt://, mqtts://, ws://, wss://) (default mqtt://localhost:1883)
  --prefix <str>      device id prefix, ids are <prefix>-0001 ...       (default SIM)
  --center <lat,lon>  centre of the roaming area                        (default -33.45,-70.66, Santiago)
  --radius <km>       roaming radius                                    (default 5)
  --seed <n>          integer seed; equal seeds give equal paths        (default 1)
  --qos <0|1>         MQTT QoS                                          (default 0)
  -h, --help          show this text

Example: npm run simulate -- --devices 200 --rate 2 --duration 60 --url mqtt://127.0.0.1:1883`;

interface SimOptions {
  readonly devices: number;
  readonly rate: number;
  readonly duration: number;
  readonly url: string;
  readonly prefix: string;
  readonly centerLat: number;
  readonly centerLon: number;
  readonly radiusKm: number;
  readonly seed: number;
  readonly qos: 0 | 1;
}

class UsageError extends Error {}

function parseNumber(name: string, raw: string, check: (n: number) => boolean, expect: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !check(n)) {
    throw new UsageError(`--${name} must be ${expect}, got "${raw}"`);
  }
  return n;
}

function parseOptions(argv: string[]): SimOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      devices: { type: 'string', default: '50' },
      rate: { type: 'string', default: '1' },
      duration: { type: 'string', default: '0' },
      url: { type: 'string', default: 'mqtt://localhost:1883' },
      prefix: { type: 'string', default: 'SIM' },
      center: { type: 'string', default: '-33.45,-70.66' },
      radius: { type: 'string', default: '5' },
      seed: { type: 'string', default: '1' },
      qos: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';

  const url = values.url;
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new UsageError(`--url must be a URL such as mqtt://localhost:1883, got "${url}"`);
  }
  if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'].includes(protocol)) {
    throw new UsageError(`--url must use mqtt://, mqtts://, ws:// or wss://, got "${url}"`);
  }
  // A prefix ends up in an MQTT topic level: '/', '+', '#' would change the topic's meaning.
  if (!/^[A-Za-z0-9_.-]{1,32}$/.test(values.prefix)) {
    throw new UsageError(`--prefix must be 1-32 characters of A-Z a-z 0-9 _ . -, got "${values.prefix}"`);
  }
  const centre = values.center.split(',');
  if (centre.length !== 2) throw new UsageError(`--center must be "<lat>,<lon>", got "${values.center}"`);
  const qos = parseNumber('qos', values.qos, (n) => n === 0 || n === 1, '0 or 1');

  return {
    devices: parseNumber('devices', values.devices, (n) => Number.isInteger(n) && n >= 1 && n <= 1_000_000, 'an integer from 1 to 1000000'),
    rate: parseNumber('rate', values.rate, (n) => n > 0 && n <= 1000, 'a number > 0 and ≤ 1000'),
    duration: parseNumber('duration', values.duration, (n) => n >= 0, 'a number of seconds ≥ 0'),
    url,
    prefix: values.prefix,
    centerLat: parseNumber('center', centre[0], (n) => n >= -90 && n <= 90, 'a latitude in [-90, 90] followed by a longitude'),
    centerLon: parseNumber('center', centre[1], (n) => n >= -180 && n <= 180, 'a latitude followed by a longitude in [-180, 180]'),
    radiusKm: parseNumber('radius', values.radius, (n) => n > 0 && n <= 1000, 'a number of km > 0 and ≤ 1000'),
    seed: parseNumber('seed', values.seed, (n) => Number.isInteger(n), 'an integer'),
    qos: qos === 1 ? 1 : 0,
  };
}

interface Device {
  readonly id: string;
  readonly topic: string;
  readonly path: GpsPath;
  /** ms, performance clock; NaN before the first publish. */
  lastAt: number;
}

const nowMs = (): number => performance.now();
const round = (n: number, digits: number): number => Number(n.toFixed(digits));

function makeDevices(o: SimOptions): Device[] {
  const width = Math.max(4, String(o.devices).length);
  return Array.from({ length: o.devices }, (_, i) => {
    const id = `${o.prefix}-${String(i + 1).padStart(width, '0')}`;
    // Distinct, reproducible seeds per device; the multiplier spreads neighbouring indices apart.
    const path = new GpsPath({ centerLat: o.centerLat, centerLon: o.centerLon, radiusKm: o.radiusKm, seed: (o.seed * 1_000_003 + i * 7919) | 0 });
    return { id, topic: `gps/${id}`, path, lastAt: Number.NaN };
  });
}

/** Turns off Nagle on every (re)connected TCP stream: batching costs tens of ms (docs/notes/latency.md). */
function disableNagle(client: MqttClient): void {
  const stream = client.stream as Partial<Socket> | undefined;
  if (stream && typeof stream.setNoDelay === 'function') stream.setNoDelay(true);
}

async function run(o: SimOptions): Promise<void> {
  const devices = makeDevices(o);
  const totalRate = o.devices * o.rate;
  const client = connect(o.url, {
    clientId: `simulate-${o.prefix}-${process.pid}`,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    // Old positions are worthless: skip while offline instead of replaying a backlog on reconnect.
    queueQoSZero: false,
  });

  let lastError = '';
  let everConnected = false;
  client.on('connect', () => {
    disableNagle(client);
    everConnected = true;
    lastError = '';
    console.log(`connected to ${o.url}`);
  });
  client.on('error', (err) => {
    // Reconnect attempts repeat the same error every second; print each distinct one once.
    if (err.message !== lastError) console.error(`mqtt error: ${err.message} (retrying)`);
    lastError = err.message;
  });
  client.on('offline', () => {
    if (everConnected) console.error('mqtt offline, reconnecting');
  });

  let signals = 0;
  let stopRequested!: () => void;
  const stopSignal = new Promise<void>((resolve) => (stopRequested = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      console.error(`${signal} again, exiting without a clean disconnect`);
      process.exit(130);
    }
    console.log(`${signal} received, stopping`);
    stopRequested();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const connected = new Promise<boolean>((resolve) => client.once('connect', () => resolve(true)));
  if (!(await Promise.race([connected, stopSignal.then(() => false)]))) {
    client.end(true);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    return;
  }

  console.log(
    `publishing ${o.devices} devices × ${o.rate}/s = ${totalRate.toFixed(1)} msg/s to gps/${o.prefix}-*` +
      (o.duration > 0 ? ` for ${o.duration}s` : ' until Ctrl-C'),
  );

  const t0 = nowMs();
  const endAt = o.duration > 0 ? t0 + o.duration * 1000 : Number.POSITIVE_INFINITY;
  let due = 0; // messages scheduled so far (the index of the next one)
  let sent = 0;
  let skipped = 0;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));

  const publishOne = (k: number): void => {
    const device = devices[k % devices.length];
    if (!client.connected) {
      skipped++;
      return;
    }
    const at = nowMs();
    const fix = device.path.advance(Number.isNaN(device.lastAt) ? 0 : (at - device.lastAt) / 1000);
    device.lastAt = at;
    const payload = JSON.stringify({
      DEVICE_ID: device.id,
      LAT: round(fix.lat, 6),
      LON: round(fix.lon, 6),
      SPEED: round(fix.speedKmh, 1),
      HEADING: round(fix.headingDeg, 1),
      // Taken last, right before publish, on the clock the gateway and the benchmarks compare with.
      TS: performance.timeOrigin + performance.now(),
    });
    client.publish(device.topic, payload, { qos: o.qos });
    sent++;
  };

  const tick = (): void => {
    timer = undefined;
    if (stopping) return;
    const now = nowMs();
    // Message k is due at t0 + k/totalRate: all with k/totalRate ≤ elapsed, but only those strictly
    // before the end, so --duration 6 at 40 msg/s sends 240. Cap a single catch-up burst.
    const dueBy = now >= endAt ? Math.ceil(o.duration * totalRate - 1e-9) : Math.floor(((now - t0) / 1000) * totalRate) + 1;
    const target = Math.min(dueBy, due + Math.max(1000, totalRate));
    while (due < target) publishOne(due++);
    if (now >= endAt) {
      finished();
      return;
    }
    const nextAt = t0 + (due / totalRate) * 1000;
    timer = setTimeout(tick, Math.max(0, Math.min(nextAt - now, 1000)));
  };

  let lastReport = { at: t0, sent: 0 };
  const progress = setInterval(() => {
    const now = nowMs();
    const rate = ((sent - lastReport.sent) * 1000) / (now - lastReport.at);
    lastReport = { at: now, sent };
    console.log(
      `[${((now - t0) / 1000).toFixed(1).padStart(7)}s] sent ${sent.toLocaleString('en-US')} messages ` +
        `(${rate.toFixed(1)} msg/s, target ${totalRate.toFixed(1)})` +
        (skipped > 0 ? `, ${skipped.toLocaleString('en-US')} skipped while offline` : ''),
    );
  }, 5000);

  tick();
  await Promise.race([done, stopSignal]);

  stopping = true;
  if (timer) clearTimeout(timer);
  clearInterval(progress);
  const elapsed = (nowMs() - t0) / 1000;
  // end() flushes queued packets and sends DISCONNECT; bound it so a dead broker cannot hang us.
  await Promise.race([client.endAsync(), new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
  if (!client.disconnected) client.end(true);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  console.log(
    `done: ${sent.toLocaleString('en-US')} messages in ${elapsed.toFixed(1)}s ` +
      `(${(sent / Math.max(elapsed, 1e-9)).toFixed(1)} msg/s)` +
      (skipped > 0 ? `, ${skipped.toLocaleString('en-US')} skipped while offline` : ''),
  );
}

async function main(): Promise<void> {
  let options: SimOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    // parseArgs throws TypeErrors with a code for unknown or malformed options; both are usage errors.
    const message = err instanceof Error ? err.message : String(err);
    console.error(`simulate: ${message}\nRun with --help for usage.`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    console.log(HELP);
    return;
  }
  await run(options);
}

main().catch((err: unknown) => {
  console.error('simulate failed:', err);
  process.exitCode = 1;
});
