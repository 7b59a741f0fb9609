/**
 * The safety net of issue 13, item 2: a thread that dies or stops making progress is noticed
 * (/readyz and /healthz 503 with the reason), and the process exits for its supervisor; a pool
 * thread that fails, at start or later, is handled, never an unhandled 'error' event. Threads are
 * wedged with the test-only hooks (threads/test-hooks.ts: ENVIRONMENT=test, GATEWAY_TEST_HOOKS).
 */
import { spawn } from 'node:child_process';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MAIN, startGateway, tempDataDir, eventually, type GatewayProcess, type LogLine } from '../helpers/gateway-process.js';
import { BACKEND_BUS_ENV, connectBackend } from '../helpers/publisher.js';

const WATCHDOG_MS = 1500;
const HOOKS = {
  ...BACKEND_BUS_ENV,
  ENVIRONMENT: 'test',
  GATEWAY_TEST_HOOKS: 'bus',
  GATEWAY_WATCHDOG_MS: String(WATCHDOG_MS),
  GATEWAY_SHUTDOWN_TIMEOUT_MS: '3000',
};

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

function exitOf(gw: GatewayProcess): Promise<Exit> {
  return new Promise((resolve) => gw.child.once('exit', (code, signal) => resolve({ code, signal })));
}

async function hook(gw: GatewayProcess, message: Record<string, unknown>): Promise<void> {
  const pub = await connectBackend(gw.mqttUrl);
  await pub.control('gateway/watchdog/_test', JSON.stringify(message));
}

/** GET one operator route on a new connection, bounded: a wedged edge would never answer. */
async function probe(http: string, route: string): Promise<{ status: number; body: any } | undefined> {
  try {
    const res = await fetch(`${http}${route}`, { signal: AbortSignal.timeout(300), headers: { connection: 'close' } });
    return { status: res.status, body: await res.json() };
  } catch {
    return undefined; // this connection went to the wedged edge
  }
}

async function expectHealthy(gw: GatewayProcess): Promise<void> {
  expect((await probe(gw.http, '/healthz'))?.status).toBe(200);
  expect((await probe(gw.http, '/readyz'))?.status).toBe(200);
}

/** Waits until both routes have answered 503 with a reason matching `reason`; returns how long it took. */
async function until503(gw: GatewayProcess, reason: RegExp, since: number): Promise<number> {
  const seen = new Set<string>();
  await eventually(
    async () => {
      for (const route of ['/readyz', '/healthz']) {
        if (seen.has(route)) continue;
        const answer = await probe(gw.http, route); // each on its own connection: with several edges, tried until a live one answers
        if (answer?.status === 503 && answer.body.reasons.some((r: string) => reason.test(r))) seen.add(route);
      }
      return seen.size === 2;
    },
    10_000,
    `/readyz and /healthz 503 with ${reason}`,
  );
  return Date.now() - since;
}

