/**
 * Every kind of bad input named in the telemetry issue: each gets a clear error or a named close
 * code, is counted, and the gateway keeps serving everyone else.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pack } from 'msgpackr';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage, type StreamClient } from '../helpers/stream-client.js';

/** A healthy client that must keep receiving while others misbehave. */
async function bystander(gw: GatewayProcess): Promise<{ client: StreamClient; check(n: number): Promise<void> }> {
  const client = await connectStream(gw.ws, '?device_ids=OK1');
  await client.next((f) => f.event === 'subscribed');
  const pub = await connectPublisher(gw.mqttUrl);
  return {
    client,
    async check(n) {
      await pub.position('OK1', { N: n });
      expect((await client.next(isMessage('OK1'))).data.data.N).toBe(n);
    },
  };
}

async function expectRequestError(gw: GatewayProcess, query: string, code: string, message: RegExp | string) {
  const client = await connectStream(gw.ws, query);
  const error = await client.next((f) => f.event === 'error');
  expect(error.data.code).toBe(code);
  expect(error.data.message).toMatch(message);
  expect((await client.closed).code).toBe(4500);
}

describe('bad device_ids in the query', () => {
  it('missing, empty, oversized and invalid device_ids get an error event and close 4500', async () => {
    const gw = await startGateway({ env: { GATEWAY_MAX_DEVICES_PER_CONNECTION: '50' } });
    const ok = await bystander(gw);
    await expectRequestError(gw, '', 'GW_ERR_DEVICE_IDS_MISSING', 'Debe especificar al menos un device_id en los query params');
    await expectRequestError(gw, '?device_ids=', 'GW_ERR_DEVICE_IDS_MISSING', /al menos un device_id/);
    await expectRequestError(gw, '?device_ids=,,,', 'GW_ERR_DEVICE_IDS_MISSING', /al menos un device_id/);
    const many = Array.from({ length: 51 }, (_, i) => `D${i}`).join(',');
    await expectRequestError(gw, `?device_ids=${many}`, 'GW_ERR_DEVICE_IDS_TOO_MANY', /Too many device_ids: 51 \(at most 50/);
    await expectRequestError(gw, `?device_ids=${'X'.repeat(20_000)}`, 'GW_ERR_DEVICE_IDS_TOO_MANY', /too long/);
    await expectRequestError(gw, '?device_ids=A,has%20space', 'GW_ERR_DEVICE_ID_INVALID', /Invalid device_id "has space"/);
    await expectRequestError(gw, `?device_ids=${'L'.repeat(129)}`, 'GW_ERR_DEVICE_ID_INVALID', /1-128 characters/);
    await expectRequestError(gw, '?device_ids=%3Cscript%3E', 'GW_ERR_DEVICE_ID_INVALID', /Invalid device_id/);
    await ok.check(1);
    expect((await gw.stats()).invalid_requests_total).toBe(8);
  });

  it('refuses an unknown subprotocol at the upgrade with a 400 naming what is supported', async () => {
    const gw = await startGateway();
    const ok = await bystander(gw);
    const refused = await connectStream(gw.ws, '?device_ids=A', { protocol: 'mqtt' }).then(
      () => null,
      (err: { status: number; body: string }) => err,
    );
    expect(refused?.status).toBe(400);
    expect(JSON.parse(refused!.body)).toEqual({
      error: { code: 'GW_ERR_UNSUPPORTED_SUBPROTOCOL', message: expect.stringContaining('this endpoint speaks json, msgpack') },
    });
    // A list with a supported token picks it.
    const picked = await connectStream(gw.ws, '?device_ids=A', { protocol: ['v9.unknown', 'msgpack'] });
    expect(picked.protocol).toBe('msgpack');
    await ok.check(2);
    expect((await gw.stats()).upgrades_rejected_total).toBe(1);
  });
});

describe('bad frames from clients', () => {
  it('binary garbage, non-JSON text, wrong shapes and unknown actions get an error event; the connection stays', async () => {
    const gw = await startGateway();
    const ok = await bystander(gw);
    const json = await connectStream(gw.ws, '?device_ids=A');
    await json.next((f) => f.event === 'subscribed');
    const cases: Array<[unknown, string]> = [
      [Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]), 'GW_ERR_FRAME_INVALID'],
      ['{not json', 'GW_ERR_FRAME_INVALID'],
      ['[1,2,3]', 'GW_ERR_FRAME_INVALID'],
      [{ device_ids: ['A'] }, 'GW_ERR_FRAME_INVALID'],
      [{ action: 'subscribe', device_ids: 'A' }, 'GW_ERR_FRAME_INVALID'],
      [{ action: 'subscribe', device_ids: ['bad id!'] }, 'GW_ERR_DEVICE_ID_INVALID'],
      [{ action: 'explode' }, 'GW_ERR_UNKNOWN_ACTION'],
    ];
    for (const [frame, code] of cases) {
      json.send(frame);
      const error = await json.next((f) => f.event === 'error');
      expect(error.data.code).toBe(code);
    }
    json.send({ action: 'ping' });
    await json.next((f) => f.event === 'pong');

    const msgpack = await connectStream(gw.ws, '?device_ids=A', { protocol: 'msgpack' });
    msgpack.send(Buffer.from([0xc1, 0xc1, 0xc1]));
    expect((await msgpack.next((f) => f.event === 'error')).data.code).toBe('GW_ERR_FRAME_INVALID');
    msgpack.send(pack({ action: 'ping' }));
    await msgpack.next((f) => f.event === 'pong');
    await ok.check(3);
    expect((await gw.stats()).bad_frames_total).toBe(8);
  });

  it('closes with 1009 on a frame over GATEWAY_MAX_FRAME_BYTES', async () => {
    const gw = await startGateway({ env: { GATEWAY_MAX_FRAME_BYTES: '1024' } });
    const ok = await bystander(gw);
    const client = await connectStream(gw.ws, '?device_ids=A');
    client.send(JSON.stringify({ action: 'ping', pad: 'x'.repeat(2000) }));
    expect((await client.next((f) => f.event === 'error')).data.code).toBe('GW_ERR_FRAME_TOO_BIG');
    expect((await client.closed).code).toBe(1009);
    await ok.check(4);
  });

  it('closes with 4501 after more than GATEWAY_MAX_BAD_FRAMES bad frames in a minute', async () => {
    const gw = await startGateway({ env: { GATEWAY_MAX_BAD_FRAMES: '3' } });
    const ok = await bystander(gw);
    const client = await connectStream(gw.ws, '?device_ids=A');
    for (let i = 0; i < 4; i++) client.send('garbage');
    expect((await client.closed).code).toBe(4501);
    expect(client.frames.filter((f) => f.event === 'error').at(-1)?.data.code).toBe('GW_ERR_TOO_MANY_BAD_FRAMES');
    await ok.check(5);
    expect((await gw.stats()).bad_frame_closes_total).toBe(1);
  });

  it("a frame over uWS's own cap (GATEWAY_MAX_FRAME_BYTES + 64 KiB) is cut by uWS (1006), counted, and the server keeps serving", async () => {
    const gw = await startGateway();
    const ok = await bystander(gw);
    const ws = new WebSocket(`${gw.ws}/api/v1/stream?device_ids=A`);
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send(Buffer.alloc(4096 + 64 * 1024 + 1, 1));
    expect(await closed).toBe(1006);
    await ok.check(6);
    expect((await gw.stats()).frame_cap_closes_total).toBe(1);
  });
});

