import { describe, expect, it } from 'vitest';
import { FrameBatchWriter, readFrameBatch } from '../../src/threads/frame-batch.js';
import { Backoff } from '../../src/util/backoff.js';
import { TelemetryDecoder } from '../../src/features/telemetry/ingest/telemetry-decoder.js';
import { loadConfig } from '../../src/config/load-config.js';

function write(writer: FrameBatchWriter, index: number, seq: number, json: string, msgpack: number[] | null) {
  const bytes = Buffer.from(json);
  let end = writer.beginRecord(index, seq, bytes.length, msgpack?.length ?? 0);
  writer.buffer.set(bytes, end);
  end += bytes.length;
  writer.finishRecord(end, msgpack ? Uint8Array.from(msgpack) : null);
}

function read(buffer: ArrayBuffer, length: number) {
  const out: Array<[number, number, string, number[]]> = [];
  readFrameBatch(buffer, length, {
    frame(index, seq, bytes, start, jsonLength, msgpackLength) {
      out.push([
        index,
        seq,
        Buffer.from(bytes.subarray(start, start + jsonLength)).toString(),
        [...bytes.subarray(start + jsonLength, start + jsonLength + msgpackLength)],
      ]);
    },
  });
  return out;
}

describe('frame batches', () => {
  it('round-trips records with either, both or one format', () => {
    const writer = new FrameBatchWriter(1024);
    write(writer, 0, 1, '{"a":1}', null);
    write(writer, 7, 2, '', [1, 2, 3]);
    write(writer, 3, 9, '{}', [9]);
    const [first, second] = writer.take(2);
    const expected = [
      [0, 1, '{"a":1}', []],
      [7, 2, '', [1, 2, 3]],
      [3, 9, '{}', [9]],
    ];
    expect(read(first, first.byteLength)).toEqual(expected);
    expect(read(second, second.byteLength)).toEqual(expected);
    expect(first).not.toBe(second);
    expect(writer.length).toBe(0);
    write(writer, 1, 1, '{"next":true}', null);
    const [next] = writer.take();
    expect(read(next, next.byteLength)).toEqual([[1, 1, '{"next":true}', []]]);
  });

  it('grows for a single record larger than its capacity, and reports overflow before it', () => {
    const writer = new FrameBatchWriter(32);
    expect(writer.wouldOverflow(100, 0)).toBe(false); // empty: the record gets a bigger buffer
    write(writer, 1, 1, 'x'.repeat(100), null);
    expect(writer.wouldOverflow(1, 0)).toBe(true);
    const [buffer] = writer.take();
    expect(read(buffer, buffer.byteLength)[0][2]).toBe('x'.repeat(100));
  });
});

describe('backoff', () => {
  it('grows exponentially with full jitter up to the cap, and resets', () => {
    const maxJitter = new Backoff(100, 1000, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6].map(() => maxJitter.next())).toEqual([99, 199, 399, 799, 999, 999]);
    maxJitter.reset();
    expect(maxJitter.next()).toBe(99);
    const noJitter = new Backoff(100, 1000, () => 0);
    expect(noJitter.next()).toBe(0);
  });
});

describe('telemetry decoder', () => {
  const decoder = new TelemetryDecoder({ ...loadConfig({}).telemetry, maxPayloadBytes: 100 }, 4);
  const byTopic = new TelemetryDecoder({ ...loadConfig({ GATEWAY_DEVICE_ID_TOPIC_LEVEL: '1' }).telemetry }, 64);

  it('accepts an object with a device id, string or integer', () => {
    expect(decoder.decode('gps/x', Buffer.from('{"DEVICE_ID":"A1","LAT":1}'))).toMatchObject({ ok: true, deviceId: 'A1' });
    expect(decoder.decode('gps/x', Buffer.from('{"DEVICE_ID":848086072}'))).toMatchObject({ ok: true, deviceId: '848086072' });
    expect(byTopic.decode('gps/T9', Buffer.from('{"LAT":1}'))).toMatchObject({ ok: true, deviceId: 'T9' });
  });

  it.each([
    ['x'.repeat(101), 'size'],
    ['{"DEVICE_ID":', 'json'],
    ['', 'json'],
    ['[1]', 'shape'],
    ['null', 'shape'],
    ['42', 'shape'],
    ['{"LAT":1}', 'device_id'],
    ['{"DEVICE_ID":"a b"}', 'device_id'],
    ['{"DEVICE_ID":1.5}', 'device_id'],
    ['{"DEVICE_ID":{}}', 'device_id'],
  ])('rejects %j as %s', (payload, reason) => {
    expect(decoder.decode('gps/x', Buffer.from(payload))).toMatchObject({ ok: false, reason });
  });

  it('regression: a latin-1 byte inside a string is refused as utf8, never accepted to be relayed', () => {
    const latin1 = Buffer.concat([Buffer.from('{"DEVICE_ID":"U8-1","NAME":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    expect(decoder.decode('gps/x', latin1)).toMatchObject({ ok: false, reason: 'utf8' });
    expect(decoder.decode('gps/x', Buffer.from('{"DEVICE_ID":"U8-1","NAME":"café"}'))).toMatchObject({ ok: true, deviceId: 'U8-1' });
  });

  it('regression: nesting deeper than the limit is refused as depth before parsing; at the limit it passes', () => {
    expect(decoder.decode('gps/x', Buffer.from('{"DEVICE_ID":"A1","a":[{"b":[1]}]}'))).toMatchObject({ ok: true });
    expect(decoder.decode('gps/x', Buffer.from('{"DEVICE_ID":"A1","a":[{"b":[[1]]}]}'))).toMatchObject({ ok: false, reason: 'depth' });
    expect(decoder.decode('gps/x', Buffer.from('{"DEVICE_ID":"A1","a":"[[[[[[[[[["}'))).toMatchObject({ ok: true });
  });
});
