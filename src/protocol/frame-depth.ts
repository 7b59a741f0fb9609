/**
 * Client frames are checked for nesting BEFORE they are decoded: msgpackr's unpack recurses once
 * per level (a 200 KB frame of nested arrays overflows the stack), and while V8's JSON.parse does
 * not, what is done with the value afterwards does (JSON.stringify of an Azure `data`, msgpackr's
 * pack on the way to a client). Both checks are one pass over the bytes, allocation-free but for a
 * small stack of counts, and never recurse. They run on client frames only (a few per connection
 * per second at most, GATEWAY_FRAME_RATE), never on telemetry.
 *
 * No client frame of any route needs more than a few levels; MAX_FRAME_DEPTH leaves room for the
 * JSON `data` an Azure Web PubSub client sends to a group.
 */

/** Deepest nesting of arrays and objects (maps) a client frame may have; the top-level value is depth 1. */
export const MAX_FRAME_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** True when JSON text (UTF-8 bytes) nests arrays/objects deeper than `max`; brackets inside strings do not count. */
export function jsonTooDeep(bytes: Uint8Array, max: number = MAX_FRAME_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true;
    } else if ((b === 0x5d || b === 0x7d) && depth > 0) depth--;
  }
  return false;
}

/** What a msgpack scan found: nothing wrong, nesting over the limit, or an extension type. */
export type MsgpackProblem = null | 'too-deep' | 'extension';

/**
 * Walks msgpack bytes (every value in them) without building anything: null when they nest at most
 * `max` deep and use no extension types. Extensions are refused outright: msgpackr's built-in ones
 * (Error 0x65, Set 0x73, RegExp 0x78, bundled strings 0x62) read the value that follows as their
 * content, which would hide nesting from this scan, and no client frame needs one. Truncated or
 * invalid bytes end the walk with null: unpack then refuses them.
 */
export function msgpackProblem(bytes: Uint8Array, max: number = MAX_FRAME_DEPTH): MsgpackProblem {
  const remaining = new Float64Array(max + 1); // remaining[d]: values still to come in the container at depth d
  let depth = 0;
  let pos = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => (at + 2 <= bytes.length ? view.getUint16(at) : Infinity);
  const u32 = (at: number) => (at + 4 <= bytes.length ? view.getUint32(at) : Infinity);
  while (pos < bytes.length) {
    const b = bytes[pos++];
    let items = -1; // a container's values (a map's are keys + values), else -1
    let skip = 0;
    if (b <= 0x7f || b >= 0xe0) skip = 0; // fixints
    else if (b <= 0x8f) items = (b & 0x0f) * 2;
    else if (b <= 0x9f) items = b & 0x0f;
    else if (b <= 0xbf) skip = b & 0x1f;
    else {
      switch (b) {
        case 0xc0: case 0xc1: case 0xc2: case 0xc3: break;
        case 0xc4: case 0xd9: skip = 1 + (pos < bytes.length ? bytes[pos] : Infinity); break;
        case 0xc5: case 0xda: skip = 2 + u16(pos); break;
        case 0xc6: case 0xdb: skip = 4 + u32(pos); break;
        case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xdc: items = u16(pos); skip = 2; break;
        case 0xdd: items = u32(pos); skip = 4; break;
        case 0xde: items = u16(pos) * 2; skip = 2; break;
        case 0xdf: items = u32(pos) * 2; skip = 4; break;
        default: return 'extension'; // 0xc7-0xc9 ext 8/16/32, 0xd4-0xd8 fixext
      }
    }
    if (depth > 0) remaining[depth]--;
    pos += skip;
    if (items > 0) {
      if (++depth > max) return 'too-deep';
      remaining[depth] = items;
      continue;
    }
    while (depth > 0 && remaining[depth] <= 0) depth--;
  }
  return null;
}
