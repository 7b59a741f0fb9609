/**
 * What crosses the bus for Azure Web PubSub (`<GATEWAY_AZURE_TOPIC>/<hub>`): every send, membership
 * change, close and permission change, whether it came from the REST data plane or a client, so
 * that every edge thread of every node applies it to the connections it holds. One command per
 * message, parsed and checked again by ingest (anything may publish on the bus):
 *
 *   <command JSON>                 membership, close, permission
 *   <command JSON>\n<payload>      a send: its payload's bytes as they came (JSON text, text or
 *                                  raw bytes), never escaped into the JSON nor base64-encoded
 */
import { isUtf8 } from 'node:buffer';
import { GatewayError } from '../../errors/gateway-error.js';
import { BoundedJsonError, parseJsonBytes, scanJsonBytes } from '../../protocol/bounded-json.js';
import { DATA_TYPES, type DataType } from './frames.js';
import type { Target } from './membership.js';
import { isPermission, type AzurePermission } from './permissions.js';

export type AzureCommand =
  | {
      readonly op: 'send';
      readonly to: Target;
      /** What the payload after the command line is. */
      readonly dataType: DataType;
      readonly excluded?: readonly string[];
      readonly filter?: string;
      /** The client connection that sent it (group messages from clients). */
      readonly from?: { readonly connectionId: string; readonly userId: string | null };
      readonly noEcho?: boolean;
    }
  /** A connection (or every connection of a user) joins or leaves a group. */
  | { readonly op: 'join' | 'leave'; readonly group: string; readonly who: Target }
  /** A connection or a user leaves every group. */
  | { readonly op: 'leaveAll'; readonly who: Target }
  /** The connections a filter selects join or leave these groups. */
  | { readonly op: 'joinFiltered' | 'leaveFiltered'; readonly groups: readonly string[]; readonly filter: string }
  | { readonly op: 'close'; readonly who: Target; readonly excluded?: readonly string[]; readonly reason?: string }
  | { readonly op: 'grant' | 'revoke'; readonly connectionId: string; readonly permission: AzurePermission; readonly targetName?: string };

/** Hub names as the service takes them ([SPEC-routes]). */
export const HUB_NAME = /^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$/;
const MAX_GROUP_LENGTH = 1024;
/** Azure's client message limit, and the largest REST body the data plane takes. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Is `hub` a valid hub name that this gateway serves (GATEWAY_AZURE_HUBS; null: any)? */
export function servesHub(hubs: readonly string[] | null, hub: string): boolean {
  return HUB_NAME.test(hub) && (hubs === null || hubs.includes(hub));
}

export function isGroupName(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= MAX_GROUP_LENGTH && value.trim() !== '';
}

