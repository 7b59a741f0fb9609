import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { msgpackDepthWithin } from '../../src/protocol/bounded-json.js';
import { jsonCodec, MAX_FRAME_DEPTH, msgpackCodec } from '../../src/protocol/codec.js';
import { parseClientRequest } from '../../src/features/azure/client-requests.js';

const nest = (depth: number): unknown => (depth === 0 ? 1 : [nest(depth - 1)]);
const bytes = (text: string) => Buffer.from(text);
const ab = (b: Uint8Array) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

describe('client frame depth, checked before decoding (bounded-json.ts)', () => {
  it('walks msgpack without building it: depth, extensions, and every kind of header', () => {
    expect(msgpackDepthWithin(pack(nest(MAX_FRAME_DEPTH)), MAX_FRAME_DEPTH)).toBe('ok');
    expect(msgpackDepthWithin(pack(nest(MAX_FRAME_DEPTH + 1)), MAX_FRAME_DEPTH)).toBe('depth');
    const wide = {
      s: 'x'.repeat(70_000),
      b: Buffer.alloc(300),
      n: [1, -1, 300, -300, 70_000, 2 ** 40, 1.5, null, true, false],
      m: { a: { b: 'c' } },
      big: Array.from({ length: 70_000 }, () => 0),
    };
    expect(msgpackDepthWithin(pack(wide), 3)).toBe('ok');
    expect(msgpackDepthWithin(pack({ a: { b: { c: 1 } } }), 2)).toBe('depth');
    expect(msgpackDepthWithin(pack(new Date()), MAX_FRAME_DEPTH)).toBe('extension');
  });

  it('regression: a deeply nested msgpack or JSON client frame is refused as not decodable, never a RangeError', () => {
    const deepMsgpack = Buffer.alloc(200_000, 0x91);
    deepMsgpack[deepMsgpack.length - 1] = 0xc0;
    expect(() => msgpackCodec.decode(ab(deepMsgpack), true)).toThrow(`nested deeper than ${MAX_FRAME_DEPTH} levels`);
    expect(() => jsonCodec.decode(ab(bytes('['.repeat(100_000) + ']'.repeat(100_000))), false)).toThrow(/nested deeper/);
    expect(() => parseClientRequest(bytes('['.repeat(1024 * 1024)))).toThrow(expect.objectContaining({ code: 'GW_ERR_AZURE_REQUEST_INVALID' }));
    const deepData = `{"type":"sendToGroup","group":"g","data":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    expect(() => parseClientRequest(bytes(deepData))).toThrow(/nests deeper than/);
  });

  it('decode errors never quote the frame', () => {
    const secret = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0';
    for (const attempt of [() => jsonCodec.decode(ab(bytes(secret)), false), () => msgpackCodec.decode(ab(Uint8Array.from([0xc1, ...bytes(secret)])), true)]) {
      expect(attempt).toThrow();
      try {
        attempt();
      } catch (err) {
        expect((err as Error).message).not.toContain(secret.slice(0, 6));
      }
    }
  });
});