describe('watchdog: a thread that stops making progress', () => {
  it('regression: an ingest MQTT handler that delivers nothing no longer leaves /healthz and /readyz at 200; the process exits 70', async () => {
    const gw = await startGateway({ env: HOOKS });
    const exit = exitOf(gw);
    await expectHealthy(gw);
    const since = Date.now();
    await hook(gw, { hook: 'stall-mqtt' });
    const took = await until503(gw, /^ingest thread's MQTT client not delivering for \d+\.\d s \(the watchdog probe did not come back\)$/, since);
    expect(took).toBeLessThan(WATCHDOG_MS + 2500); // the bound, a beat or two, the hook's own trip
    expect(await exit).toEqual({ code: 70, signal: null });
    const fatal = gw.logs.find((l) => l.msg === 'gateway cannot continue');
    expect(fatal?.reason).toMatch(/ingest thread's MQTT client not delivering .*the watchdog gives up after 3000 ms/);
    expect(gw.logs.some((l) => l.msg === 'gateway closed')).toBe(true); // the healthy threads closed first
  });

  it('a busy-looping ingest thread: 503 naming it within the bound, then exit 70', async () => {
    const gw = await startGateway({ env: HOOKS });
    const exit = exitOf(gw);
    const since = Date.now();
    await hook(gw, { hook: 'wedge-ingest' });
    const took = await until503(gw, /^ingest thread not making progress for \d+\.\d s$/, since);
    expect(took).toBeLessThan(WATCHDOG_MS + 2500);
    const ready = await probe(gw.http, '/readyz');
    expect(ready?.body.reasons.some((r: string) => /MQTT/.test(r))).toBe(false); // the thread is named, not its client
    expect(await exit).toEqual({ code: 70, signal: null });
    expect(gw.logs.find((l) => l.msg === 'gateway cannot continue')?.reason).toMatch(/^ingest thread not making progress/);
  });

  it('a thread that ends unexpectedly exits the process with 70 too', async () => {
    const gw = await startGateway({ env: HOOKS });
    const exit = exitOf(gw);
    await hook(gw, { hook: 'exit-ingest' });
    expect(await exit).toEqual({ code: 70, signal: null });
    expect(gw.logs.find((l) => l.msg === 'gateway cannot continue')?.reason).toBe('ingest thread exited unexpectedly with code 3');
  });

  it('a busy-looping edge thread: the other edge reports it; the process, which cannot stop that thread, kills itself', async () => {
    // A longer bound: between it and the exit, requests that land on the wedged edge time out.
    const gw = await startGateway({ env: { ...HOOKS, GATEWAY_THREADS: '2', GATEWAY_WATCHDOG_MS: '3000' } });
    const exit = exitOf(gw);
    const since = Date.now();
    await hook(gw, { hook: 'wedge-edge', edge: 1 });
    const took = await until503(gw, /^edge-1 thread not making progress for \d+\.\d s$/, since);
    expect(took).toBeLessThan(3000 + 3000);
    expect(await exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(gw.logs.find((l) => l.msg === 'gateway cannot continue')?.reason).toMatch(/^edge-1 thread not making progress/);
    expect(gw.logs.some((l: LogLine) => /an edge thread is stuck/.test(l.msg ?? ''))).toBe(true);
  });
});

describe('pool threads that fail', () => {
  it('a store pool thread that ends in the middle of a task: that request gets 500, Piscina starts another thread, the gateway keeps serving', async () => {
    const gw = await startGateway({ env: { ...HOOKS, GATEWAY_AUTH_REQUIRED: 'none' } });
    await hook(gw, { hook: 'crash-store-pool', edge: 0 });
    const answered = await gw.waitForLog((l) => l.msg === 'test hook: the store pool answered');
    expect(answered.reply).toMatchObject({ ok: false, code: 'GW_ERR_INTERNAL' });
    expect((await fetch(`${gw.http}/api/v1/pets/`)).status).toBe(200);
    await expectHealthy(gw);
    expect(gw.child.exitCode).toBe(null);
  });

  it('regression: a pool thread that fails with no task of its own is an error event the gateway handles: logged, and the stopped pool is caught by the watchdog (exit 70), not an unhandled error event', async () => {
    const gw = await startGateway({ env: { ...HOOKS, GATEWAY_AUTH_REQUIRED: 'none' } });
    const exit = exitOf(gw);
    const since = Date.now();
    await hook(gw, { hook: 'break-store-pool', edge: 0 }); // the replacement thread fails as it starts
    const failed = await gw.waitForLog((l) => l.msg === 'pool thread failed');
    expect(failed.pool).toBe('store pool');
    expect((failed.err as { message: string }).message).toBe('test hook crash-store-pool: this replacement store pool thread fails as it starts');
    await until503(gw, /^store pool not making progress for \d+\.\d s$/, since);
    expect(await exit).toEqual({ code: 70, signal: null });
    expect(gw.logs.find((l) => l.msg === 'gateway cannot continue')?.reason).toMatch(/^store pool not making progress/);
  });

  it('regression: a pool thread that fails as it starts ends the start with the reason and exit 1, never an unhandled error event', async () => {
    const started = await run({ ENVIRONMENT: 'test', GATEWAY_TEST_HOOKS: 'fail-pool-start' });
    expect(started.exit).toEqual({ code: 1, signal: null });
    const failed = started.logs.find((l) => l.msg === 'gateway failed to start');
    expect((failed?.err as { message: string }).message).toBe(
      'store pool could not start: test hook fail-pool-start: this store pool thread fails as it starts',
    );
    expect(started.ready).toBe(false);
    expect(started.stderr).not.toMatch(/Unhandled 'error' event|ERR_INTERNAL_ASSERTION/);
  });

  it('test hooks are refused outside ENVIRONMENT=test', async () => {
    const gw = await startGateway({ env: { ENVIRONMENT: 'development', GATEWAY_TEST_HOOKS: 'bus,fail-pool-start' } });
    expect(gw.logs.find((l) => l.msg === 'GATEWAY_TEST_HOOKS is ignored: test hooks work only with ENVIRONMENT=test')?.hooks).toEqual([
      'bus',
      'fail-pool-start',
    ]);
    const subscribed = gw.logs.find((l) => l.msg === 'mqtt subscribed');
    expect(subscribed?.control).not.toContain('gateway/watchdog/_test'); // nobody listens there
  });
});

interface Run {
  readonly exit: Exit;
  readonly logs: LogLine[];
  readonly stderr: string;
  readonly ready: boolean;
}

/** One start of the gateway, stopped with SIGTERM as soon as it listens. */
function run(env: Record<string, string>, timeoutMs = 30_000): Promise<Run> {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      GATEWAY_DATA_DIR: tempDataDir(),
      PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_BROKER_PORT: '0',
      GATEWAY_BROKER_HOST: '127.0.0.1',
      GATEWAY_THREADS: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const logs: LogLine[] = [];
  let stderr = '';
  let ready = false;
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
      if (logs.at(-1)!.msg === 'gateway listening' && !ready) {
        ready = true;
        child.kill('SIGTERM');
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`start did not end within ${timeoutMs} ms; logs=${JSON.stringify(logs.slice(-5))}`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ exit: { code, signal }, logs, stderr, ready });
    });
  });
}

describe('start-up with the pools', () => {
  it('regression: 30 quick starts with the token-check pool each reach ready and stop cleanly, or fail cleanly (the piscina start-up assertion)', async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await run({ GATEWAY_TOKEN_CHECKS: 'pool', GATEWAY_POOL_THREADS: '2', GATEWAY_STORE_THREADS: '2' });
      expect(r.stderr, `start ${i}`).not.toMatch(/ERR_INTERNAL_ASSERTION|Unhandled 'error' event/);
      if (r.ready) {
        expect(r.exit, `start ${i}`).toEqual({ code: 0, signal: null });
        outcomes.push('ready');
      } else {
        // A failed start is allowed only as a clean one: logged with its reason, exit 1.
        expect(r.exit, `start ${i}`).toEqual({ code: 1, signal: null });
        expect(
          r.logs.some((l) => l.msg === 'gateway failed to start'),
          `start ${i}`,
        ).toBe(true);
        outcomes.push('failed cleanly');
      }
    }
    expect(outcomes.filter((o) => o === 'ready').length).toBeGreaterThanOrEqual(29);
  }, 240_000);
});