describe('bad MQTT payloads', () => {
  it('non-JSON, non-object, oversized and id-less payloads are counted and never reach a client', async () => {
    const gw = await startGateway({ env: { GATEWAY_MAX_PAYLOAD_BYTES: '512' } });
    const ok = await bystander(gw);
    const watcher = await connectStream(gw.ws, '?device_ids=BAD1');
    await watcher.next((f) => f.event === 'subscribed');
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.raw('gps/BAD1', 'not json at all');
    await pub.raw('gps/BAD1', Buffer.from([0xff, 0xfe, 0x00, 0x01]));
    await pub.raw('gps/BAD1', '[1,2,3]');
    await pub.raw('gps/BAD1', '"a string"');
    await pub.raw('gps/BAD1', JSON.stringify({ DEVICE_ID: 'BAD1', pad: 'x'.repeat(600) }));
    await pub.raw('gps/BAD1', JSON.stringify({ LAT: 1 }));
    await pub.raw('gps/BAD1', JSON.stringify({ DEVICE_ID: 'bad id with spaces' }));
    await pub.raw('gps/BAD1', JSON.stringify({ DEVICE_ID: 'BAD1', N: 'good' }));
    const good = await watcher.next(isMessage('BAD1'));
    expect(good.data.data.N).toBe('good');
    expect(watcher.count(isMessage())).toBe(1);
    await ok.check(7);
    const stats = await gw.stats();
    expect(stats.ingest.rejected).toEqual({ json: 1, utf8: 1, depth: 0, shape: 2, size: 1, device_id: 2 });
    expect(gw.logs.filter((l) => l.msg === 'telemetry payload rejected').length).toBeGreaterThan(0);
  });
});
