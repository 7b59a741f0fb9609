/**
 * protocol/bounded-json.ts: the depth scan before JSON.parse, UTF-8 on byte input, forbidden keys,
 * and the msgpack depth scan.
 */
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import {
  BoundedJsonError,
  depthWithin,
  forbiddenKeyIn,
  msgpackDepthWithin,
  parseJsonBytes,
  parseJsonText,
  scanJsonBytes,
  scanJsonText,
} from '../../src/protocol/bounded-json.js';

const nested = (depth: number, open = '[', close = ']', inner = '') => open.repeat(depth) + inner + close.repeat(depth);
const objects = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
const bytes = (text: string) => Buffer.from(text);

function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof BoundedJsonError) return err.reason;
    throw err;
  }
  return undefined;
}

describe('scanJsonBytes / scanJsonText', () => {
  it('a depth at the limit passes, one more is refused (arrays, objects, mixed)', () => {
    for (const scan of [(t: string, d: number) => scanJsonBytes(bytes(t), d), scanJsonText]) {
      expect(scan(nested(64), 64)).toBe('ok');
      expect(scan(nested(65), 64)).toBe('depth');
      expect(scan(objects(64), 64)).toBe('ok');
      expect(scan(objects(65), 64)).toBe('depth');
      expect(scan('[{"a":[{"b":[]}]}]', 5)).toBe('ok');
      expect(scan('[{"a":[{"b":[]}]}]', 4)).toBe('depth');
      expect(scan('1', 0)).toBe('ok');
      expect(scan('[]', 0)).toBe('depth');
    }
  });

  it('regression: 10,000 deep in 20 KB is refused before JSON.parse, whatever follows', () => {
    const deep = nested(10_000);
    expect(deep.length).toBe(20_000);
    expect(scanJsonBytes(bytes(deep), 64)).toBe('depth');
    expect(scanJsonBytes(bytes(`{"DEVICE_ID":"X","deep":${nested(6_000, '{"a":', '}', '1')}}`), 64)).toBe('depth');
  });

  it('brackets inside strings do not count, with escaped quotes and backslashes', () => {
    const inString = JSON.stringify({ s: '[[[[{{{{'.repeat(100) });
    expect(scanJsonBytes(bytes(inString), 1)).toBe('ok');
    expect(scanJsonText(inString, 1)).toBe('ok');
    // An escaped quote does not end the string: the brackets after it are still inside.
    expect(scanJsonText('{"s":"\\"[[[[[[[[[[\\""}', 1)).toBe('ok');
    // An escaped backslash does end before the quote: the bracket after the string counts.
    expect(scanJsonText('["\\\\",[[]]]', 2)).toBe('depth');
    expect(scanJsonText('["\\\\",[[]]]', 3)).toBe('ok');
    expect(scanJsonText('["\\u005b\\u007b"]', 1)).toBe('ok');
  });

  it('a closer before its opener is unbalanced (never JSON)', () => {
    expect(scanJsonText(']]]][[[[', 64)).toBe('unbalanced');
    expect(scanJsonBytes(bytes('{}}'), 64)).toBe('unbalanced');
  });

  it('byte input must be UTF-8: latin-1, lone continuation bytes, overlongs, surrogates, truncated sequences', () => {
    expect(scanJsonBytes(Buffer.concat([bytes('{"DEVICE_ID":"U8-1","NAME":"caf'), Buffer.from([0xe9]), bytes('"}')]), 64)).toBe('utf8');
    for (const bad of [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xff]]) {
      expect(scanJsonBytes(Buffer.concat([bytes('["'), Buffer.from(bad), bytes('"]')]), 64)).toBe('utf8');
    }
    expect(scanJsonBytes(bytes('{"NAME":"café ☕ 𝄞"}'), 64)).toBe('ok');
  });
});

