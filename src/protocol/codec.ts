/**
 * Wire formats. A codec turns a control or event object into the bytes of one WebSocket frame,
 * and a client frame back into a value. Telemetry frames do not go through `encode` per socket:
 * they are built once per message by the ingest thread (telemetry-envelope.ts).
 */
import { Packr, Unpackr } from 'msgpackr';

export type WireFormat = 'json' | 'msgpack';
export const WIRE_FORMATS: readonly WireFormat[] = ['json', 'msgpack'];

/** Index used in typed cross-thread frames and per-format arrays. */
export const FORMAT_INDEX: Readonly<Record<WireFormat, 0 | 1>> = { json: 0, msgpack: 1 };

export interface Codec {
  readonly format: WireFormat;
  /** True when frames of this format are sent as binary WebSocket messages. */
  readonly binary: boolean;
  encode(value: unknown): Uint8Array | string;
  /** Decodes a client frame; throws on bytes that are not this format. */
  decode(frame: ArrayBuffer, isBinary: boolean): unknown;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

export const jsonCodec: Codec = {
  format: 'json',
  binary: false,
  encode: (value) => JSON.stringify(value),
  decode(frame, isBinary) {
    if (isBinary) throw new Error('binary frames are not accepted on a json connection');
    return JSON.parse(textDecoder.decode(frame));
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
    // A msgpack connection also accepts JSON text frames, so hand-typed actions work in tools.
    if (!isBinary) return JSON.parse(textDecoder.decode(frame));
    return unpackr.unpack(new Uint8Array(frame));
  },
};

export const CODECS: Readonly<Record<WireFormat, Codec>> = { json: jsonCodec, msgpack: msgpackCodec };
