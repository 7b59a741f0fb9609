/**
 * What a gateway keeps across a restart on the same data directory (docs/design/cluster-store.md §4):
 * share-link revocations (a link revoked before a restart is refused after it, as revoked, with
 * 1008) and the last positions (the snapshots of a new client after a SIGTERM hold every device;
 * after a SIGKILL, what was written up to the last flush). And the revocations' catch-up: one that
 * another writer put in the store, never on the bus, reaches the edges within the sync period.
 */
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { decrypt, generateKeys } from 'paseto-ts/v4';
import { REVOCATIONS_SYNC_MS } from '../../src/features/share-location/ingest/share-location-ingest.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../../src/protocol/bounded-json.js';
import { openDatabase } from '../../src/store/database.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { eventually, startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';
import { authEnv } from '../helpers/auth-env.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage, type StreamClient } from '../helpers/stream-client.js';
import { keyPairs, mintJwt, type KeyPairs } from '../helpers/tokens.js';

let keys: KeyPairs;
beforeAll(async () => {
  keys = await keyPairs();
});

const sharePath = '/api/v1/public/share-location';

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${gw.http}/metrics`)).text();
  const match = new RegExp(`^gateway_${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

/** What a new `*` client knows: [device, SPEED] of every device, up to a sync device published after it subscribed. */
async function allSnapshot(gw: GatewayProcess): Promise<[string, unknown][]> {
  const client = await connectStream(gw.ws, '?device_ids=*');
  await client.next((f) => f.event === 'subscribed');
  const pub = await connectPublisher(gw.mqttUrl);
  await pub.position('SYNC', { SPEED: 0 });
  await client.next(isMessage('SYNC'));
  const last = new Map<string, unknown>(); // a position still on its way when the client subscribed follows its snapshot
  for (const f of client.frames) if (isMessage()(f) && f.data.data.DEVICE_ID !== 'SYNC') last.set(f.data.data.DEVICE_ID, f.data.data.SPEED);
  client.ws.close();
  return [...last].sort();
}

async function oneSnapshot(gw: GatewayProcess, device: string): Promise<StreamClient> {
  const client = await connectStream(gw.ws, `?device_ids=${device}`);
  await client.next((f) => f.event === 'subscribed');
  return client;
}

describe('a share link revoked before a restart', () => {
  it('is refused after the gateway restarts on the same data directory (revoked, 1008)', async () => {
    const dataDir = tempDataDir();
    const env = authEnv(keys, { GATEWAY_DATA_DIR: dataDir, GATEWAY_SHARE_LOCAL_KEY: generateKeys('local') });
    const owner = await mintJwt('owner', { roles: ['LEVEL_1'] });
    let gw = await startGateway({ env });
    const mint = async () => {
      const res = await fetch(`${gw.http}${sharePath}/init`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${owner}` },
        body: JSON.stringify({ device_id: 'SIM-4', ttl_seconds: 600 }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { token: string }).token;
    };
    const revoked = await mint();
    const kept = await mint();
    const res = await fetch(`${gw.http}${sharePath}/${encodeURIComponent(revoked)}`, { method: 'DELETE', headers: { authorization: `Bearer ${owner}` } });
    expect(res.status).toBe(200);
    // Applied once it came back over the bus (and was written then).
    await eventually(async () => {
      const client = await connectStream(gw.ws, `?token=${encodeURIComponent(revoked)}`, { path: `${sharePath}/stream` });
      const first = await client.next();
      client.ws.close();
      return first.event === 'error';
    });
    expect(await gw.stop('SIGTERM')).toBe(0);

    gw = await startGateway({ env });
    const viewer = await connectStream(gw.ws, `?token=${encodeURIComponent(revoked)}`, { path: `${sharePath}/stream` });
    const error = await viewer.next((f) => f.event === 'error');
    expect(error.data).toMatchObject({ code: 'GW_ERR_TOKEN_INVALID', message: expect.stringMatching(/revoked/i) });
    expect((await viewer.closed).code).toBe(1008);
    // The other link of the same device still streams.
    const other = await connectStream(gw.ws, `?token=${encodeURIComponent(kept)}`, { path: `${sharePath}/stream` });
    expect((await other.next((f) => f.event === 'subscribed')).data).toMatchObject({ device_ids: ['SIM-4'] });
  });
});

describe('a revocation another writer put in the store', () => {
  it('reaches the edges within the sync period, never heard on the bus: the live viewer ends (revoked, 1008) and the link is refused', async () => {
    const dataDir = tempDataDir();
    const localKey = generateKeys('local');
    const env = authEnv(keys, { GATEWAY_DATA_DIR: dataDir, GATEWAY_SHARE_LOCAL_KEY: localKey });
    const owner = await mintJwt('owner', { roles: ['LEVEL_1'] });
    const gw = await startGateway({ env });
    const res = await fetch(`${gw.http}${sharePath}/init`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${owner}` },
      body: JSON.stringify({ device_id: 'SIM-5', ttl_seconds: 600 }),
    });
    const { token } = (await res.json()) as { token: string };
    const { jti, exp } = decrypt<{ jti: string; exp: string }>(localKey, token).payload;
    const live = await connectStream(gw.ws, `?token=${encodeURIComponent(token)}`, { path: `${sharePath}/stream` });
    await live.next((f) => f.event === 'subscribed');

    // Another node's write, as on a shared store: a second connection to the same gateway.sqlite.
    const other = openSqliteStore(dataDir, DEFAULT_MAX_JSON_DEPTH);
    onTestFinished(() => other.close());
    const written = Date.now();
    await other.revocations.revoke(jti, Date.parse(exp));
    expect((await live.next((f) => f.event === 'revoked', REVOCATIONS_SYNC_MS + 3_000)).data).toMatchObject({ message: 'Link revoked' });
    expect(Date.now() - written).toBeLessThan(REVOCATIONS_SYNC_MS + 3_000);
    expect((await live.closed).code).toBe(1008);
    expect(gw.logs.some((l) => l.msg === 'share-link revocations learned from the store (not heard on the bus)')).toBe(true);
    const viewer = await connectStream(gw.ws, `?token=${encodeURIComponent(token)}`, { path: `${sharePath}/stream` });
    const error = await viewer.next((f) => f.event === 'error');
    expect(error.data).toMatchObject({ code: 'GW_ERR_TOKEN_INVALID', message: expect.stringMatching(/revoked/i) });
    expect((await viewer.closed).code).toBe(1008);
  });
});