describe('parseJsonBytes / parseJsonText', () => {
  it('parses what passes and names the refusal otherwise', () => {
    expect(parseJsonBytes(bytes('{"a":[1,{"b":"]"}]}'), { maxDepth: 3 })).toEqual({ a: [1, { b: ']' }] });
    expect(parseJsonText('[[1]]', { maxDepth: 2 })).toEqual([[1]]);
    expect(refusal(() => parseJsonText('[[1]]', { maxDepth: 1 }))).toBe('depth');
    expect(refusal(() => parseJsonBytes(Buffer.from([0x22, 0xe9, 0x22]), { maxDepth: 1 }))).toBe('utf8');
    expect(refusal(() => parseJsonBytes(bytes('{"a":'), { maxDepth: 8 }))).toBe('syntax');
    expect(refusal(() => parseJsonText('}{', { maxDepth: 8 }))).toBe('syntax');
    try {
      parseJsonText(nested(100), { maxDepth: 64 });
    } catch (err) {
      expect((err as BoundedJsonError).detail).toBe('is nested deeper than 64 levels');
    }
  });

  it('forbidden keys are refused at any level when asked, and only keys count', () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      expect(refusal(() => parseJsonText(`{"${key}":{"polluted":true}}`, { maxDepth: 8, forbidKeys: true }))).toBe('forbidden_key');
      expect(refusal(() => parseJsonText(`{"a":[{"b":{"${key}":1}}]}`, { maxDepth: 8, forbidKeys: true }))).toBe('forbidden_key');
      // As a value it is only text; without forbidKeys the key is allowed (an own property, no pollution).
      expect(parseJsonText(`{"a":"${key}"}`, { maxDepth: 8, forbidKeys: true })).toEqual({ a: key });
      expect(refusal(() => parseJsonText(`{"${key}":1}`, { maxDepth: 8 }))).toBeUndefined();
    }
    // An escaped spelling is the same key once parsed.
    expect(refusal(() => parseJsonText('{"__proto\\u005f_":{}}', { maxDepth: 8, forbidKeys: true }))).toBe('forbidden_key');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('forbiddenKeyIn names the key and is safe on any depth', () => {
    expect(forbiddenKeyIn(JSON.parse('{"x":1,"y":{"constructor":2}}'))).toBe('constructor');
    expect(forbiddenKeyIn({ a: [1, 'b', null, { c: {} }] })).toBeNull();
    expect(forbiddenKeyIn(JSON.parse(nested(50_000)))).toBeNull();
    expect(forbiddenKeyIn(42)).toBeNull();
  });
});

describe('depthWithin (values before pack or stringify)', () => {
  it('counts containers, at the limit passes, over refuses, and stops early', () => {
    expect(depthWithin(JSON.parse(nested(64)), 64)).toBe(true);
    expect(depthWithin(JSON.parse(nested(65)), 64)).toBe(false);
    expect(depthWithin(JSON.parse(nested(100_000)), 64)).toBe(false);
    expect(depthWithin({ a: new Uint8Array(4), b: new Date(), c: 'x' }, 1)).toBe(true);
    expect(depthWithin(new Map([['k', [[1]]]]), 2)).toBe(false);
    expect(depthWithin(new Map([['k', [[1]]]]), 3)).toBe(true);
  });
});

describe('msgpackDepthWithin (frames before unpack)', () => {
  const deep = (depth: number) => {
    let value: unknown = 1;
    for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value };
    return value;
  };

  it('at the limit passes, over refuses, for every container header size', () => {
    expect(msgpackDepthWithin(pack(deep(64)), 64)).toBe('ok');
    expect(msgpackDepthWithin(pack(deep(65)), 64)).toBe('depth');
    expect(
      msgpackDepthWithin(
        pack({
          a: Array.from({ length: 70_000 }, (_, i) => i),
          s: 'x'.repeat(70_000),
          m: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, [i]])),
        }),
        3,
      ),
    ).toBe('ok');
    expect(msgpackDepthWithin(pack({ a: Array.from({ length: 70_000 }, () => [[1]]) }), 3)).toBe('depth');
    expect(msgpackDepthWithin(pack({ n: null, t: true, f: 1.5, i: -(2 ** 40), u: 2 ** 40, b: Buffer.alloc(300) }), 1)).toBe('ok');
    expect(msgpackDepthWithin(pack({ d: new Date(0) }), 8)).toBe('extension');
    expect(msgpackDepthWithin(Uint8Array.from([0x91, 0xd4, 0x73, 0x00, 0x91, 0x01]), 8)).toBe('extension'); // msgpackr's Set reads the next value
    // 10,000 nested one-element arrays, hand-made (msgpackr itself cannot pack them).
    expect(msgpackDepthWithin(Buffer.concat([Buffer.alloc(10_000, 0x91), Buffer.from([0x01])]), 64)).toBe('depth');
  });

  it('truncated input and forged counts end as truncated; 0xc1 is invalid', () => {
    const full = pack({ list: [1, 2, 3], s: 'hello' });
    expect(msgpackDepthWithin(full.subarray(0, full.length - 2), 8)).toBe('truncated');
    expect(msgpackDepthWithin(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]), 8)).toBe('truncated');
    expect(msgpackDepthWithin(Buffer.from([0xa5, 0x61]), 8)).toBe('truncated');
    expect(msgpackDepthWithin(Buffer.from([0xda]), 8)).toBe('truncated');
    expect(msgpackDepthWithin(Buffer.from([]), 8)).toBe('truncated');
    expect(msgpackDepthWithin(Buffer.from([0x92, 0x01, 0xc1]), 8)).toBe('invalid');
  });
});
