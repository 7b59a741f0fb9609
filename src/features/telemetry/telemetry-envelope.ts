/**
 * The telemetry envelope of docs/compat/gps-stream.md, "Envelopes":
 *   {"event":"message","data":{"timestamp":"<ISO-8601>","data":{...device payload...}}}
 * built once per message and wire format. The JSON form splices the device's own payload bytes
 * (already validated as a JSON object) into the envelope, so there is no parse-stringify round trip.
 */
import { Packr } from 'msgpackr';

const JSON_HEAD = Buffer.from('{"event":"message","data":{"timestamp":"');
const JSON_MID = Buffer.from('","data":');
const JSON_TAIL = Buffer.from('}}');

/** Writes the JSON envelope into `out` at `offset`; returns the new offset. `out` must have room. */
export function writeJsonEnvelope(out: Buffer, offset: number, timestamp: string, payload: Uint8Array): number {
  let o = offset;
  o += JSON_HEAD.copy(out, o);
  o += out.write(timestamp, o, 'latin1');
  o += JSON_MID.copy(out, o);
  out.set(payload, o);
  o += payload.length;
  o += JSON_TAIL.copy(out, o);
  return o;
}

export function jsonEnvelopeLength(timestamp: string, payload: Uint8Array): number {
  return JSON_HEAD.length + timestamp.length + JSON_MID.length + payload.length + JSON_TAIL.length;
}

const packr = new Packr({ useRecords: false });

/**
 * The msgpack envelope. The returned bytes are a view into msgpackr's reusable buffer: copy them
 * before the next call.
 */
export function packMsgpackEnvelope(timestamp: string, payload: object): Uint8Array {
  return packr.pack({ event: 'message', data: { timestamp, data: payload } });
}

/** Control events every stream client can get (docs/compat/gps-stream.md plus the documented additions). */
export const KEEPALIVE_EVENT = { event: 'ping', data: { type: 'keep-alive' } } as const;

export function errorEvent(message: string, code: string): object {
  return { event: 'error', data: { message, code } };
}