describe('last positions across a restart', () => {
  it('after a SIGTERM, a new client gets every device in its * snapshot and in a per-device snapshot; a live position wins', async () => {
    const dataDir = tempDataDir();
    const env = { GATEWAY_DATA_DIR: dataDir };
    let gw = await startGateway({ env });
    let pub = await connectPublisher(gw.mqttUrl);
    await pub.position('R1', { SPEED: 1 });
    await pub.position('R2', { SPEED: 2 });
    await pub.position('R2', { SPEED: 3 });
    expect(await allSnapshot(gw)).toEqual([
      ['R1', 1],
      ['R2', 3],
    ]);
    expect(await gw.stop('SIGTERM')).toBe(0); // written as ingest closes, whatever the flush timer

    gw = await startGateway({ env });
    expect(gw.logs.some((l) => l.msg === 'last positions restored' && l.devices === 3)).toBe(true); // R1, R2 and SYNC
    expect(await allSnapshot(gw)).toEqual([
      ['R1', 1],
      ['R2', 3],
    ]);
    const r2 = await oneSnapshot(gw, 'R2');
    expect((await r2.next(isMessage('R2'))).data.data).toMatchObject({ DEVICE_ID: 'R2', SPEED: 3 });
    pub = await connectPublisher(gw.mqttUrl);
    await pub.position('R2', { SPEED: 4 });
    expect((await r2.next(isMessage('R2'))).data.data.SPEED).toBe(4);
    // And a client that comes after the live one gets it, not the restored one.
    const late = await oneSnapshot(gw, 'R2');
    expect((await late.next(isMessage('R2'))).data.data.SPEED).toBe(4);
  });

  it('after a SIGKILL, loses at most what came after the last flush; devices older than the retention are not restored', async () => {
    const dataDir = tempDataDir();
    const env = { GATEWAY_DATA_DIR: dataDir, GATEWAY_POSITIONS_FLUSH_MS: '3000' };
    let gw = await startGateway({ env });
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.position('K1', { SPEED: 1 });
    await eventually(async () => (await metric(gw, 'positions_flushed_total')) >= 1, 5000, 'the first flush');
    // Right after a flush, the next one is about 3 s away: these two are in no flush when the process dies.
    await pub.position('K1', { SPEED: 2 });
    await pub.position('K2', { SPEED: 5 });
    await (await oneSnapshot(gw, 'K2')).next(isMessage('K2')); // accepted by ingest
    expect(await gw.stop('SIGKILL')).toBe(null);

    gw = await startGateway({ env });
    expect(await allSnapshot(gw)).toEqual([['K1', 1]]);
    await gw.stop('SIGTERM');

    // Kept for GATEWAY_POSITIONS_RETENTION_S after they were accepted, then gone.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    gw = await startGateway({ env: { ...env, GATEWAY_POSITIONS_RETENTION_S: '1' } });
    expect(await allSnapshot(gw)).toEqual([]);
  });
});

describe('a store that fails as ingest loads what it keeps', () => {
  it("fails the start, with the store's message", async () => {
    const dataDir = tempDataDir();
    const db = openDatabase(dataDir);
    // A position past the retention, whose delete (the purge before the read) fails.
    db.exec(`INSERT INTO device_positions VALUES ('OLD', '{}', '1970-01-01T00:00:00.000Z', 0)`);
    db.exec("CREATE TRIGGER positions_fail BEFORE DELETE ON device_positions BEGIN SELECT RAISE(ABORT, 'test: positions unreadable'); END");
    db.close();
    await expect(startGateway({ env: { GATEWAY_DATA_DIR: dataDir } })).rejects.toThrow(
      /ingest could not load its state from the store: test: positions unreadable/,
    );
  });
});
