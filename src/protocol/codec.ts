/**
 * Wire formats. A codec turns a control or event object into the bytes of one WebSocket frame,
 * and a client frame back into a value. Telemetry frames do not go through `encode` per socket:
 * they are built once per message by the ingest thread (telemetry-envelope.ts).
 */
import { Packr, Unpackr } from 'msgpackr';
import { msgpackDepthWithin, scanJsonBytes } from './bounded-json.js';

/**
 * Deepest nesting of arrays and objects (maps) a client frame may have (bounded-json.ts counts
 * containers: `{}` is 1). No client frame of any route needs more than a few levels; this leaves
 * room for the JSON `data` an Azure Web PubSub client sends to a group. Checked on the bytes
 * before decoding: msgpackr's unpack recurses once per level, and what is done with a value
 * afterwards (JSON.stringify, pack) recurses too.
 */
export const MAX_FRAME_DEPTH = 64;

export type WireFormat = 'json' | 'msgpack';
export const WIRE_FORMATS: readonly WireFormat[] = ['json', 'msgpack'];

/** A wire format as the index used in typed cross-thread frames and per-format arrays: 0 json, 1 msgpack. */
export type FormatIndex = 0 | 1;

/** Each wire format's index (WIRE_FORMATS[FORMAT_INDEX.msgpack] === 'msgpack'). */
export const FORMAT_INDEX = { json: 0, msgpack: 1 } as const satisfies Readonly<Record<WireFormat, FormatIndex>>;

export interface Codec {
  readonly format: WireFormat;
  /** True when frames of this format are sent as binary WebSocket messages. */
  readonly binary: boolean;
  encode(value: unknown): Uint8Array | string;
  /** Decodes a client frame (depth-checked); throws an Error whose message never quotes the frame. */
  decode(frame: ArrayBuffer, isBinary: boolean): unknown;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/*
 * Client frames are decoded here, and what is thrown says what was wrong with the frame in words of
 * its own: never the parser's message, which quotes the frame (V8: `Unexpected token 'e',
 * "eyJhbGciOi"... is not valid JSON`), and bad-frame errors are logged (edge/bad-frames.ts).
 */

/** JSON text of a client frame: depth checked first (bounded-json.ts), then parsed. */
function decodeJsonFrame(bytes: Uint8Array): unknown {
  if (scanJsonBytes(bytes, MAX_FRAME_DEPTH) === 'depth') throw new Error(`nested deeper than ${MAX_FRAME_DEPTH} levels`);
  let text: string;
  try {
    text = textDecoder.decode(bytes);
  } catch {
    throw new Error('not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('not valid JSON');
  }
}

export const jsonCodec: Codec = {
  format: 'json',
  binary: false,
  encode: (value) => JSON.stringify(value),
  decode(frame, isBinary) {
    if (isBinary) throw new Error('binary frames are not accepted on a json connection');
    return decodeJsonFrame(new Uint8Array(frame));
  },
};

// useRecords:false keeps the output plain msgpack maps that any msgpack library reads.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

export const msgpackCodec: Codec = {
  format: 'msgpack',
  binary: true,
  encode: (value) => packr.pack(value),
  decode(frame, isBinary) {
    const bytes = new Uint8Array(frame);
    // A msgpack connection also accepts JSON text frames, so hand-typed actions work in tools.
    if (!isBinary) return decodeJsonFrame(bytes);
    const scan = msgpackDepthWithin(bytes, MAX_FRAME_DEPTH);
    if (scan === 'depth') throw new Error(`nested deeper than ${MAX_FRAME_DEPTH} levels`);
    if (scan === 'extension') throw new Error('msgpack extension types are not accepted');
    // 'truncated' and 'invalid' are left to unpack, which refuses them.
    try {
      return unpackr.unpack(bytes) as unknown;
    } catch {
      throw new Error('not valid msgpack');
    }
  },
};

export const CODECS: Readonly<Record<WireFormat, Codec>> = { json: jsonCodec, msgpack: msgpackCodec };
