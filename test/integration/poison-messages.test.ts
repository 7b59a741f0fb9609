/**
 * Issue 13, poison messages: input nested thousands deep, invalid UTF-8 and prototype keys, on the
 * bus, the REST API and in the store of a stopped node. Each is refused or dead-lettered with its
 * documented error and counted, and the node goes on delivering to everyone (a real gateway, real
 * clients, real SQLite).
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually, startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';
import { connectBackend, connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';
import { adminToken, channelEnv, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { mintJwt } from '../helpers/tokens.js';

/** `[[[…1…]]]` as JSON text, `depth` deep. */
const deepArray = (depth: number) => '['.repeat(depth) + '1' + ']'.repeat(depth);
/** `{"a":{"a":…{}…}}` as JSON text, `depth` deep. */
const deepObject = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${gw.http}/metrics`)).text();
  const match = new RegExp(`^gateway_${name} (\\d+)`, 'm').exec(text);
  if (!match) throw new Error(`no metric ${name}`);
  return Number(match[1]);
}

const pendingIsZero = (gw: GatewayProcess) => eventually(async () => (await metric(gw, 'outbox_pending')) === 0, 10_000, 'an empty outbox');

/** A REST call that must be answered (the bug: some got no answer at all). */
async function answered(gw: GatewayProcess, method: string, path: string, body: string, token: string) {
  const res = await fetch(`${gw.http}${path}`, {
    method,
    body,
    signal: AbortSignal.timeout(5_000),
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('telemetry', () => {
  it('regression: 20 KB of telemetry nested 10,000 deep with a msgpack client connected does not stop ingest', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const msgpack = await connectStream(gw.ws, '?device_ids=P1', { protocol: 'msgpack' });
    const json = await connectStream(gw.ws, '?device_ids=P1');
    await Promise.all([msgpack.next((f) => f.event === 'subscribed'), json.next((f) => f.event === 'subscribed')]);
    const channel = await connectChannel(gw, '/api/v1/ws?channel=general');
    const pub = await connectPublisher(gw.mqttUrl);

    const deep = `{"DEVICE_ID":"P1","deep":${deepArray(10_000)}}`;
    expect(deep.length).toBeGreaterThan(20_000);
    expect(deep.length).toBeLessThan(65_536); // under GATEWAY_MAX_PAYLOAD_BYTES
    await pub.raw('gps/P1', deep);
    await pub.position('P1', { N: 'after' });
    expect((await msgpack.next(isMessage('P1'))).data.data.N).toBe('after');
    expect((await json.next(isMessage('P1'))).data.data.N).toBe('after');
    expect(msgpack.count(isMessage('P1')) + json.count(isMessage('P1'))).toBe(2); // the deep one reached nobody

    // Channel events and the outbox still flow.
    const reply = await rest(
      gw,
      'POST',
      '/api/v1/channels/general/events',
      { type: 'notification', notification_type: 'after_deep', data: {} },
      await adminToken(),
    );
    expect(reply.status).toBe(202);
    expect(await channel.next(isEvent)).toMatchObject({ notification_type: 'after_deep' });
    await pendingIsZero(gw);
    expect((await gw.stats()).ingest.rejected.depth).toBe(1);
    expect(await metric(gw, 'telemetry_rejected_depth_total')).toBe(1);
  });

  it('regression: a latin-1 byte in telemetry is refused and counted; the JSON client stays connected and gets the next good position', async () => {
    const gw = await startGateway();
    const json = await connectStream(gw.ws, '?device_ids=U8-1');
    await json.next((f) => f.event === 'subscribed');
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.raw('gps/U8-1', Buffer.concat([Buffer.from('{"DEVICE_ID":"U8-1","NAME":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]));
    await pub.raw('gps/U8-1', JSON.stringify({ DEVICE_ID: 'U8-1', NAME: 'café' }));
    expect((await json.next(isMessage('U8-1'))).data.data.NAME).toBe('café');
    expect(json.count(isMessage('U8-1'))).toBe(1);
    expect(json.ws.readyState).toBe(json.ws.OPEN);
    const stats = await gw.stats();
    expect(stats.ingest.rejected.utf8).toBe(1);
    expect(await metric(gw, 'telemetry_rejected_utf8_total')).toBe(1);
    await gw.waitForLog((l) => l.msg === 'telemetry payload rejected' && l.reason === 'utf8');
  });
});

describe('channel events and notifications on the bus', () => {
  it('regression: a channel event and a user notification nested 6,000 deep do not stop ingest; normal ones still arrive', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const channel = await connectChannel(gw, '/api/v1/ws?channel=general');
    const msgpackChannel = await connectChannel(gw, '/ws/general', { protocol: 'msgpack' });
    const user = await connectStream(gw.ws, `?token=${await mintJwt('u1', { roles: ['admin'] })}`, { path: '/ws/connect', protocol: 'msgpack' });
    await user.next((f) => f.type === 'connection_established');
    const pub = await connectBackend(gw.mqttUrl);

    const deepData = deepObject(6_000);
    await pub.control('gateway/channels/general', `{"type":"entity_event","entity_type":"thing","event_type":"created","entity_id":1,"data":${deepData}}`);
    await pub.control('gateway/channels/general', `{"type":"notification","notification_type":"deep","data":${deepData}}`);
    await pub.control('gateway/events/all', `{"type":"notification","data":${deepData}}`);
    await pub.control('gateway/events/user/u1', `{"type":"notification","data":${deepArray(6_000)}}`);

    await pub.control('gateway/channels/general', JSON.stringify({ type: 'notification', notification_type: 'normal', data: { n: 1 } }));
    await pub.control('gateway/events/user/u1', JSON.stringify({ type: 'task_event', data: { n: 2 } }));
    expect(await channel.next(isEvent)).toMatchObject({ notification_type: 'normal', offset: 1 });
    expect(await msgpackChannel.next(isEvent)).toMatchObject({ notification_type: 'normal', offset: 1 });
    expect((await user.next((f) => f.type === 'task_event')).data).toEqual({ n: 2 });
    expect(user.count((f) => f.type === 'notification' && f.data?.a !== undefined)).toBe(0);
    expect(await metric(gw, 'events_rejected_total')).toBe(2);
    expect(await metric(gw, 'control_rejected_total')).toBe(2);
  });
});

describe('REST bodies', () => {
  it('regression: a 12 KB body nested 6,000 deep to the publish API is refused with 400; events flow, the outbox empties, a restart is clean', async () => {
    const dataDir = tempDataDir();
    const env = channelEnv({ GATEWAY_DATA_DIR: dataDir });
    const gw = await startGateway({ env });
    const token = await adminToken();
    const channel = await connectChannel(gw, '/api/v1/ws?channel=general');
    const deep = `{"type":"notification","notification_type":"deep","data":{"x":${deepArray(6_000)}}}`;
    expect(deep.length).toBeGreaterThan(12_000);
    for (const text of [deep, `{"type":"entity_event","entity_type":"t","event_type":"created","data":${deepObject(6_000)}}`]) {
      const reply = await answered(gw, 'POST', '/api/v1/channels/general/events', text, token);
      expect(reply.status).toBe(400);
      expect(reply.body.error).toEqual({ code: 'GW_ERR_BODY_INVALID', message: 'Request body is nested deeper than 64 levels' });
    }
    expect(
      (await rest(gw, 'POST', '/api/v1/channels/general/events', { type: 'notification', notification_type: 'normal', data: { ok: true } }, token)).status,
    ).toBe(202);
    expect(await channel.next(isEvent)).toMatchObject({ notification_type: 'normal', offset: 1 });
    await pendingIsZero(gw);
    await gw.stop();

    const again = await startGateway({ env });
    expect((await fetch(`${again.http}/readyz`)).status).toBe(200);
    const back = await connectChannel(again, '/api/v1/ws?channel=general');
    expect((await rest(again, 'POST', '/api/v1/channels/general/events', { type: 'notification', notification_type: 'after_restart' }, token)).status).toBe(
      202,
    );
    expect(await back.next(isEvent)).toMatchObject({ notification_type: 'after_restart', offset: 2 });
    expect(await metric(again, 'outbox_dead_letters')).toBe(0);
  });

  it('regression: a deep body to a free-form collection (/api/v1/payments/) is answered 400, and so is an event that would be too deep', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const token = await adminToken();
    const watcher = await connectChannel(gw, '/api/v1/ws?channel=payments');
    for (const [method, path] of [
      ['POST', '/api/v1/payments/'],
      ['PUT', '/api/v1/payments/1'],
    ]) {
      const reply = await answered(gw, method, path, `{"amount":1,"meta":${deepArray(6_000)}}`, token);
      expect(reply.status, `${method} ${path}`).toBe(400);
      expect(reply.body.error.code).toBe('GW_ERR_BODY_INVALID');
      expect(reply.body.error.message).toMatch(/nested deeper than 64 levels/);
    }
    // 64 deep is a valid body, but its event (the entity inside "data") would be 65 deep: refused, nothing written.
    const atLimit = `{"meta":${deepArray(63)}}`;
    const refused = await answered(gw, 'POST', '/api/v1/payments/', atLimit, token);
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/event of payments 1 would be nested deeper than 64 levels/);
    const fits = await answered(gw, 'POST', '/api/v1/payments/', `{"meta":${deepArray(62)}}`, token);
    expect(fits.status).toBe(201);
    expect(await watcher.next(isEvent)).toMatchObject({ event_type: 'created', offset: 1 });
    expect((await rest(gw, 'GET', '/api/v1/payments/', undefined, token)).body).toHaveLength(1);
    await pendingIsZero(gw);
  });

  it('regression: __proto__, constructor and prototype keys in entity bodies are refused with 400 GW_ERR_BODY_INVALID naming the key, and nothing is stored', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const token = await adminToken();
    const cases: Array<[string, string, string, string]> = [
      ['POST', '/api/v1/payments/', '{"amount":1,"__proto__":{"isAdmin":true}}', '__proto__'],
      ['POST', '/api/v1/payments/', '{"amount":1,"constructor":{"prototype":{"isAdmin":true}}}', 'constructor'],
      ['POST', '/api/v1/payments/', '{"amount":1,"meta":{"prototype":1}}', 'prototype'],
      ['POST', '/api/v1/sensores/', '{"tipo":"x","constructor":1}', 'constructor'],
      ['POST', '/api/v1/sensores/', '{"tipo":"x","__proto__":{"tipo":"y"}}', '__proto__'],
      ['PUT', '/api/v1/payments/1', '{"__proto__":{"amount":2}}', '__proto__'],
      ['POST', '/api/v1/channels/general/events', '{"type":"notification","notification_type":"n","data":{"__proto__":{"x":1}}}', '__proto__'],
      ['POST', '/viaje/crear', '{"equipo":"CAM-1","__proto__":{}}', '__proto__'],
    ];
    for (const [method, path, body, key] of cases) {
      const reply = await answered(gw, method, path, body, token);
      expect(reply.status, `${method} ${path} ${body}`).toBe(400);
      expect(reply.body.error).toEqual({ code: 'GW_ERR_BODY_INVALID', message: `Request body has the forbidden key "${key}"` });
    }
    expect((await rest(gw, 'GET', '/api/v1/payments/', undefined, token)).body).toEqual([]);
    expect((await rest(gw, 'GET', '/api/v1/sensores/', undefined, token)).body).toEqual([]);
    // The same words as values are data like any other.
    expect((await rest(gw, 'POST', '/api/v1/payments/', { note: '__proto__', kind: 'constructor' }, token)).status).toBe(201);
  });

  it('regression: a REST body with invalid UTF-8 is refused with 400 instead of being stored with replacement characters', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const token = await adminToken();
    const res = await fetch(`${gw.http}/api/v1/payments/`, {
      method: 'POST',
      body: Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toEqual({ code: 'GW_ERR_BODY_INVALID', message: 'Request body is not valid UTF-8' });
  });
});

describe('the outbox and the log of a stopped node', () => {
  it('regression: poison rows already in the log and the outbox of a stopped gateway do not wedge it: readiness 200, rows passed over and counted, a normal event delivered, nothing retried forever', async () => {
    const dataDir = tempDataDir();
    const env = channelEnv({ GATEWAY_DATA_DIR: dataDir });
    const first = await startGateway({ env });
    await first.stop();

    // As a hand edit or an older version could leave them: a row nested 6,000 deep, a row that is
    // not JSON, then a good one, all still in the outbox; and a row of a channel that no longer exists.
    const store = new Database(join(dataDir, 'gateway.sqlite'));
    const log = store.prepare('INSERT INTO channel_log (channel, offset, at, event) VALUES (?, ?, ?, ?)');
    const outbox = store.prepare('INSERT INTO outbox (channel, offset, created_at) VALUES (?, ?, ?)');
    const rows: [string, number, string][] = [
      ['general', 1, `{"type":"notification","notification_type":"deep","data":{"x":${deepArray(6_000)}}}`],
      ['general', 2, 'not json at all'],
      ['general', 3, JSON.stringify({ type: 'notification', notification_type: 'survivor', data: {} })],
      ['gone', 1, JSON.stringify({ type: 'notification', notification_type: 'n', data: {} })],
    ];
    for (const [channel, offset, event] of rows) {
      log.run(channel, offset, Date.now(), event);
      outbox.run(channel, offset, Date.now());
    }
    store.prepare('INSERT INTO channel_heads (channel, last_offset) VALUES (?, ?), (?, ?)').run('general', 3, 'gone', 1);
    const epoch = (store.prepare("SELECT value FROM meta WHERE key = 'epoch'").get() as { value: string }).value;
    store.close();

    const gw = await startGateway({ env });
    expect((await fetch(`${gw.http}/readyz`)).status).toBe(200);
    // The history starts after the last row that cannot be rendered: since=2 replays the survivor…
    const channel = await connectChannel(gw, `/api/v1/ws?channel=general&since=2&epoch=${epoch}`);
    expect(channel.established).toMatchObject({ recovered: true, replayed: 1, offset: 3 });
    expect(await channel.next(isEvent)).toMatchObject({ notification_type: 'survivor', offset: 3 });
    // …and since before it is no partial replay.
    const before = await connectChannel(gw, `/api/v1/ws?channel=general&since=0&epoch=${epoch}`);
    expect(before.established).toMatchObject({ type: 'connection_established', recovered: false, reason: 'history_exceeded', offset: 3 });
    const token = await adminToken();
    expect((await rest(gw, 'POST', '/api/v1/channels/general/events', { type: 'notification', notification_type: 'normal' }, token)).status).toBe(202);
    expect(await channel.next(isEvent)).toMatchObject({ notification_type: 'normal', offset: 4 });
    // Every row was published once and acknowledged by the broker: none waits, none is dead-lettered.
    await pendingIsZero(gw);
    expect(await metric(gw, 'outbox_published_total')).toBe(5);
    expect(await metric(gw, 'outbox_dead_letters')).toBe(0);
    expect(await metric(gw, 'ingest_poison_messages_total')).toBe(2); // the two log rows, at start
    const listed = (await (await fetch(`${gw.http}/api/v1/outbox/dead-letters`)).json()) as any;
    expect(listed).toEqual({ total: 0, skip: 0, limit: 100, dead_letters: [] });
    expect((await fetch(`${gw.http}/api/v1/outbox/dead-letters?limit=5000`)).status).toBe(400);

    // Restarted again: nothing is published again, nothing is lost.
    await gw.stop();
    const again = await startGateway({ env });
    const back = await connectChannel(again, `/api/v1/ws?channel=general&since=3&epoch=${epoch}`);
    expect(back.established).toMatchObject({ recovered: true });
    expect(await back.next(isEvent)).toMatchObject({ notification_type: 'normal', offset: 4 });
    expect(await metric(again, 'outbox_published_total')).toBe(0);
  });
});
