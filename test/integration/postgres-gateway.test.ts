/**
 * The gateway on PostgreSQL (GATEWAY_DATABASE_URL; docs/design/cluster-store.md step 7): REST CRUD
 * lands in the database, nodes starting together on an empty database migrate it once, the start
 * waits a bounded time for a database that is not there and exits, bad URLs are configuration
 * errors, a database lost while running is 503 GW_ERR_STORE_UNAVAILABLE and readiness 503 (telemetry
 * flows on) until it is back, and an exhausted store is 503 GW_ERR_OVERLOADED, counted. One real
 * server for the file (test/helpers/postgres.ts), one database per test; gateways are child processes.
 * Channel events on PostgreSQL are not covered here: the channel log moves into the store in step 3.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { adminToken, channelEnv, rest } from '../helpers/channels.js';
import { MAIN, eventually, freeFixedPort, startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';
import { startPostgres, TEST_ROLE, type Postgres } from '../helpers/postgres.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';
import { startTcpRelay } from '../helpers/tcp-relay.js';
import { TEST_CLUSTER_KEY } from '../helpers/control-key.js';

/** Trust authentication ignores it, so it may ride in every URL: it must never be printed. */
const PASSWORD = 'pw-never-printed-7f3a';

let server: Postgres;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(() => server?.stop());

/** A new empty database; its URL with PASSWORD in it, optionally through another port (a relay). */
async function database(port?: number): Promise<{ url: string; client: pg.Client }> {
  const plain = await server.newDatabase();
  const client = new pg.Client({ connectionString: plain });
  await client.connect();
  onTestFinished(() => client.end());
  const url = new URL(plain);
  url.password = PASSWORD;
  if (port !== undefined) url.port = String(port);
  return { url: url.toString(), client };
}

function pgEnv(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return channelEnv({ GATEWAY_DATABASE_URL: url, ...extra });
}

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${gw.http}/metrics`)).text();
  const match = new RegExp(`^gateway_${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

async function readyz(gw: GatewayProcess): Promise<{ status: number; body: { reasons?: string[] } }> {
  const res = await fetch(`${gw.http}/readyz`);
  return { status: res.status, body: (await res.json()) as { reasons?: string[] } };
}

/** A gateway that is expected to exit during its start: its exit code, its output, how long it ran. */
async function failedStart(env: Record<string, string>): Promise<{ code: number | null; output: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      GATEWAY_DATA_DIR: tempDataDir(),
      PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_BROKER_PORT: '0',
      GATEWAY_THREADS: '1',
      GATEWAY_CLUSTER_KEY: TEST_CLUSTER_KEY,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output, ms: Date.now() - started };
}

