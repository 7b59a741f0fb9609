/**
 * Pulls the publisher's `TS` out of a telemetry frame without building the whole object.
 *
 * JSON frames: `{"event":"message","data":{"timestamp":"…","data":{…,"TS":1732…}}}`; the device
 * payload is the only place a `TS` key appears, so a byte search finds it. Keep-alives and
 * `subscribed` events carry no `TS` and come back as NaN, which the caller counts as control frames.
 * msgpack frames: the same object; decoded with msgpackr (fast enough, and positions in a binary
 * map are not searchable the same way).
 */
import { unpack } from 'msgpackr';

const TS_KEY = Buffer.from('"TS"', 'latin1');
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;

const isWhitespace = (c: number): boolean => c === SPACE || c === TAB || c === LF || c === CR;
/** Bytes that may appear in a JSON number: 0-9 + - . e E */
const isNumberByte = (c: number): boolean => (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;

/** Value of the first `"TS": <number>` member in a JSON frame, or NaN if there is none. */
export function extractJsonTs(frame: Uint8Array): number {
  const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  let from = 0;
  for (;;) {
    const at = buf.indexOf(TS_KEY, from);
    if (at < 0) return Number.NaN;
    let i = at + TS_KEY.length;
    while (i < buf.length && isWhitespace(buf[i])) i++;
    // `"TS"` followed by anything but ':' is a string value, not a key; keep looking.
    if (buf[i] !== COLON) {
      from = at + 1;
      continue;
    }
    i++;
    while (i < buf.length && isWhitespace(buf[i])) i++;
    const start = i;
    while (i < buf.length && isNumberByte(buf[i])) i++;
    if (i === start) return Number.NaN;
    return Number(buf.toString('latin1', start, i));
  }
}

interface TelemetryEnvelope {
  event?: unknown;
  data?: { data?: { TS?: unknown } };
}

/** `data.data.TS` of a msgpack `message` event, or NaN for any other frame. */
export function extractMsgpackTs(frame: Uint8Array): number {
  let decoded: unknown;
  try {
    decoded = unpack(frame);
  } catch {
    // A frame we cannot decode is reported as a non-telemetry frame, never a latency sample.
    return Number.NaN;
  }
  const env = decoded as TelemetryEnvelope | null;
  if (env === null || typeof env !== 'object' || env.event !== 'message') return Number.NaN;
  const ts = env.data?.data?.TS;
  return typeof ts === 'number' ? ts : Number.NaN;
}
