/**
 * Bounded decoding: every JSON or msgpack input from the network, the bus or the store passes
 * through here before anything recursive touches it.
 *
 * V8's JSON.parse is iterative, but JSON.stringify, msgpackr's pack and unpack, structuredClone
 * (postMessage) and our own walks recurse: a value nested a few thousand deep ends any of them
 * with `RangeError: Maximum call stack size exceeded`, wherever it happens to be encoded next. So
 * the nesting depth is checked on the input's bytes, before JSON.parse, with one linear scan that
 * allocates nothing; with it the scan checks that byte input is UTF-8 (invalid bytes must never be
 * relayed in a text frame: RFC 6455 §8.1 makes the receiver fail the connection).
 *
 * Depth counts containers: `1` and `"a"` are 0 deep, `{}` and `[]` 1, `{"a":[1]}` 2. One limit,
 * GATEWAY_MAX_JSON_DEPTH (default 64), for every path; an envelope the gateway wraps around a value
 * adds at most 3 levels, far below what any encoder survives (~2,000 on a worker's stack).
 *
 *   scanJsonBytes(bytes, maxDepth)     'ok' | 'depth' | 'utf8' | 'unbalanced'   hot path, no allocation
 *   scanJsonText(text, maxDepth)       'ok' | 'depth' | 'unbalanced'            the same on a string
 *   parseJsonBytes(bytes, limits)      scan + JSON.parse (+ forbidden keys): the value, or BoundedJsonError
 *   parseJsonText(text, limits)        the same on a string
 *   forbiddenKeyIn(value)              the first `__proto__` / `constructor` / `prototype` key, or null
 *   depthWithin(value, maxDepth)       a JS value's depth before pack/stringify (values not from a scan)
 *   msgpackDepthWithin(bytes, max)     'ok' | 'depth' | 'truncated' | 'invalid' | 'extension', before unpack
 */
import { isUtf8 } from 'node:buffer';

/** Default and bounds of GATEWAY_MAX_JSON_DEPTH. */
export const DEFAULT_MAX_JSON_DEPTH = 64;
export const MIN_JSON_DEPTH = 8;
export const MAX_JSON_DEPTH = 512;

/** Keys refused in bodies that are stored or merged: assigning them to an object changes its prototype. */
export const FORBIDDEN_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

type ScanResult = 'ok' | 'depth' | 'utf8' | 'unbalanced';
type JsonRefusal = 'depth' | 'utf8' | 'syntax' | 'forbidden_key';

interface JsonLimits {
  readonly maxDepth: number;
  /** Refuse FORBIDDEN_KEYS at any level (bodies that are stored, merged or echoed). */
  readonly forbidKeys?: boolean;
}

/** Why an input was refused; `detail` is a phrase to put after the input's name ("is nested deeper than 64 levels"). */
export class BoundedJsonError extends Error {
  constructor(
    readonly reason: JsonRefusal,
    readonly detail: string,
  ) {
    super(`JSON ${detail}`);
    this.name = 'BoundedJsonError';
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** What a byte is to the scan outside strings: most are nothing (0), so the loop tests one table load. */
const OTHER = 0;
const STRING = 1;
const OPEN = 2;
const CLOSE = 3;
const HIGH = 4;
const BYTE_CLASS = new Uint8Array(256);
BYTE_CLASS[QUOTE] = STRING;
BYTE_CLASS[0x7b] = OPEN; // {
BYTE_CLASS[0x5b] = OPEN; // [
BYTE_CLASS[0x7d] = CLOSE; // }
BYTE_CLASS[0x5d] = CLOSE; // ]
BYTE_CLASS.fill(HIGH, 0x80);

/**
 * One pass over JSON bytes: nesting depth (brackets outside strings; inside one, a backslash skips
 * the next byte, which is enough since no escape sequence contains a quote) and UTF-8 validity
 * (native isUtf8, only when a byte >= 0x80 was seen, so ASCII payloads pay nothing for it).
 * `unbalanced`: a closer without its opener (never valid JSON). Anything else malformed is left to
 * JSON.parse.
 */
export function scanJsonBytes(bytes: Uint8Array, maxDepth: number): ScanResult {
  let depth = 0;
  let high = false;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const kind = BYTE_CLASS[bytes[i]];
    if (kind === OTHER) continue;
    if (kind === STRING) {
      for (i++; i < n; i++) {
        const b = bytes[i];
        if (b === QUOTE) break;
        if (b >= 0x80) high = true;
        else if (b === BACKSLASH && bytes[++i] >= 0x80) high = true;
      }
    } else if (kind === OPEN) {
      if (++depth > maxDepth) return 'depth';
    } else if (kind === CLOSE) {
      if (--depth < 0) return 'unbalanced';
    } else {
      high = true;
    }
  }
  if (high && !isUtf8(bytes)) return 'utf8';
  return 'ok';
}

/** scanJsonBytes on text already decoded (UTF-16: no encoding question). */
export function scanJsonText(text: string, maxDepth: number): Exclude<ScanResult, 'utf8'> {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const kind = c < 0x80 ? BYTE_CLASS[c] : OTHER;
    if (kind === OTHER) continue;
    if (kind === STRING) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === QUOTE) break;
        if (d === BACKSLASH) i++;
      }
    } else if (kind === OPEN) {
      if (++depth > maxDepth) return 'depth';
    } else if (kind === CLOSE) {
      if (--depth < 0) return 'unbalanced';
    }
  }
  return 'ok';
}

