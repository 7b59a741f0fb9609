/**
 * What the gateway sends to Azure Web PubSub clients (docs/compat/azure-webpubsub.md §4.2, §4.4, §6.1).
 * A data message is rendered once, by ingest, in the two forms receivers take:
 *
 *   pubsub  `{"type":"message","from":"group","group":…,"dataType":…,"data":…,"fromUserId"?}` (UTF-8)
 *           for json.webpubsub.azure.v1; json.reliable.webpubsub.azure.v1 gets the same bytes with
 *           `"sequenceId":n,` spliced in after the `{` (sequenceInto), per connection, into a scratch
 *           buffer: no encoding and no allocation per socket
 *   raw     the payload alone, for simple clients: a text frame for json and text, binary for binary
 *
 * JSON data is carried as the bytes it came as (never parsed and re-encoded on the way). Both forms
 * are exact-size arrays of their own: they cross to the edge threads.
 */
export const DATA_TYPES = ['json', 'text', 'binary'] as const;
export type DataType = (typeof DATA_TYPES)[number];

export interface RenderedMessage {
  readonly pubsub: Uint8Array;
  readonly raw: Uint8Array;
  /** Send `raw` as a binary frame (binary data), else as text. */
  readonly rawBinary: boolean;
}

const encoder = new TextEncoder();

/** `payload`: JSON text (json, already checked), UTF-8 text (text) or bytes (binary). */
export function renderMessage(group: string | null, dataType: DataType, payload: Uint8Array, fromUserId: string | null): RenderedMessage {
  const from = group === null ? '"from":"server"' : `"from":"group","group":${JSON.stringify(group)}`;
  const head = `{"type":"message",${from},"dataType":"${dataType}","data":`;
  const tail = fromUserId === null ? '}' : `,"fromUserId":${JSON.stringify(fromUserId)}}`;
  const raw = Uint8Array.from(payload);
  if (dataType !== 'json') {
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const value = dataType === 'text' ? JSON.stringify(buf.toString('utf8')) : `"${buf.toString('base64')}"`;
    return { pubsub: encoder.encode(head + value + tail), raw, rawBinary: dataType === 'binary' };
  }
  const headBytes = encoder.encode(head);
  const tailBytes = encoder.encode(tail);
  const pubsub = new Uint8Array(headBytes.length + payload.length + tailBytes.length);
  pubsub.set(headBytes, 0);
  pubsub.set(payload, headBytes.length);
  pubsub.set(tailBytes, headBytes.length + payload.length);
  return { pubsub, raw, rawBinary: false };
}

const SEQUENCE_PREFIX = Buffer.from('{"sequenceId":');

/** Writes `{"sequenceId":<seq>,` + pubsub without its `{` into `scratch` (grown when too small); returns the frame's view. */
export function sequenceInto(scratch: { buffer: Buffer }, sequenceId: number, pubsub: Uint8Array): Buffer {
  const need = SEQUENCE_PREFIX.length + 17 + pubsub.length;
  if (scratch.buffer.length < need) scratch.buffer = Buffer.allocUnsafe(Math.max(need, scratch.buffer.length * 2));
  const buf = scratch.buffer;
  let at = SEQUENCE_PREFIX.copy(buf, 0);
  at += buf.write(String(sequenceId), at, 'latin1');
  buf[at++] = 0x2c; // ,
  buf.set(pubsub.subarray(1), at);
  return buf.subarray(0, at + pubsub.length - 1);
}

export function connectedFrame(connectionId: string, userId: string | null, reconnectionToken: string | null): string {
  return JSON.stringify({
    type: 'system',
    event: 'connected',
    connectionId,
    ...(userId === null ? {} : { userId }),
    ...(reconnectionToken === null ? {} : { reconnectionToken }),
  });
}

export const disconnectedFrame = (message: string) => JSON.stringify({ type: 'system', event: 'disconnected', message });

/** Error names of the protocol's acks: Forbidden, InternalServerError, Duplicate, NotFound, Timeout (+ InvalidRequest for a bad payload). */
export type AckError = 'Forbidden' | 'InternalServerError' | 'Duplicate' | 'NotFound' | 'InvalidRequest';

export function ackFrame(ackId: number, error?: AckError, message?: string): string {
  if (error === undefined) return `{"type":"ack","ackId":${ackId},"success":true}`;
  return JSON.stringify({ type: 'ack', ackId, success: false, error: { name: error, message: message ?? error } });
}

export const PONG_FRAME = '{"type":"pong"}';