describe('gateway on PostgreSQL', () => {
  it('serves REST CRUD from the database, seeds equipment into it, and never logs the password', async () => {
    const { url, client } = await database();
    const equipment = join(tempDataDir(), 'equipment.json');
    writeFileSync(equipment, JSON.stringify([{ code: 'EXC-PG', kind: 'excavator', active: true }]));
    const gw = await startGateway({ env: pgEnv(url, { GATEWAY_EQUIPMENT_FILE: equipment }) });
    const token = await adminToken();

    const listening = await gw.waitForLog((l) => l.msg === 'gateway listening');
    expect(listening.store).toBe('postgres');
    expect(listening.databaseUrl).toBe(url.replace(PASSWORD, '***'));
    expect((await gw.waitForLog((l) => l.msg === 'store schema ready')).after).toBe(1);
    expect((await client.query<{ code: string }>('SELECT code FROM equipment')).rows).toEqual([{ code: 'EXC-PG' }]);

    const created = await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 'temperatura' }, token);
    expect(created.status).toBe(201);
    const id = created.body.id as number;
    const row = async () => (await client.query<{ data: string }>("SELECT data FROM entities WHERE collection = 'sensores' AND id = $1", [id])).rows;
    expect(JSON.parse((await row())[0].data)).toMatchObject({ tipo: 'temperatura' });
    expect((await rest(gw, 'GET', `/api/v1/sensores/${id}`, undefined, token)).body).toMatchObject({ id, tipo: 'temperatura' });
    expect((await rest(gw, 'PUT', `/api/v1/sensores/${id}`, { tipo: 'humedad' }, token)).status).toBe(200);
    expect(JSON.parse((await row())[0].data)).toMatchObject({ tipo: 'humedad' });
    expect((await rest(gw, 'GET', '/api/v1/sensores/', undefined, token)).body).toHaveLength(1);
    expect((await rest(gw, 'DELETE', `/api/v1/sensores/${id}`, undefined, token)).status).toBe(200);
    expect(await row()).toEqual([]);
    expect((await rest(gw, 'GET', `/api/v1/sensores/${id}`, undefined, token)).status).toBe(404);

    expect((await readyz(gw)).status).toBe(200);
    expect(await metric(gw, 'store_available')).toBe(1);
    expect(JSON.stringify(gw.logs)).not.toContain(PASSWORD);
  });

  it('two gateways started at once on an empty database both start; one applies the migrations', async () => {
    const { url } = await database();
    const [a, b] = await Promise.all([startGateway({ env: pgEnv(url) }), startGateway({ env: pgEnv(url) })]);
    const applied = await Promise.all([a, b].map(async (gw) => ((await gw.waitForLog((l) => l.msg === 'store schema ready')).applied as unknown[]).length));
    expect(applied.sort()).toEqual([0, 1]);
    const token = await adminToken();
    const ids = await Promise.all([a, b].map(async (gw) => (await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't' }, token)).body.id as number));
    expect(new Set(ids).size).toBe(2); // one sequence for both
    expect((await rest(b, 'GET', `/api/v1/sensores/${ids[0]}`, undefined, token)).status).toBe(200); // A's write read on B
  });

  it('a database nobody listens on: the start retries for GATEWAY_DATABASE_START_WAIT_MS, then exits 1 naming the variable, not the password', async () => {
    const port = await freeFixedPort();
    const result = await failedStart({
      GATEWAY_DATABASE_URL: `postgres://${TEST_ROLE}:${PASSWORD}@127.0.0.1:${port}/nowhere`,
      GATEWAY_DATABASE_START_WAIT_MS: '1500',
    });
    expect(result.code).toBe(1);
    expect(result.ms).toBeGreaterThan(1_500);
    expect(result.ms).toBeLessThan(15_000);
    expect(result.output).toContain('GW_ERR_STORE_UNAVAILABLE');
    expect(result.output).toMatch(/GATEWAY_DATABASE_URL postgres:\/\/gateway_test:\*\*\*@127\.0\.0\.1:\d+\/nowhere: the database could not be reached/);
    expect(result.output).toContain('PostgreSQL not reachable yet; retrying');
    expect(result.output).not.toContain(PASSWORD);
  });

  it('a database that does not exist: exit 1 at once, not after the wait', async () => {
    const url = new URL(server.url);
    url.pathname = '/no_such_database';
    url.password = PASSWORD;
    const result = await failedStart({ GATEWAY_DATABASE_URL: url.toString(), GATEWAY_DATABASE_START_WAIT_MS: '60000' });
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(15_000);
    expect(result.output).toMatch(/the database does not exist.*not retried/);
    expect(result.output).not.toContain(PASSWORD);
  });

  it('a URL of another scheme, or one that does not parse, is a configuration error: exit 2, the password not shown', async () => {
    for (const bad of [`mysql://root:${PASSWORD}@127.0.0.1:3306/gw`, `postgres://root:${PASSWORD}@127.0.0.1:notaport/gw`]) {
      const result = await failedStart({ GATEWAY_DATABASE_URL: bad });
      expect(result.code, bad).toBe(2);
      expect(result.output).toContain('GATEWAY_DATABASE_URL');
      expect(result.output).not.toContain(PASSWORD);
    }
  });

  it('GATEWAY_DATABASE_MIGRATE=off on an empty database stops the start, naming npm run migrate', async () => {
    const { url } = await database();
    const result = await failedStart({ GATEWAY_DATABASE_URL: url, GATEWAY_DATABASE_MIGRATE: 'off' });
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/schema version 0, this build needs 1, and GATEWAY_DATABASE_MIGRATE=off: run `npm run migrate`/);
  });

  it('the database lost while running: writes 503 GW_ERR_STORE_UNAVAILABLE, readiness 503, telemetry flows; all back when it returns', async () => {
    const relay = await startTcpRelay(server.port);
    onTestFinished(() => relay.close());
    const { url, client } = await database(relay.port);
    const gw = await startGateway({ env: pgEnv(url) });
    const token = await adminToken();
    expect((await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't1' }, token)).status).toBe(201);
    const watcher = await connectStream(gw.ws, '?device_ids=T-1');
    const publisher = await connectPublisher(gw.mqttUrl);

    relay.cut();
    const refused = await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't2' }, token);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('GW_ERR_STORE_UNAVAILABLE');
    expect(JSON.stringify(refused.body)).not.toContain(String(relay.port)); // the kind of failure, not the address
    expect((await rest(gw, 'GET', '/api/v1/sensores/1', undefined, token)).body.error.code).toBe('GW_ERR_STORE_UNAVAILABLE');
    const notReady = await readyz(gw);
    expect(notReady.status).toBe(503);
    expect(notReady.body.reasons).toContain('store unavailable');
    expect(await metric(gw, 'store_available')).toBe(0);
    expect(await metric(gw, 'store_unavailable_total')).toBeGreaterThanOrEqual(2);
    await publisher.position('T-1', { SPEED: 42 });
    expect((await watcher.next(isMessage('T-1'))).data.data.SPEED).toBe(42);
    // The watchdog's probe answers without the store: still alive, only not ready.
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);

    relay.restore();
    await eventually(async () => (await readyz(gw)).status === 200, 10_000, 'readiness after the database returned');
    expect(await metric(gw, 'store_available')).toBe(1);
    const again = await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't3' }, token);
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(2); // the refused create took no id and wrote nothing
    expect((await client.query("SELECT id FROM entities WHERE collection = 'sensores' ORDER BY id")).rows).toEqual([{ id: '1' }, { id: '2' }]);
    expect(JSON.stringify(gw.logs)).not.toContain(PASSWORD);
  });

  it('an exhausted store: past GATEWAY_STORE_QUEUE a call is 503 GW_ERR_OVERLOADED at once, counted; the others complete', async () => {
    const { url, client } = await database();
    // One store thread with one connection (3 − ingest's 2), one task waiting at most.
    const gw = await startGateway({ env: pgEnv(url, { GATEWAY_DATABASE_POOL_SIZE: '3', GATEWAY_STORE_QUEUE: '1' }) });
    const token = await adminToken();
    expect((await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't0' }, token)).status).toBe(201);
    // The sequence row held by a transaction of the test's own: the next create waits on it, holding the thread's one connection.
    await client.query("BEGIN; UPDATE sequences SET last_id = last_id WHERE collection = 'sensores'");
    const running = rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't1' }, token);
    await eventually(
      async () =>
        (await client.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'uws-gateway store-pool' AND wait_event_type = 'Lock'")).rowCount === 1,
      5_000,
      'the create waiting on the row lock',
    );
    // Two more: one waits in the queue, the other finds it full and is answered at once (before the lock goes).
    const more = [rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't2' }, token), rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't3' }, token)];
    const refused = await Promise.race(more);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('GW_ERR_OVERLOADED');
    expect(await metric(gw, 'store_overloaded_total')).toBe(1);
    await client.query('ROLLBACK');
    expect((await Promise.all([running, ...more])).map((r) => r.status).sort()).toEqual([201, 201, 503]);
    expect((await rest(gw, 'GET', '/api/v1/sensores/', undefined, token)).body).toHaveLength(3);
  });
});
