/**
 * What the upstream event handlers get and answer, on the wire (azure-upstream.ts decides when and
 * how often): an event as a CloudEvent over HTTP in binary mode, with the service's headers and
 * its signature, and the readings of the answers (the `connect` response, a user event's reply,
 * the connection state). As the service does ([DOC] reference-cloud-events):
 *
 *   `ce-specversion` 1.0, `ce-type` azure.webpubsub.sys.<connect|connected|disconnected> or
 *   azure.webpubsub.user.<event>, `ce-source` /hubs/<hub>/client/<id>, `ce-id`, `ce-time`, `ce-hub`,
 *   `ce-connectionId`, `ce-userId` (when known), `ce-eventName`, `ce-subprotocol` (when one),
 *   `ce-connectionState` (what the handler set), `ce-signature` `sha256=<hex HMAC-SHA256(access key,
 *   connection id)>` per key, `ce-awpsversion` 1.0 and `WebHook-Request-Origin`.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { GatewayError } from '../../../errors/gateway-error.js';
import { resolveUrl, type EventHandlerSetting } from '../event-handlers.js';
import type { DataType } from '../frames.js';

/** How much of a handler's error body goes into a log line or an error message. */
export const DETAIL_CHARS = 200;

export const CONTENT_TYPES: Record<DataType, string> = { json: 'application/json', text: 'text/plain', binary: 'application/octet-stream' };

/** The `connect` handler's answer, applied to the new connection. */
export interface ConnectAnswer {
  readonly userId?: string;
  readonly groups: readonly string[];
  readonly roles: readonly string[];
  readonly subprotocol?: string;
  readonly state: string | null;
}

/** What a request is signed and sent with. */
export interface WireOptions {
  readonly accessKeys: readonly string[];
  readonly origin: string;
  readonly timeoutMs: number;
}

/** One event, posted to the setting's URL for it; rejects on a network error or the timeout. */
export function postEvent(
  options: WireOptions,
  setting: EventHandlerSetting,
  hub: string,
  event: string,
  type: string,
  connectionId: string,
  userId: string | null,
  subprotocol: string,
  state: string | null,
  contentType: string,
  body: string | Uint8Array,
): Promise<Response> {
  const headers: Record<string, string> = {
    'Content-Type': contentType,
    'WebHook-Request-Origin': options.origin,
    'ce-specversion': '1.0',
    'ce-type': type,
    'ce-source': `/hubs/${hub}/client/${connectionId}`,
    'ce-id': randomUUID(),
    'ce-time': new Date().toISOString(),
    'ce-signature': signature(options.accessKeys, connectionId),
    'ce-hub': hub,
    'ce-connectionId': connectionId,
    'ce-eventName': event,
    'ce-awpsversion': '1.0',
  };
  if (userId !== null) headers['ce-userId'] = userId;
  if (subprotocol !== '') headers['ce-subprotocol'] = subprotocol;
  if (state !== null) headers['ce-connectionState'] = state;
  return fetch(resolveUrl(setting.urlTemplate, hub, event), {
    method: 'POST',
    headers,
    body: body as string | Uint8Array<ArrayBuffer>,
    signal: AbortSignal.timeout(options.timeoutMs),
  });
}

/** `sha256=<hex>` per access key, comma-separated (the service signs with its primary and secondary keys). */
export function signature(accessKeys: readonly string[], connectionId: string): string {
  return accessKeys.map((key) => `sha256=${createHmac('sha256', key).update(connectionId).digest('hex')}`).join(',');
}

export function stateOf(res: Response): string | null {
  return res.headers.get('ce-connectionstate');
}

/** The token's claims as the service passes them: each a list of strings. */
export function claimLists(claims: Readonly<Record<string, unknown>>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(claims)) out[k] = (Array.isArray(v) ? v : [v]).map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  return out;
}

const stringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

export function parseConnectAnswer(text: string, state: string | null): ConnectAnswer {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new GatewayError('GW_ERR_AZURE_CONNECT_REJECTED', 'The connect event handler answered 200 with a body that is not JSON');
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o))
    throw new GatewayError('GW_ERR_AZURE_CONNECT_REJECTED', 'The connect event handler answered 200 with a body that is not an object');
  const a = o as Record<string, unknown>;
  const bad = (field: string) =>
    new GatewayError(
      'GW_ERR_AZURE_CONNECT_REJECTED',
      `The connect event handler's ${field} is not ${field === 'userId' || field === 'subprotocol' ? 'a string' : 'a list of strings'}`,
    );
  if (a.userId !== undefined && a.userId !== null && typeof a.userId !== 'string') throw bad('userId');
  if (a.subprotocol !== undefined && a.subprotocol !== null && typeof a.subprotocol !== 'string') throw bad('subprotocol');
  if (a.groups !== undefined && a.groups !== null && !stringList(a.groups)) throw bad('groups');
  if (a.roles !== undefined && a.roles !== null && !stringList(a.roles)) throw bad('roles');
  return {
    userId: typeof a.userId === 'string' && a.userId !== '' ? a.userId : undefined,
    subprotocol: typeof a.subprotocol === 'string' && a.subprotocol !== '' ? a.subprotocol : undefined,
    groups: (a.groups as string[] | undefined | null) ?? [],
    roles: (a.roles as string[] | undefined | null) ?? [],
    state,
  };
}

/** The data type a user event's answer goes back to the client in, from its Content-Type. */
export function replyType(contentType: string | null, body: Uint8Array): DataType {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'text/plain') return 'text';
  if (type === 'application/json') {
    try {
      JSON.parse(Buffer.from(body).toString('utf8'));
      return 'json';
    } catch {
      return 'text'; // not JSON after all: never spliced raw into the frame
    }
  }
  return 'binary';
}
