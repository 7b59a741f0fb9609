/**
 * The error catalogue: every error the gateway reports to a client or an operator has a stable
 * `GW_ERR_*` code, an HTTP status (for REST and refused upgrades) and, where it ends a WebSocket,
 * a close code. The table of docs/reference/errors.md is checked against this one.
 */
import { CLOSE, type Close } from './close-codes.js';

interface ErrorSpec {
  readonly status: number;
  /** Close code when the error ends a WebSocket; undefined when the connection stays open. */
  readonly close: Close | undefined;
  readonly description: string;
}

export const ERRORS = {
  GW_ERR_CONFIG_INVALID: { status: 500, close: undefined, description: 'A configuration variable is invalid; the gateway does not start.' },
  GW_ERR_NOT_FOUND: { status: 404, close: undefined, description: 'No route for this method and path.' },
  GW_ERR_UNSUPPORTED_SUBPROTOCOL: { status: 400, close: undefined, description: 'Sec-WebSocket-Protocol offers no encoding this endpoint speaks; refused at the upgrade.' },
  GW_ERR_ENCODING_INVALID: { status: 400, close: undefined, description: 'Malformed percent-encoding (`%` not followed by two hex digits) or bytes that are not UTF-8 in the path or query; refused before the upgrade or request, on every route.' },
  GW_ERR_ORIGIN_FORBIDDEN: { status: 403, close: undefined, description: 'A browser request from an origin that is neither the gateway\'s own nor in GATEWAY_ALLOWED_ORIGINS: a WebSocket upgrade, a CORS preflight, or a POST/PUT/PATCH/DELETE. Requests without `Origin` are not affected.' },
  GW_ERR_DEVICE_IDS_MISSING: { status: 400, close: CLOSE.INVALID_REQUEST, description: '`device_ids` is missing or empty.' },
  GW_ERR_DEVICE_IDS_TOO_MANY: { status: 400, close: CLOSE.INVALID_REQUEST, description: 'More device ids than GATEWAY_MAX_DEVICES_PER_CONNECTION.' },
  GW_ERR_BATCH_INVALID: { status: 400, close: CLOSE.INVALID_REQUEST, description: '`batch` is not 0 or 1, or `batch=1` without `device_ids=*` (only every-device streams are batched).' },
  GW_ERR_DEVICE_ID_INVALID: { status: 400, close: CLOSE.INVALID_REQUEST, description: 'A device id is longer than 128 characters or has characters outside `A-Z a-z 0-9 _ - . :`.' },
  GW_ERR_FRAME_INVALID: { status: 400, close: undefined, description: 'A client frame is not a valid action (not JSON/msgpack, nested deeper than 64 levels, a msgpack extension type, not an object, wrong field types); the connection stays.' },
  GW_ERR_UNKNOWN_ACTION: { status: 400, close: undefined, description: 'A client frame names an action this endpoint does not have; the connection stays.' },
  GW_ERR_FRAME_TOO_BIG: { status: 413, close: CLOSE.MESSAGE_TOO_BIG, description: 'A client frame is larger than GATEWAY_MAX_FRAME_BYTES; an `error` event, then 1009.' },
  GW_ERR_TOO_MANY_BAD_FRAMES: { status: 400, close: CLOSE.TOO_MANY_BAD_FRAMES, description: 'More than GATEWAY_MAX_BAD_FRAMES bad frames within a minute.' },
  GW_ERR_SLOW_CONSUMER: { status: 503, close: CLOSE.SLOW_CONSUMER, description: 'The socket stayed lagging past GATEWAY_SLOW_CONSUMER_TIMEOUT_MS.' },
  GW_ERR_TOKEN_MISSING: { status: 401, close: CLOSE.POLICY_VIOLATION, description: 'No token: `?token=`, `Authorization: Bearer` or a `bearer.<jwt>` subprotocol.' },
  GW_ERR_TOKEN_INVALID: { status: 401, close: CLOSE.POLICY_VIOLATION, description: 'The token was refused (malformed, too large, wrong algorithm or key, bad signature, wrong issuer or audience, not yet valid, revoked). The message says which, never more.' },
  GW_ERR_TOKEN_EXPIRED: { status: 401, close: CLOSE.POLICY_VIOLATION, description: 'The token expired before the request (during a connection: close 4001 instead).' },
  GW_ERR_OPERATOR_UNAUTHORIZED: { status: 401, close: undefined, description: 'An operator route (`/api/v1/cluster`, `/metrics`, the outbox dead letters) without `Authorization: Bearer` and the GATEWAY_OPERATOR_TOKEN, or with another token. The answer carries `WWW-Authenticate: Bearer`.' },
  GW_ERR_FORBIDDEN: { status: 403, close: CLOSE.POLICY_VIOLATION, description: 'The token is valid but its user and roles may not see this device, channel or group.' },
  GW_ERR_RATE_LIMITED: { status: 429, close: CLOSE.RATE_LIMITED, description: 'Too many upgrades from one IP (GATEWAY_CONNECT_RATE_PER_IP) or frames on one connection (GATEWAY_FRAME_RATE).' },
  GW_ERR_BODY_TOO_LARGE: { status: 413, close: undefined, description: 'A request body over the endpoint\'s limit.' },
  GW_ERR_BODY_INVALID: { status: 400, close: undefined, description: 'A request body that is not valid JSON or UTF-8, is nested deeper than GATEWAY_MAX_JSON_DEPTH, has a `__proto__`, `constructor` or `prototype` key, or lacks a required field; the message names the field or key.' },
  GW_ERR_FORBIDDEN_IN_PRODUCTION: { status: 403, close: undefined, description: 'A test-only route called with ENVIRONMENT=production.' },
  GW_ERR_QUERY_INVALID: { status: 400, close: undefined, description: 'A query parameter of a REST request is invalid (`skip`, `limit`); the message names it.' },
  GW_ERR_ID_INVALID: { status: 400, close: undefined, description: 'An entity id in the path is not a positive whole number.' },
  GW_ERR_ENTITY_NOT_FOUND: { status: 404, close: undefined, description: 'No entity with this id in the collection.' },
  GW_ERR_EVENT_INVALID: { status: 400, close: undefined, description: 'A published event is not an entity_event, realtime_update or notification of the right shape; the message names the field.' },
  GW_ERR_CHANNEL_UNKNOWN: { status: 404, close: CLOSE.INVALID_REQUEST, description: 'No such channel (GATEWAY_CHANNELS); the message lists the channels there are.' },
  GW_ERR_SINCE_INVALID: { status: 400, close: CLOSE.INVALID_REQUEST, description: '`since` is not a whole number, comes without `epoch`, or is still ahead of the channel\'s last offset after waiting 2 s for it (a position this server never gave).' },
  GW_ERR_HUB_UNKNOWN: { status: 404, close: undefined, description: 'An Azure Web PubSub hub this gateway does not serve (GATEWAY_AZURE_HUBS), or not a valid hub name.' },
  GW_ERR_AZURE_REQUEST_INVALID: { status: 400, close: CLOSE.POLICY_VIOLATION, description: 'An Azure Web PubSub request or client frame of the wrong shape (the protocol "declines the client": `disconnected`, then 1008); the message names the field.' },
  GW_ERR_AZURE_FILTER_INVALID: { status: 400, close: undefined, description: 'An OData `filter` that does not parse; the message says where.' },
  GW_ERR_AZURE_CONNECTION_NOT_FOUND: { status: 404, close: undefined, description: 'An Azure Web PubSub connection id that is not connected (addConnectionToGroup).' },
  GW_ERR_AZURE_USER_GROUPS_FULL: { status: 409, close: undefined, description: 'addUserToGroup refused: the user is in GATEWAY_AZURE_USER_GROUPS_PER_USER groups of the hub already, or the store keeps GATEWAY_AZURE_USER_GROUPS_MAX user-group relations; remove some (removeUserFromGroup, removeUserFromAllGroups) first.' },
  GW_ERR_AZURE_CONNECT_UNAUTHORIZED: { status: 401, close: undefined, description: 'The hub\'s `connect` event handler answered 401: the client is refused with it, as the service does.' },
  GW_ERR_AZURE_CONNECT_FORBIDDEN: { status: 403, close: undefined, description: 'The hub\'s `connect` event handler answered 403: the client is refused with it.' },
  GW_ERR_AZURE_CONNECT_REJECTED: { status: 400, close: undefined, description: 'The hub\'s `connect` event handler answered another 4xx, or a 200 body that is not the connect response (`userId`, `groups`, `roles`, `subprotocol`).' },
  GW_ERR_AZURE_UPSTREAM_FAILED: { status: 500, close: CLOSE.POLICY_VIOLATION, description: 'An upstream event handler did not answer in GATEWAY_AZURE_EVENT_HANDLER_TIMEOUT_MS, failed, or answered 5xx: `connect` refuses the client (500); a user event drops the connection (`disconnected`, then 1008), as the service does.' },
  GW_ERR_MESSAGE_TOO_LARGE: { status: 413, close: CLOSE.MESSAGE_TOO_BIG, description: 'Message Too Large (docs/compat/trips.md): a payload over 1 MB, the Azure Web PubSub limit: a REST body or trip event (413), an Azure client frame (`disconnected`, then 1009); compress or paginate. Never sent.' },
  GW_ERR_EQUIPMENT_UNKNOWN: { status: 404, close: undefined, description: 'Invalid User ID (docs/compat/trips.md): no equipment with this code.' },
  GW_ERR_EQUIPMENT_INACTIVE: { status: 403, close: undefined, description: 'The equipment exists but is not active.' },
  GW_ERR_TRIP_NOT_FOUND: { status: 404, close: undefined, description: 'No trip with this IdMovimiento.' },
  GW_ERR_TRIP_TRANSITION: { status: 409, close: undefined, description: 'The trip\'s state does not allow this step (finishing a cancelled trip, loading twice); nothing is written and no event is sent.' },
  GW_ERR_OVERLOADED: { status: 503, close: undefined, description: 'The store is busy: its queue is full (GATEWAY_STORE_QUEUE), or a task waited longer than GATEWAY_STORE_QUEUE_TIMEOUT_MS for a database connection. Nothing was written; retry after a backoff.' },
  GW_ERR_STORE_UNAVAILABLE: { status: 503, close: undefined, description: 'The store (PostgreSQL) cannot be reached or did not answer in time; the write was not applied, unless the message says the connection was lost while committing (then read before retrying). Retry after a backoff.' },
  GW_ERR_NOT_READY: { status: 503, close: undefined, description: 'The gateway is still starting (channels or share-link revocations not loaded yet); retry shortly.' },
  GW_ERR_SHUTTING_DOWN: { status: 503, close: CLOSE.GOING_AWAY, description: 'The gateway is shutting down; upgrades are refused and sockets closed.' },
  GW_ERR_INTERNAL: { status: 500, close: CLOSE.SERVER_ERROR, description: 'An unexpected error; logged with details, never sent to the client.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;
