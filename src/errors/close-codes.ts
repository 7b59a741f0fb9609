/**
 * WebSocket close codes, one table. RFC 6455 codes below 4000; the application range follows
 * docs/architecture.md, "Delivery semantics and close-code ranges": 4000-4499 means "reconnect (after a backoff)", 4500-4999 means "do not reconnect,
 * the request itself is wrong". The table of docs/reference/close-codes.md is checked against this one.
 */
export const CloseCode = {
  /** Normal closure (also: share link expired, client asked to close). */
  NORMAL: 1000,
  /** The server is shutting down; reconnect to another node or later. */
  GOING_AWAY: 1001,
  /** Policy violation: invalid or expired credentials. */
  POLICY_VIOLATION: 1008,
  /** A client frame over the route's limit (GATEWAY_MAX_FRAME_BYTES; 1 MB for Azure clients). */
  MESSAGE_TOO_BIG: 1009,
  /** Unexpected server error on this connection. */
  SERVER_ERROR: 1011,
  /** The socket could not keep up (lagging past GATEWAY_SLOW_CONSUMER_TIMEOUT_MS); reconnect. */
  SLOW_CONSUMER: 4000,
  /** The token expired during the connection; reconnect with a fresh token (or refresh it in time). */
  TOKEN_EXPIRED: 4001,
  /** Too many frames per second on this connection; reconnect after a backoff. */
  RATE_LIMITED: 4029,
  /** The request is invalid (missing, empty, oversized or malformed device_ids); do not retry it unchanged. */
  INVALID_REQUEST: 4500,
  /** Too many bad frames in a minute (GATEWAY_MAX_BAD_FRAMES); fix the client before reconnecting. */
  TOO_MANY_BAD_FRAMES: 4501,
} as const;

export type CloseCodeName = keyof typeof CloseCode;
export type CloseCodeValue = (typeof CloseCode)[CloseCodeName];

/** True when a client should reconnect after seeing this code. */
export function shouldReconnect(code: number): boolean {
  if (code >= 4500 && code <= 4999) return false;
  return code !== CloseCode.POLICY_VIOLATION && code !== CloseCode.MESSAGE_TOO_BIG;
}
