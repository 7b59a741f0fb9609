/**
 * Frames a json(.reliable).webpubsub.azure.v1 client sends (docs/compat/azure-webpubsub.md §4.1, §5),
 * checked. A frame that does not match the format is refused with GW_ERR_AZURE_REQUEST_INVALID
 * (the route declines the client: `disconnected`, then 1008). Its nesting is checked before it is
 * parsed (protocol/bounded-json.ts), and no message quotes the frame (bad frames are logged).
 */
import { GatewayError } from '../../errors/gateway-error.js';
import { isGroupName } from './commands.js';
import type { DataType } from './frames.js';
import { scanJsonBytes } from '../../protocol/bounded-json.js';
import { MAX_FRAME_DEPTH } from '../../protocol/codec.js';

export type ClientRequest =
  | { readonly type: 'joinGroup' | 'leaveGroup'; readonly group: string; readonly ackId?: number }
  | {
      readonly type: 'sendToGroup';
      readonly group: string;
      readonly ackId?: number;
      readonly noEcho: boolean;
      readonly dataType: DataType;
      readonly data: string;
    }
  | { readonly type: 'event'; readonly event: string; readonly ackId?: number; readonly dataType: DataType; readonly data: string }
  | { readonly type: 'sequenceAck'; readonly sequenceId: number }
  | { readonly type: 'ping' }
  | { readonly type: 'invoke'; readonly invocationId: string }
  | { readonly type: 'cancelInvocation' };

/** Event names become MQTT topic levels (`<prefix>/<hub>/events/<event>`). */
const EVENT_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function invalid(why: string): never {
  throw new GatewayError('GW_ERR_AZURE_REQUEST_INVALID', why);
}

function ackIdOf(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 0) invalid('"ackId" must be a whole number');
  return value as number;
}

/** The payload as the bus carries it: JSON text, text, or base64 (binary; protobuf is carried as binary). */
function payloadOf(dataType: unknown, data: unknown): { dataType: DataType; data: string } {
  switch (dataType ?? 'json') {
    case 'json':
      if (data === undefined) invalid('"data" is required');
      return { dataType: 'json', data: JSON.stringify(data) };
    case 'text':
      if (typeof data !== 'string') invalid('"data" must be a string when "dataType" is text');
      return { dataType: 'text', data };
    case 'binary':
    case 'protobuf':
      if (typeof data !== 'string' || !BASE64.test(data) || data.length % 4 !== 0) invalid('"data" must be base64 when "dataType" is binary');
      return { dataType: 'binary', data };
    default:
      return invalid('"dataType" must be json, text or binary');
  }
}

/** A client frame's bytes (UTF-8 JSON), checked. */
export function parseClientRequest(frame: Uint8Array): ClientRequest {
  if (scanJsonBytes(frame, MAX_FRAME_DEPTH) === 'depth') invalid(`the frame nests deeper than ${MAX_FRAME_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('utf8'));
  } catch {
    invalid('the frame is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid('a frame must be a JSON object with a "type"');
  const f = value as Record<string, unknown>;
  switch (f.type) {
    case 'joinGroup':
    case 'leaveGroup':
      if (!isGroupName(f.group)) invalid('"group" must be a group name of 1-1024 characters');
      return { type: f.type, group: f.group, ackId: ackIdOf(f.ackId) };
    case 'sendToGroup':
      if (!isGroupName(f.group)) invalid('"group" must be a group name of 1-1024 characters');
      return { type: 'sendToGroup', group: f.group, ackId: ackIdOf(f.ackId), noEcho: f.noEcho === true, ...payloadOf(f.dataType, f.data) };
    case 'event':
      if (typeof f.event !== 'string' || !EVENT_NAME.test(f.event)) invalid('"event" must be a name of 1-128 characters (letters, digits, _ . : -)');
      return { type: 'event', event: f.event, ackId: ackIdOf(f.ackId), ...payloadOf(f.dataType, f.data) };
    case 'sequenceAck':
      if (!Number.isSafeInteger(f.sequenceId) || (f.sequenceId as number) < 0) invalid('"sequenceId" must be a whole number');
      return { type: 'sequenceAck', sequenceId: f.sequenceId as number };
    case 'ping':
      return { type: 'ping' };
    case 'invoke':
      if (typeof f.invocationId !== 'string') invalid('"invocationId" must be a string');
      return { type: 'invoke', invocationId: f.invocationId };
    case 'cancelInvocation':
      return { type: 'cancelInvocation' };
    default:
      return invalid(typeof f.type === 'string' ? `unknown "type" (${f.type.length} characters)` : '"type" must be a string');
  }
}