function refuse(result: Exclude<ScanResult, 'ok'>, maxDepth: number): never {
  if (result === 'depth') throw new BoundedJsonError('depth', `is nested deeper than ${maxDepth} levels`);
  if (result === 'utf8') throw new BoundedJsonError('utf8', 'is not valid UTF-8');
  throw new BoundedJsonError('syntax', 'is not valid JSON');
}

function parseChecked(text: string, limits: JsonLimits): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BoundedJsonError('syntax', 'is not valid JSON');
  }
  if (limits.forbidKeys === true) {
    const key = forbiddenKeyIn(value);
    if (key !== null) throw new BoundedJsonError('forbidden_key', `has the forbidden key "${key}"`);
  }
  return value;
}

/** Checks, then parses UTF-8 JSON bytes. Throws BoundedJsonError (depth, utf8, syntax, forbidden_key). */
export function parseJsonBytes(bytes: Uint8Array, limits: JsonLimits): unknown {
  const scan = scanJsonBytes(bytes, limits.maxDepth);
  if (scan !== 'ok') refuse(scan, limits.maxDepth);
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return parseChecked(buffer.toString('utf8'), limits);
}

/** Checks, then parses JSON text. Throws BoundedJsonError (depth, syntax, forbidden_key). */
export function parseJsonText(text: string, limits: JsonLimits): unknown {
  const scan = scanJsonText(text, limits.maxDepth);
  if (scan !== 'ok') refuse(scan, limits.maxDepth);
  return parseChecked(text, limits);
}

const isContainer = (v: unknown): v is object => v !== null && typeof v === 'object';

/**
 * The first forbidden key at any level of a parsed value (own keys, as JSON.parse makes them), or
 * null. Iterative, so it is safe on any depth.
 */
export function forbiddenKeyIn(value: unknown): string | null {
  if (!isContainer(value)) return null;
  const stack: object[] = [value];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (Array.isArray(node)) {
      for (const item of node) if (isContainer(item)) stack.push(item);
      continue;
    }
    for (const key of Object.keys(node)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') return key;
      const child = (node as Record<string, unknown>)[key];
      if (isContainer(child)) stack.push(child);
    }
  }
  return null;
}

function depthOf(value: unknown, budget: number): boolean {
  if (!isContainer(value) || ArrayBuffer.isView(value) || value instanceof Date) return true;
  if (budget === 0) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!depthOf(item, budget - 1)) return false;
    return true;
  }
  if (value instanceof Map || value instanceof Set) {
    for (const [k, v] of value.entries()) if (!depthOf(k, budget - 1) || !depthOf(v, budget - 1)) return false;
    return true;
  }
  for (const key in value) {
    if (Object.hasOwn(value, key) && !depthOf((value as Record<string, unknown>)[key], budget - 1)) return false;
  }
  return true;
}

/**
 * True when a JS value is at most `maxDepth` containers deep: for values that did not come through
 * a scan (msgpack-decoded frames, values built in code) before msgpackr pack or JSON.stringify. The
 * recursion stops at `maxDepth`, so it cannot overflow itself.
 */
export function depthWithin(value: unknown, maxDepth: number): boolean {
  return depthOf(value, maxDepth);
}

type MsgpackScanResult = 'ok' | 'depth' | 'truncated' | 'invalid' | 'extension';

/** Items still to read per open container; shared scratch (one thread runs one scan at a time). */
const remaining = new Float64Array(MAX_JSON_DEPTH + 2);

