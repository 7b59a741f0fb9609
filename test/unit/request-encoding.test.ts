import { describe, expect, it } from 'vitest';
import { decodeComponent, encodingProblem } from '../../src/edge/request-encoding.js';

describe('strict percent-decoding', () => {
  it.each([
    ['plain', 'plain'],
    ['p%65ts', 'pets'],
    ['a%2Fb', 'a/b'],
    ['%E2%82%AC', '€'],
    ['%e2%82%ac', '€'],
    ['%EF%BF%BD', '\uFFFD'], // an encoded U+FFFD is a character like any other
    ['a+b', 'a+b'],
    ['caf\u00e9', 'caf\u00e9'], // raw UTF-8 that uWS decoded
    ['', ''],
  ])('decodes %j', (text, decoded) => {
    expect(decodeComponent(text)).toBe(decoded);
  });

  it.each(['%ZZ', 'pets%', '%', '%4', '%4G', '%C0%AF', '%E2%82', '%FF', '%ED%A0%80', 'a\uFFFDb', '%41\uFFFD'])('refuses %j without throwing', (text) => {
    expect(decodeComponent(text)).toBeNull();
  });

  it('checks the raw path and the raw query, and says which is wrong', () => {
    expect(encodingProblem('/ws/pets', undefined)).toBeNull();
    expect(encodingProblem('/ws/pets', '')).toBeNull();
    expect(encodingProblem('/api/v1/stream', 'device_ids=A%2CB&batch=1')).toBeNull();
    expect(encodingProblem('/ws/%ZZ', undefined)).toMatch(/^The path/);
    expect(encodingProblem('/api/v1/ws', 'channel=sensors%')).toMatch(/^The query/);
    // A multi-byte sequence cannot straddle two values: %E2 then & is not UTF-8.
    expect(encodingProblem('/x', 'a=%E2&b=%82%AC')).toMatch(/^The query/);
  });
});
