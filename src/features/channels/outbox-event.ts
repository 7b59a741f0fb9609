/**
 * A logged event on its way through the bus, and the checks that keep an event from poisoning it.
 * The store writes an event only if it passes what ingest checks when it comes back
 * (checkOutboxEvent: size and nesting depth), so nothing the gateway commits can be refused or
 * break an encoder later. The relay puts the event's position in the log in front of its fields;
 * the position is read back without parsing the rest (readPosition), so even a message that
 * cannot be parsed is known by its offset and repaired from the log:
 *
 *   {"position":{"offset":<offset in the channel's log>,"epoch":"<the store's epoch>","at":<ms logged>},<the event's fields>
 */
import type { ErrorCode } from '../../errors/error-codes.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { scanJsonText } from '../../protocol/bounded-json.js';

/** Largest event the log or a bus message may carry (the position not counted). */
export const MAX_EVENT_BYTES = 1024 * 1024;
/** Room for the position: a 15-digit offset, a 32-character epoch and a 15-digit time, with their punctuation. */
export const STAMP_BYTES = 96;

/** Where a bus message's event sits: the store's epoch and its offset in the channel's log. */
export interface BusPosition {
  readonly offset: number;
  readonly epoch: string;
  /** When the event was logged (ms since the epoch). */
  readonly at: number;
}

/** What goes in front of a logged event (its `{` dropped: no parse/stringify round trip). */
export function positionPrefix(offset: number, epoch: string, at: number): string {
  return `{"position":{"offset":${offset},"epoch":"${epoch}","at":${at}},`;
}

const POSITION = /^\{"position":\{"offset":([0-9]{1,15}),"epoch":"([0-9A-Za-z_-]{1,32})","at":([0-9]{1,15})\},/;

/** The position at the start of a bus message exactly as a relay writes it, or null (another publisher, or none). */
export function readPosition(payload: Uint8Array): BusPosition | null {
  const head = Buffer.from(payload.buffer, payload.byteOffset, Math.min(payload.byteLength, STAMP_BYTES)).toString('latin1');
  const match = POSITION.exec(head);
  return match === null ? null : { offset: Number(match[1]), epoch: match[2], at: Number(match[3]) };
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
