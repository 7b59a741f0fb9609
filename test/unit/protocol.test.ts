import { describe, expect, it } from 'vitest';
import { unpack } from 'msgpackr';
import { negotiate } from '../../src/protocol/subprotocol.js';
import { parseDeviceIdsQuery, validateDeviceIds } from '../../src/features/telemetry/device-ids.js';
import { parseStreamAction } from '../../src/features/telemetry/stream-actions.js';
import { jsonEnvelopeLength, packMsgpackEnvelope, writeJsonEnvelope } from '../../src/features/telemetry/telemetry-envelope.js';
import { GatewayError } from '../../src/errors/gateway-error.js';

const FORMATS = { json: 'json', msgpack: 'msgpack' } as const;

describe('subprotocol negotiation', () => {
  it('defaults to json and echoes nothing when nothing is offered', () => {
    expect(negotiate('', FORMATS, 'json')).toEqual({ ok: true, chosen: 'json', echo: '' });
  });
  it('picks the first supported token of a list and echoes exactly it', () => {
    expect(negotiate('v2.unknown, msgpack ,json', FORMATS, 'json')).toEqual({ ok: true, chosen: 'msgpack', echo: 'msgpack' });
  });
  it('refuses when no offered token is supported, and does not match inherited keys', () => {
    expect(negotiate('mqtt, toString', FORMATS, 'json')).toEqual({ ok: false, offered: ['mqtt', 'toString'] });
  });
});

describe('device ids', () => {
  it('splits, trims and de-duplicates the query value, keeping order', () => {
    expect(parseDeviceIdsQuery(' A, B ,A,,C ', 10)).toEqual(['A', 'B', 'C']);
  });
  it('accepts integer ids from frames as strings', () => {
    expect(validateDeviceIds([848086072, 'X'], 10)).toEqual(['848086072', 'X']);
  });
  it.each([
    [undefined, 'GW_ERR_DEVICE_IDS_MISSING'],
    ['', 'GW_ERR_DEVICE_IDS_MISSING'],
    ['A,B,C', 'GW_ERR_DEVICE_IDS_TOO_MANY'],
    ['A,b c', 'GW_ERR_DEVICE_ID_INVALID'],
    ['A,ñ', 'GW_ERR_DEVICE_ID_INVALID'],
    ['x'.repeat(129), 'GW_ERR_DEVICE_ID_INVALID'],
  ])('refuses %j with %s', (value, code) => {
    expect(() => parseDeviceIdsQuery(value, 2)).toThrowError(expect.objectContaining({ code }));
  });
});

describe('stream actions', () => {
  it('parses subscribe, unsubscribe and ping', () => {
    expect(parseStreamAction({ action: 'subscribe', device_ids: ['A'] }, 5)).toEqual({ action: 'subscribe', deviceIds: ['A'] });
    expect(parseStreamAction({ action: 'unsubscribe', device_ids: ['A'] }, 5)).toEqual({ action: 'unsubscribe', deviceIds: ['A'] });
    expect(parseStreamAction({ action: 'ping' }, 5)).toEqual({ action: 'ping' });
  });
  it.each([
    [null, 'GW_ERR_FRAME_INVALID'],
    [[1], 'GW_ERR_FRAME_INVALID'],
    [{}, 'GW_ERR_FRAME_INVALID'],
    [{ action: 'subscribe' }, 'GW_ERR_FRAME_INVALID'],
    [{ action: 'dance' }, 'GW_ERR_UNKNOWN_ACTION'],
  ])('refuses %j with %s', (frame, code) => {
    expect(() => parseStreamAction(frame, 5)).toThrowError(GatewayError);
    expect(() => parseStreamAction(frame, 5)).toThrowError(expect.objectContaining({ code }));
  });
});

describe('telemetry envelope', () => {
  const timestamp = '2024-12-11T10:30:00.000Z';
  const payload = Buffer.from('{"DEVICE_ID":"0848086072","LAT":-33.4567,"LON":-70.6789,"SPEED":45}');

  it('splices the device payload into the reference JSON envelope byte for byte', () => {
    const out = Buffer.alloc(jsonEnvelopeLength(timestamp, payload) + 4, 0x20);
    const end = writeJsonEnvelope(out, 2, timestamp, payload);
    expect(end - 2).toBe(jsonEnvelopeLength(timestamp, payload));
    const text = out.subarray(2, end).toString();
    expect(JSON.parse(text)).toEqual({ event: 'message', data: { timestamp, data: JSON.parse(payload.toString()) } });
    expect(text).toBe(JSON.stringify({ event: 'message', data: { timestamp, data: JSON.parse(payload.toString()) } }));
  });

  it('packs the same envelope as msgpack', () => {
    const value = JSON.parse(payload.toString());
    expect(unpack(packMsgpackEnvelope(timestamp, value))).toEqual({ event: 'message', data: { timestamp, data: value } });
  });
});

describe('FrameBatch (device_ids=*&batch=1)', () => {
  it('is the frames\' own bytes wrapped as {"event":"batch","data":[…]} in json and msgpack', async () => {
    const { FrameBatch } = await import('../../src/features/telemetry/edge/all-devices-batch.js');
    const { pack, unpack } = await import('msgpackr');
    const frames = [
      { event: 'message', data: { n: 1 } },
      { event: 'message', data: { n: 2, s: 'ñ' } },
    ];
    const json = new FrameBatch(0);
    const msgpack = new FrameBatch(1);
    expect(json.take()).toBeNull();
    for (let round = 0; round < 2; round++) {
      // the buffers are reused after take()
      for (const f of frames) {
        json.add(Buffer.from(JSON.stringify(f)));
        msgpack.add(pack(f));
      }
      expect(JSON.parse(Buffer.from(json.take()!).toString())).toEqual({ event: 'batch', data: frames });
      expect(unpack(Buffer.from(msgpack.take()!))).toEqual({ event: 'batch', data: frames });
    }
    const big = Buffer.alloc(200_000, 0x61);
    const grown = new FrameBatch(0);
    for (let i = 0; i < 3; i++) grown.add(Buffer.from(JSON.stringify(big.toString())));
    expect(JSON.parse(Buffer.from(grown.take()!).toString()).data).toHaveLength(3);
  });
});