function invalid(why: string): never {
  throw new GatewayError('GW_ERR_AZURE_REQUEST_INVALID', why);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const idString = (v: unknown, field: string): string =>
  typeof v === 'string' && v.length > 0 && v.length <= 1024 ? v : invalid(`"${field}" must be a non-empty string`);
const stringList = (v: unknown, field: string): string[] =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : invalid(`"${field}" must be a list of strings`);

function target(value: unknown, field: string): Target {
  if (!isObject(value)) invalid(`"${field}" must be {"kind","name"}`);
  switch (value.kind) {
    case 'all':
      return { kind: 'all' };
    case 'group':
      if (!isGroupName(value.name)) invalid(`"${field}.name" must be a group name of 1-${MAX_GROUP_LENGTH} characters`);
      return { kind: 'group', name: value.name };
    case 'user':
    case 'connection':
      return { kind: value.kind, name: idString(value.name, `${field}.name`) };
    default:
      return invalid(`"${field}.kind" must be all, group, user or connection`);
  }
}

/** Checks a command from the bus; throws GW_ERR_AZURE_REQUEST_INVALID naming what is wrong. */
export function parseAzureCommand(value: unknown): AzureCommand {
  if (!isObject(value)) invalid('a command must be a JSON object with an "op"');
  const excluded = value.excluded === undefined ? undefined : stringList(value.excluded, 'excluded');
  const filter = value.filter === undefined ? undefined : typeof value.filter === 'string' ? value.filter : invalid('"filter" must be a string');
  switch (value.op) {
    case 'send': {
      if (!DATA_TYPES.includes(value.dataType as DataType)) invalid(`"dataType" must be one of ${DATA_TYPES.join(', ')}`);
      let from: { connectionId: string; userId: string | null } | undefined;
      if (value.from !== undefined) {
        if (!isObject(value.from)) invalid('"from" must be {"connectionId","userId"}');
        const userId = value.from.userId ?? null;
        from = { connectionId: idString(value.from.connectionId, 'from.connectionId'), userId: userId === null ? null : idString(userId, 'from.userId') };
      }
      return { op: 'send', to: target(value.to, 'to'), dataType: value.dataType as DataType, excluded, filter, from, noEcho: value.noEcho === true };
    }
    case 'join':
    case 'leave':
      if (!isGroupName(value.group)) invalid('"group" must be a group name');
      return { op: value.op, group: value.group, who: target(value.who, 'who') };
    case 'leaveAll':
      return { op: 'leaveAll', who: target(value.who, 'who') };
    case 'joinFiltered':
    case 'leaveFiltered': {
      const groups = stringList(value.groups, 'groups');
      if (!groups.every(isGroupName)) invalid('"groups" must be group names');
      return { op: value.op, groups, filter: filter ?? invalid('"filter" is required') };
    }
    case 'close':
      return { op: 'close', who: target(value.who, 'who'), excluded, reason: typeof value.reason === 'string' ? value.reason.slice(0, 200) : undefined };
    case 'grant':
    case 'revoke': {
      const permission =
        typeof value.permission === 'string' && isPermission(value.permission)
          ? value.permission
          : invalid('"permission" must be joinLeaveGroup or sendToGroup');
      const targetName = value.targetName === undefined ? undefined : idString(value.targetName, 'targetName');
      return { op: value.op, connectionId: idString(value.connectionId, 'connectionId'), permission, targetName };
    }
    default:
      return invalid('"op" must be send, join, leave, leaveAll, joinFiltered, leaveFiltered, close, grant or revoke');
  }
}

const encoder = new TextEncoder();

/**
 * Where a command comes from, for the handover of a session across nodes (edge/azure-session-handover.ts):
 * its publisher (one edge thread of one node, from its start) and that publisher's count of the
 * commands it published on the hub. MQTT keeps one publisher's order on one topic, so every node sees
 * one publisher's commands of a hub in the order of `s`. Commands from elsewhere carry none.
 */
export interface CommandStamp {
  readonly p: string;
  readonly s: number;
}

/** `bytes` (an encoded command) with its stamp as the first field of the command line. */
export function stampAzureMessage(bytes: Uint8Array | string, stamp: CommandStamp): Uint8Array {
  const body = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const head = Buffer.from(`{"stamp":${JSON.stringify(stamp)},`);
  if (body[0] !== 0x7b || body[1] === 0x7d) return body; // not a command object with fields
  const out = new Uint8Array(head.length + body.length - 1);
  out.set(head);
  out.set(body.subarray(1), head.length);
  return out;
}

function stampOf(value: unknown): CommandStamp | undefined {
  if (!isObject(value) || !isObject(value.stamp)) return undefined;
  const { p, s } = value.stamp;
  return typeof p === 'string' && p.length > 0 && p.length <= 64 && typeof s === 'number' && Number.isSafeInteger(s) && s > 0 ? { p, s } : undefined;
}

/** A bus message: the command's JSON line, then a send's payload. Exact size (it crosses threads). */
export function encodeAzureMessage(command: AzureCommand, payload?: Uint8Array | string): Uint8Array {
  const head = JSON.stringify(command);
  if (payload === undefined) return encoder.encode(head);
  const body = typeof payload === 'string' ? encoder.encode(payload) : payload;
  const out = new Uint8Array(Buffer.byteLength(head) + 1 + body.length);
  const at = encoder.encodeInto(head, out).written;
  out[at] = 0x0a;
  out.set(body, at + 1);
  return out;
}

/**
 * Splits and checks a bus message (throws GW_ERR_AZURE_REQUEST_INVALID); the payload is a view of
 * `bytes`. The command line is bounded like every bus input (protocol/bounded-json.ts).
 */
export function decodeAzureMessage(bytes: Buffer, maxDepth: number): { command: AzureCommand; payload: Buffer; stamp?: CommandStamp } {
  const nl = bytes.indexOf(0x0a);
  let value: unknown;
  try {
    value = parseJsonBytes(nl < 0 ? bytes : bytes.subarray(0, nl), { maxDepth });
  } catch (err) {
    invalid(`the command line ${err instanceof BoundedJsonError ? err.detail : 'is not JSON'}`);
  }
  const command = parseAzureCommand(value);
  if (command.op === 'send' && nl < 0) invalid('a send needs its payload after the command line');
  return { command, payload: nl < 0 ? bytes.subarray(bytes.length) : bytes.subarray(nl + 1), stamp: stampOf(value) };
}

/**
 * A send's payload is what its dataType says: UTF-8 for text, one JSON value nested at most
 * `maxDepth` deep for json (its bytes are relayed as they are, so they are checked, never
 * re-encoded). Throws otherwise.
 */
export function checkPayload(dataType: DataType, payload: Buffer, maxDepth: number): void {
  if (dataType === 'binary') return;
  if (dataType === 'text') {
    if (!isUtf8(payload)) invalid('the text payload is not UTF-8');
    return;
  }
  const scan = scanJsonBytes(payload, maxDepth);
  if (scan === 'utf8') invalid('the json payload is not UTF-8');
  if (scan === 'depth') invalid(`the json payload is nested deeper than ${maxDepth} levels`);
  try {
    JSON.parse(payload.toString('utf8'));
  } catch {
    invalid('the json payload is not valid JSON');
  }
}
