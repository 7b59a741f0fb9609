/**
 * The client SDK (src/client, shipped as `uws-gateway/client`) in Node against the real gateway,
 * with `ws` as its WebSocket: positions in both formats, resubscription and no lost events across
 * a gateway restart, `recovered: false` surfaced, tokens refreshed before they expire, and no
 * reconnect on a "do not reconnect" close.
 */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ChannelClient, StreamClient, UserClient, type StateChange } from '../../src/client/index.js';
import { adminToken, channelEnv, rest } from '../helpers/channels.js';
import { freeFixedPort, REPO_ROOT, startGateway, tempDataDir } from '../helpers/gateway-process.js';
import { connectPublisher } from '../helpers/publisher.js';
import { mintJwt } from '../helpers/tokens.js';

const Socket = WebSocket as never;

/** Resolves when `events` holds an item matching `predicate` (checked on each push). */
function waitFor<T>(events: T[], predicate: (e: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const check = () => {
      const found = events.find(predicate);
      if (found !== undefined) return resolve(found);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(events).slice(-600)}`));
      setTimeout(check, 10);
    };
    check();
  });
}

function track<T extends { on: (e: any, l: any) => unknown; stop: () => void }>(client: T): T & { states: StateChange[] } {
  const states: StateChange[] = [];
  client.on('state', (s: StateChange) => states.push(s));
  onTestFinished(() => client.stop());
  return Object.assign(client, { states });
}

describe('client SDK in Node', () => {
  it('is exported as uws-gateway/client', () => {
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('uws-gateway/client'); console.log(Object.keys(m).sort().join(','))"],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    expect(out.trim()).toBe('ChannelClient,StreamClient,UserClient,backoffDelay');
  });

  it('streams positions in json and msgpack, and after a gateway restart watches again every device it had', async () => {
    const env = { PORT: String(await freeFixedPort()) };
    let gw = await startGateway({ env });
    let pub = await connectPublisher(gw.mqttUrl);
    await pub.position('C-1', { LAT: -33.1, LON: -70.1, SPEED: 10 });
    const clients = [];
    for (const format of ['json', 'msgpack'] as const) {
      const positions: { deviceId: string | null; data: any }[] = [];
      const client = track(new StreamClient({ url: gw.ws, deviceIds: ['C-1'], format, WebSocket: Socket, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }));
      client.on('position', (p) => positions.push(p));
      await client.start();
      await waitFor(positions, (p) => p.deviceId === 'C-1' && p.data.SPEED === 10, `${format} snapshot`);
      client.subscribe(['C-2']); // added on the open connection
      await pub.position('C-2', { LAT: -33.2, LON: -70.2, SPEED: 20 });
      await waitFor(positions, (p) => p.deviceId === 'C-2', `${format} live C-2`);
      clients.push({ client, positions });
    }
    await gw.stop('SIGTERM'); // its embedded broker goes too; the publisher's end is cleaned up with the test
    gw = await startGateway({ env });
    for (const { client } of clients) await waitFor(client.states, (s) => s.state === 'open' && client.states.indexOf(s) > 1, 'reopened');
    pub = await connectPublisher(gw.mqttUrl);
    await pub.position('C-1', { LAT: -33.3, LON: -70.3, SPEED: 30 });
    await pub.position('C-2', { LAT: -33.4, LON: -70.4, SPEED: 40 });
    for (const { positions } of clients) {
      await waitFor(positions, (p) => p.deviceId === 'C-1' && p.data.SPEED === 30, 'C-1 after the restart');
      await waitFor(positions, (p) => p.deviceId === 'C-2' && p.data.SPEED === 40, 'C-2 after the restart');
    }
  }, 30_000);

  it('stops on a "do not reconnect" close (4500 for a bad device id) and says why', async () => {
    const gw = await startGateway();
    const client = track(new StreamClient({ url: gw.ws, deviceIds: ['bad id!'], WebSocket: Socket, reconnect: { initialDelayMs: 10 } }));
    const errors: { code: string }[] = [];
    client.on('serverError', (e) => errors.push(e));
    await client.start(); // the upgrade is accepted; the error and the close follow
    await waitFor(client.states, (s) => s.state === 'closed', 'the close');
    expect(errors[0].code).toBe('GW_ERR_DEVICE_ID_INVALID');
    expect(client.states.map((s) => s.state)).toEqual(['connecting', 'open', 'closed']); // no reconnect
    expect(client.states.at(-1)!.code).toBe(4500);
  });

  it('refreshes its token before it expires, on the open connection', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_AUTH_REQUIRED: 'stream' }) });
    let minted = 0;
    const client = track(
      new StreamClient({
        url: gw.ws,
        deviceIds: ['SIM-1'],
        WebSocket: Socket,
        refreshMarginMs: 2_500,
        token: () => {
          minted++;
          return mintJwt('ops', { roles: ['admin'] }, { expiresInS: 3 });
        },
      }),
    );
    const frames: any[] = [];
    client.on('frame', (f) => frames.push(f));
    await client.start();
    await waitFor(frames, (f) => f.event === 'token_refreshed', 'first refresh');
    await waitFor(
      frames.filter((f) => f.event === 'token_refreshed'),
      () => frames.filter((f) => f.event === 'token_refreshed').length >= 2,
      'second refresh',
    );
    expect(minted).toBeGreaterThanOrEqual(3); // the connect, then one per refresh
    expect(client.states.map((s) => s.state)).toEqual(['connecting', 'open']); // never dropped
  });

  it('waits with an empty device set instead of being refused, and connects on the first subscribe', async () => {
    const gw = await startGateway();
    const client = track(new StreamClient({ url: gw.ws, deviceIds: [], WebSocket: Socket }));
    const positions: { deviceId: string | null }[] = [];
    client.on('position', (p) => positions.push(p));
    const started = client.start();
    expect(client.states).toEqual([{ state: 'closed', reason: 'nothing to watch' }]);
    client.subscribe(['E-1']);
    await started;
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.position('E-1');
    await waitFor(positions, (p) => p.deviceId === 'E-1', 'E-1');
  });

  it('does not refresh a long-lived token early (a timer past 24.8 days would fire at once)', async () => {
    const gw = await startGateway({ env: channelEnv() });
    let minted = 0;
    const client = track(
      new UserClient({
        url: gw.ws,
        WebSocket: Socket,
        token: () => {
          minted++;
          return mintJwt('u-long', {}, { expiresInS: 30 * 86_400 });
        },
      }),
    );
    const frames: any[] = [];
    client.on('frame', (f) => frames.push(f));
    await client.start();
    await waitFor(frames, (f) => f.type === 'connection_established', 'established');
    await new Promise((r) => setTimeout(r, 300)); // long enough for a runaway refresh loop to show
    expect(minted).toBe(1);
    expect(frames.filter((f) => f.type === 'token_refreshed')).toEqual([]);
  });

  it('resumes an entity channel across a gateway restart: every event once, in order', async () => {
    const dir = tempDataDir();
    const port = await freeFixedPort();
    const env = channelEnv({ GATEWAY_DATA_DIR: dir, PORT: String(port) });
    let gw = await startGateway({ env });
    const token = await adminToken();
    const client = track(new ChannelClient({ url: gw.ws, channel: 'sensors', WebSocket: Socket, token, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } }));
    const events: any[] = [];
    const connected: any[] = [];
    client.on('event', (e) => events.push(e));
    client.on('connected', (c) => connected.push(c));
    await client.start();

    // A writer keeps creating sensors; a write the restart refuses is simply retried.
    let stop = false;
    let written = 0;
    const writer = (async () => {
      while (!stop) {
        try {
          const r = await rest({ http: `http://127.0.0.1:${port}` } as never, 'POST', '/api/v1/sensores/', { tipo: `t${written}` }, token);
          if (r.status === 201) written++;
        } catch {
          await new Promise((r) => setTimeout(r, 20)); // the gateway is down for a moment
        }
      }
    })();
    await waitFor(events, () => events.length >= 20, 'events before the restart');
    expect(await gw.stop('SIGTERM')).toBe(0);
    gw = await startGateway({ env }); // same port, same data directory
    await waitFor(connected, (c) => c.recovered === true, 'a recovered reconnect');
    const after = written;
    await waitFor(events, () => written >= after + 20, 'writes after the restart');
    stop = true;
    await writer;

    // The truth is the table: every sensor in it, each once, in order of its event's offset.
    const all = (await rest(gw, 'GET', '/api/v1/sensores/?limit=1000', undefined, token)).body as { id: number }[];
    await waitFor(events, () => events.length >= all.length, 'every event');
    expect(events.map((e) => e.entity_id)).toEqual(all.map((s) => s.id).sort((a, b) => a - b));
    expect(events.map((e) => e.offset)).toEqual(events.map((_, i) => events[0].offset + i));
    expect(client.states.some((s) => s.state === 'reconnecting')).toBe(true);
  }, 60_000);

  it('surfaces recovered: false when the history it asks for is from another epoch', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const client = track(
      new ChannelClient({
        url: gw.ws,
        channel: 'sensors',
        dialect: 'realtime',
        WebSocket: Socket,
        token: await adminToken(),
        since: { offset: 0, epoch: 'another-node' },
      }),
    );
    const connected: any[] = [];
    client.on('connected', (c) => connected.push(c));
    await client.start();
    const info = await waitFor(connected, () => true, 'connection_established');
    expect(info).toMatchObject({ recovered: false, reason: 'epoch_changed' });
    expect(client.position).toEqual({ offset: info.offset, epoch: info.epoch }); // goes on from the head
  });

  it('surfaces recovered: false for a since before a hole in the history, goes on from the head; a since ahead of the edge recovers once it is reached', async () => {
    const dataDir = tempDataDir();
    const env = channelEnv({ GATEWAY_DATA_DIR: dataDir });
    const token = await adminToken();
    let gw = await startGateway({ env });
    const probe = track(new ChannelClient({ url: gw.ws, channel: 'sensors', dialect: 'realtime', WebSocket: Socket, token }));
    const probeConnected: any[] = [];
    const probeEvents: any[] = [];
    probe.on('connected', (c) => probeConnected.push(c));
    probe.on('event', (f) => probeEvents.push(f));
    await probe.start();
    const epoch = (await waitFor(probeConnected, () => true, 'the epoch')).epoch as string;
    for (let i = 1; i <= 4; i++) expect((await rest(gw, 'POST', '/api/v1/sensores/', { tipo: `t${i}` }, token)).status).toBe(201);
    await waitFor(probeEvents, (f) => f.offset === 4, 'offset 4 through the bus');
    probe.stop();
    expect(await gw.stop()).toBe(0);
    // Row 2 as if taken with the clock two hours behind: the history read back at start has a hole.
    const history = new Database(join(dataDir, 'gateway.sqlite'));
    expect(history.prepare("UPDATE channel_log SET at = at - 7200000 WHERE channel = 'sensors' AND offset = 2").run().changes).toBe(1);
    history.close();
    gw = await startGateway({ env });

    const client = track(new ChannelClient({ url: gw.ws, channel: 'sensors', dialect: 'realtime', WebSocket: Socket, token, since: { offset: 1, epoch } }));
    const connected: any[] = [];
    const events: any[] = [];
    client.on('connected', (c) => connected.push(c));
    client.on('event', (f) => events.push(f));
    await client.start();
    const info = await waitFor(connected, () => true, 'connection_established');
    expect(info).toMatchObject({ recovered: false, reason: 'history_exceeded', offset: 4, epoch });
    expect(client.position).toEqual({ offset: 4, epoch }); // the app reloads over REST and goes on from the head
    await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't5' }, token);
    await waitFor(events, (f) => f.offset === 5, 'the live event');
    expect(events.map((f) => f.offset)).toEqual([5]); // no partial replay (3 and 4 were after the hole)

    // Ahead: a position this edge reaches a moment later (as from another edge thread).
    const ahead = track(new ChannelClient({ url: gw.ws, channel: 'sensors', dialect: 'realtime', WebSocket: Socket, token, since: { offset: 6, epoch } }));
    const aheadConnected: any[] = [];
    const aheadEvents: any[] = [];
    ahead.on('connected', (c) => aheadConnected.push(c));
    ahead.on('event', (f) => aheadEvents.push(f));
    await ahead.start();
    await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't6' }, token);
    expect(await waitFor(aheadConnected, () => true, 'connection_established')).toMatchObject({ recovered: true, replayed: 0, offset: 6 });
    await rest(gw, 'POST', '/api/v1/sensores/', { tipo: 't7' }, token);
    await waitFor(aheadEvents, (f) => f.offset === 7, 'the next event');
    expect(aheadEvents.map((f) => f.offset)).toEqual([7]);
    expect(ahead.states.filter((s) => s.state === 'reconnecting')).toEqual([]);
  });
});
