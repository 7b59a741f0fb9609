/**
 * What the gateway sends to Azure Web PubSub clients (protocols/azure-webpubsub.md §4.2, §4.4, §6.1).
 * A data message is rendered once, by ingest, in the two forms receivers take:
 *
 *   pubsub  `{"type":"message","from":"group","group":…,"dataType":…,"data":…,"fromUserId"?}` (UTF-8)
 *           for json.webpubsub.azure.v1; json.reliable.webpubsub.azure.v1 gets the same bytes with
 *           `"sequenceId":n,` spliced in after the `{` (sequenceInto), per connection, into a scratch
 *           buffer: no encoding and no allocation per socket
 *   raw     the payload alone, for simple clients: text for json and text, bytes for binary
 *
 * JSON data is carried as the text it came as (never parsed and re-encoded on the way).
 */
export const DATA_TYPES = ['json', 'text', 'binary'] as const;
export type DataType = (typeof DATA_TYPES)[number];

export interface RenderedMessage {
  readonly pubsub: Uint8Array;
  readonly raw: string | Uint8Array;
}

/** `data` is JSON text (json), the text (text) or base64 (binary). */
export function renderMessage(group: string | null, dataType: DataType, data: string, fromUserId: string | null): RenderedMessage {
  const from = group === null ? '"from":"server"' : `"from":"group","group":${JSON.stringify(group)}`;
  const value = dataType === 'json' ? data : JSON.stringify(data);
  const sender = fromUserId === null ? '' : `,"fromUserId":${JSON.stringify(fromUserId)}`;
  const pubsub = Buffer.from(`{"type":"message",${from},"dataType":"${dataType}","data":${value}${sender}}`);
  return { pubsub: Uint8Array.from(pubsub), raw: dataType === 'binary' ? Uint8Array.from(Buffer.from(data, 'base64')) : data };
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
    type: 'system', event: 'connected', connectionId, ...(userId === null ? {} : { userId }),
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
