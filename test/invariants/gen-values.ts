/**
 * Generators of the values every surface is fuzzed with: JSON of random shapes (with the keys that
 * pollute prototypes), nesting thousands deep, invalid UTF-8, msgpack, and percent-encodings both
 * valid and malformed. All draw from one Rng, so a seed gives the same bytes.
 */
import { pack } from 'msgpackr';
import type { Rng } from './prng.js';

/** Keys that reach Object.prototype or a constructor when a parser or a spread is careless. */
export const POLLUTING_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** Byte sequences that are not UTF-8: latin-1, overlong, truncated, surrogates, past U+10FFFF, stray continuations. */
export const BAD_UTF8: readonly Buffer[] = [
  Buffer.from([0xe9]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]),
  Buffer.from([0xff, 0xfe]),
  Buffer.from([0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
];

const WORDS = ['a', 'id', 'data', 'type', 'value', 'DEVICE_ID', 'LAT', 'LON', 'x', 'name', 'nested', 'ñandú', '日本', '', ' ', 'a.b', 'a/b'];

export function text(rng: Rng, max = 40): string {
  const kind = rng.int(0, 9);
  const n = rng.size(max);
  switch (kind) {
    case 0:
      return 'x'.repeat(n);
    case 1:
      return Array.from({ length: n }, () => String.fromCharCode(rng.int(0, 31))).join('');
    case 2:
      return Array.from({ length: Math.min(n, 20) }, () => rng.pick(['😀', 'é', '\u0000', '\u2028', '\uFEFF', '"', '\\', '\uD83D'])).join('');
    case 3:
      return rng.pick(WORDS);
    case 4:
      return rng.pick(POLLUTING_KEYS);
    default:
      return Array.from({ length: n }, () => String.fromCharCode(rng.int(32, 126))).join('');
  }
}

export function number(rng: Rng): number {
  return rng.pick([0, -0, 1, -1, 1.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1e308, 5e-324, rng.int(-1e9, 1e9), rng.float()]);
}

/** A JSON value of random shape, at most `depth` levels. */
export function jsonValue(rng: Rng, depth = 4): unknown {
  const kind = depth <= 0 ? rng.int(0, 4) : rng.int(0, 7);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return number(rng);
    case 3:
    case 4:
      return text(rng);
    case 5:
      return Array.from({ length: rng.int(0, 4) }, () => jsonValue(rng, depth - 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = rng.int(0, 5); i > 0; i--) {
        const key = rng.chance(0.1) ? rng.pick(POLLUTING_KEYS) : text(rng, 12);
        // defineProperty: a plain assignment of __proto__ would set the prototype instead of a key.
        Object.defineProperty(out, key, { value: jsonValue(rng, depth - 1), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
  }
}

/** JSON text nested `depth` deep around `inner`: arrays (2 bytes a level) or objects (6). */
export function deepJson(rng: Rng, depth: number, inner = '1'): string {
  if (rng.chance(0.5)) return `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
  return `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}`;
}

/** A depth that is sometimes harmless, sometimes past every recursive encoder's stack. */
export function deepDepth(rng: Rng): number {
  return rng.pick([10, 100, 1000, 3000, 6000, 10_000, rng.int(1, 10_000)]);
}

/** JSON text with one object holding `fields` (already-encoded JSON values) plus extras. */
export function objectText(fields: Readonly<Record<string, string>>): string {
  return `{${Object.entries(fields)
    .map(([k, v]) => `${JSON.stringify(k)}:${v}`)
    .join(',')}}`;
}

/** A JSON string literal whose content holds bytes that are not UTF-8. */
export function badUtf8String(rng: Rng, prefix = 'caf'): Buffer {
  return Buffer.concat([Buffer.from(`"${prefix}`), rng.pick(BAD_UTF8), Buffer.from('"')]);
}

/** A JSON object's bytes with one string value that is not UTF-8. */
export function badUtf8Object(rng: Rng, fields: Readonly<Record<string, unknown>>): Buffer {
  const head = JSON.stringify(fields).slice(0, -1);
  return Buffer.concat([Buffer.from(`${head}${head.length > 1 ? ',' : ''}"NAME":`), badUtf8String(rng), Buffer.from('}')]);
}

/** msgpack bytes: packed values, nesting (one byte a level), or junk. */
export function msgpackBytes(rng: Rng, value: () => unknown): Buffer {
  switch (rng.int(0, 3)) {
    case 0:
      return Buffer.from(pack(value()));
    case 1:
      return Buffer.concat([Buffer.alloc(rng.int(1000, 60_000), 0x91), Buffer.from([0x01])]); // fixarray(1) nested
    case 2:
      return Buffer.concat([Buffer.from(Array.from({ length: rng.int(300, 20_000) }, () => [0x81, 0xa1, 0x61]).flat()), Buffer.from([0x01])]); // {"a":{"a":…}}
    default:
      return rng.bytes(rng.size(200));
  }
}

/** Percent-encodings, valid and not, of path segments and query values. */
export const MALFORMED_PERCENT = ['%ZZ', '%', '%C0%AF', '%E2%82', '%FF', '%ED%A0%80', '%F4%90%80%80', '%%', '%2', '%G1', '%E9', '%C3'] as const;
const VALID_PERCENT = ['%41', '%2F', '%20', '%25', '%3F', '%23', '%2C', '%C3%A9', '%F0%9F%98%80', '%00', '%0A'];

/** True when decodeURIComponent refuses the text (what the gateway must refuse with a 400). */
export function malformedPercent(value: string): boolean {
  try {
    decodeURIComponent(value);
    return false;
  } catch {
    return true;
  }
}

/** A path segment or query value: a name, with percent-encodings spliced in. */
export function encodedPart(rng: Rng, name: string): string {
  switch (rng.int(0, 5)) {
    case 0:
      return name;
    case 1:
      return `${name}${rng.pick(MALFORMED_PERCENT)}`;
    case 2:
      return rng.pick(MALFORMED_PERCENT);
    case 3:
      return `${name.slice(0, 1)}${rng.pick(VALID_PERCENT)}${name.slice(1)}`;
    case 4:
      return Array.from({ length: rng.int(1, 4) }, () => rng.pick([...MALFORMED_PERCENT, ...VALID_PERCENT])).join('');
    default:
      return encodeURIComponent(text(rng, 30).toWellFormed());
  }
}

/** Shortens a description for a failure report, showing the size of what was cut. */
export function clip(value: string | Buffer, max = 160): string {
  const s = typeof value === 'string' ? value : value.toString('latin1').replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return s.length <= max
    ? s
    : `${s.slice(0, max)}… (${typeof value === 'string' ? value.length : value.length} ${typeof value === 'string' ? 'chars' : 'bytes'})`;
}
