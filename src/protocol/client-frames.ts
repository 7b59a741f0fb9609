/**
 * Client frames of the `{"type": …}` endpoints (/ws/connect, /api/v1/ws, /ws/{channel}), checked
 * against a schema per endpoint: the frame is an object, its type is one the endpoint knows, and
 * each field the type needs is there with the right type. Anything else is a GatewayError the
 * route answers with an `error` frame (the connection stays until GATEWAY_MAX_BAD_FRAMES). No
 * message quotes the frame: bad-frame errors are logged, a frame's content never is.
 */
import { GatewayError } from '../errors/gateway-error.js';
import type { Codec } from './codec.js';

type FieldKind = 'string' | 'number';

/** type → required field → kind. */
type FrameSchema = Readonly<Record<string, Readonly<Record<string, FieldKind>>>>;

/** Longest string field accepted in a frame (a token is the longest thing a client sends). */
const MAX_STRING = 16 * 1024;

export interface ClientFrame {
  readonly type: string;
  readonly [field: string]: unknown;
}

export function parseClientFrame(value: unknown, schema: FrameSchema): ClientFrame {
  const types = Object.keys(schema).join(', ');
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new GatewayError('GW_ERR_FRAME_INVALID', `A frame must be an object such as {"type":"ping"} (types: ${types})`);
  }
  const frame = value as Record<string, unknown>;
  if (typeof frame.type !== 'string') throw new GatewayError('GW_ERR_FRAME_INVALID', `A frame needs a string "type" (one of ${types})`);
  const fields = Object.hasOwn(schema, frame.type) ? schema[frame.type] : undefined;
  if (fields === undefined) {
    // Not quoted: frame errors are logged, and a frame's content never is (edge/bad-frames.ts).
    throw new GatewayError('GW_ERR_UNKNOWN_ACTION', `Unknown frame type (${frame.type.length} characters); use ${types}`);
  }
  for (const [name, kind] of Object.entries(fields)) {
    const v = frame[name];
    if (typeof v !== kind || (kind === 'string' && ((v as string).length === 0 || (v as string).length > MAX_STRING))) {
      throw new GatewayError('GW_ERR_FRAME_INVALID', `"${frame.type}" needs "${name}" as a ${kind === 'string' ? 'non-empty string' : 'number'}`);
    }
  }
  return frame as ClientFrame;
}

/** The frames a client may send on /ws/connect and the channel endpoints. */
export const TYPE_FRAMES: FrameSchema = { ping: {}, pong: {}, refresh_token: { token: 'string' } };

/** Decodes a frame in the connection's format and checks it against the schema (GatewayError when it fails). */
export function decodeClientFrame(codec: Codec, message: ArrayBuffer, isBinary: boolean, schema: FrameSchema): ClientFrame {
  let value: unknown;
  try {
    value = codec.decode(message, isBinary);
  } catch (err) {
    throw new GatewayError('GW_ERR_FRAME_INVALID', `Frame could not be decoded: ${(err as Error).message}`);
  }
  return parseClientFrame(value, schema);
}
