/**
 * An outbox row's event on its way through the bus, and the checks that keep a row from poisoning
 * it. The store pool writes a row only if it passes what ingest checks when the row comes back
 * (checkOutboxEvent: size and nesting depth), so nothing the gateway commits can be refused or
 * break an encoder later. The relay stamps each row with its origin; the stamp is read back
 * without parsing the rest (readStamp), so even a row that cannot be parsed (written by an older
 * version, or by hand) is known by its id and can be dead-lettered instead of retried forever.
 *
 *   {"origin":{"node":"<hex id>","seq":<outbox id>,"prev":<id published before>},<the row's fields>
 */
import type { ErrorCode } from '../../errors/error-codes.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { scanJsonText } from '../../protocol/bounded-json.js';

/** Largest event an outbox row or a bus message may carry (the origin stamp not counted). */
export const MAX_EVENT_BYTES = 1024 * 1024;
/** Room for the stamp: 32 hex digits of node and two 15-digit ids, with their punctuation. */
export const STAMP_BYTES = 96;

export interface Stamp {
  readonly node: string;
  readonly seq: number;
  readonly prev: number;
}

/** The stamp to put in front of a row's event (the row's `{` is dropped: no parse/stringify round trip). */
export function stampPrefix(node: string, seq: number, prev: number): string {
  return `{"origin":{"node":"${node}","seq":${seq},"prev":${prev}},`;
}

const STAMP = /^\{"origin":\{"node":"([0-9a-f]{1,32})","seq":([0-9]{1,15}),"prev":([0-9]{1,15})\}/;

/** The stamp at the start of a bus message exactly as a relay writes it, or null (another publisher, or none). */
export function readStamp(payload: Uint8Array): Stamp | null {
  const head = Buffer.from(payload.buffer, payload.byteOffset, Math.min(payload.byteLength, STAMP_BYTES)).toString('latin1');
  const match = STAMP.exec(head);
  return match === null ? null : { node: match[1], seq: Number(match[2]), prev: Number(match[3]) };
}

/**
 * Refuses (GatewayError, nothing written) an event JSON that ingest would refuse when it comes
 * back from the bus: over MAX_EVENT_BYTES (GW_ERR_BODY_TOO_LARGE), or nested deeper than
 * GATEWAY_MAX_JSON_DEPTH (`depthCode`). The pool calls it inside the write's transaction.
 */
export function checkOutboxEvent(json: string, maxDepth: number, depthCode: ErrorCode, what: string): void {
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_EVENT_BYTES)
    throw new GatewayError('GW_ERR_BODY_TOO_LARGE', `${what} would be ${bytes} bytes, over the ${MAX_EVENT_BYTES}-byte limit of an event`);
  if (scanJsonText(json, maxDepth) !== 'ok')
    throw new GatewayError(depthCode, `${what} would be nested deeper than ${maxDepth} levels (GATEWAY_MAX_JSON_DEPTH)`);
}