const u16 = (bytes: Uint8Array, o: number) => (bytes[o] << 8) | bytes[o + 1];
const u32 = (bytes: Uint8Array, o: number) => bytes[o] * 0x1000000 + ((bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]);

/** Bytes a scalar's length field takes after its type byte 0xc0…0xdf (0: fixed size). */
function lengthFieldSize(b: number): number {
  switch (b) {
    case 0xc4:
    case 0xc7:
    case 0xd9:
      return 1;
    case 0xc5:
    case 0xc8:
    case 0xda:
      return 2;
    case 0xc6:
    case 0xc9:
    case 0xdb:
      return 4;
    default:
      return 0;
  }
}

/** The whole size of the scalar whose type byte 0xc0…0xdf is at `at` (its length field is in range); -1 for 0xc1. */
function scalarSize(bytes: Uint8Array, at: number, b: number): number {
  switch (b) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return 1;
    case 0xc4:
      return 2 + bytes[at + 1]; // bin 8
    case 0xc5:
      return 3 + u16(bytes, at + 1);
    case 0xc6:
      return 5 + u32(bytes, at + 1);
    case 0xc7:
      return 3 + bytes[at + 1]; // ext 8: length, type, data
    case 0xc8:
      return 4 + u16(bytes, at + 1);
    case 0xc9:
      return 6 + u32(bytes, at + 1);
    case 0xca:
      return 5;
    case 0xcb:
      return 9;
    case 0xcc:
    case 0xd0:
      return 2;
    case 0xcd:
    case 0xd1:
      return 3;
    case 0xce:
    case 0xd2:
      return 5;
    case 0xcf:
    case 0xd3:
      return 9;
    case 0xd4:
      return 3; // fixext 1: type, data
    case 0xd5:
      return 4;
    case 0xd6:
      return 6;
    case 0xd7:
      return 10;
    case 0xd8:
      return 18;
    case 0xd9:
      return 2 + bytes[at + 1]; // str 8
    case 0xda:
      return 3 + u16(bytes, at + 1);
    case 0xdb:
      return 5 + u32(bytes, at + 1);
    default:
      return -1; // 0xc1 is never used
  }
}

/**
 * The depth of the first msgpack value in `bytes`, without decoding it: one pass, no allocation.
 * `truncated`: the bytes end inside the value; `invalid`: the reserved type byte 0xc1;
 * `extension`: an extension type (0xc7-0xc9, 0xd4-0xd8), refused outright: msgpackr's built-in
 * ones (Set 0x73, Error 0x65, RegExp 0x78, bundled strings 0x62) read the value that follows as
 * their content, which would hide nesting from this scan, and no input needs one. A count larger
 * than the bytes left ends as `truncated` (every item takes at least one byte), so a forged count
 * costs nothing.
 */
export function msgpackDepthWithin(bytes: Uint8Array, maxDepth: number): MsgpackScanResult {
  const limit = Math.min(maxDepth, MAX_JSON_DEPTH);
  const n = bytes.length;
  let depth = 0;
  let at = 0;
  remaining[0] = 1;
  for (;;) {
    if (at > n) return 'truncated';
    while (remaining[depth] === 0) {
      if (depth === 0) return 'ok';
      depth--;
    }
    if (at >= n) return 'truncated';
    remaining[depth]--;
    const b = bytes[at];
    let items: number;
    if (b <= 0x7f || b >= 0xe0) {
      // positive and negative fixint
      at += 1;
      continue;
    } else if (b <= 0x8f) {
      // fixmap
      items = (b & 0x0f) * 2;
      at += 1;
    } else if (b <= 0x9f) {
      // fixarray
      items = b & 0x0f;
      at += 1;
    } else if (b <= 0xbf) {
      // fixstr
      at += 1 + (b & 0x1f);
      continue;
    } else if (b === 0xdc || b === 0xde) {
      // array 16, map 16
      if (at + 2 >= n) return 'truncated';
      items = u16(bytes, at + 1) * (b === 0xde ? 2 : 1);
      at += 3;
    } else if (b === 0xdd || b === 0xdf) {
      // array 32, map 32
      if (at + 4 >= n) return 'truncated';
      items = u32(bytes, at + 1) * (b === 0xdf ? 2 : 1);
      at += 5;
    } else if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) {
      return 'extension';
    } else {
      if (at + lengthFieldSize(b) >= n) return 'truncated';
      const size = scalarSize(bytes, at, b);
      if (size < 0) return 'invalid';
      at += size;
      continue;
    }
    if (depth + 1 > limit) return 'depth';
    if (items > 0) remaining[++depth] = items;
  }
}
