/**
 * WebSocket closes, one table: every close the gateway sends (and the client library's own), with
 * its code, the reason text of its close frame and whether a client reconnects after it. RFC 6455
 * codes below 4000; the application range follows docs/architecture.md, "Delivery semantics and
 * close-code ranges": 4000-4499 means "reconnect (after a backoff)", 4500-4999 means "do not
 * reconnect, the request itself is wrong". Rows that share a code share its reconnect flag
 * (test/unit/close-codes.test.ts).
 *
 * `reason: null` means the close carries the refusal's own message (the error's, or an Azure Web
 * PubSub caller's), given where the socket is ended. docs/reference/close-codes.md's table is
 * generated from this one (`npm run docs`, src/config/docs-tables.ts).
 *
 * The browser client imports this file (src/client/reconnecting-client.ts; served as
 * /assets/errors/close-codes.js): it imports nothing.
 */
export interface Close {
  readonly code: number;
  /** The close frame's reason; null: the caller gives it (the error's message). */
  readonly reason: string | null;
  /** Whether a client should reconnect (after a backoff) when it sees this code. */
  readonly reconnect: boolean;
}

export const CLOSE = {
  /** Normal closure (the gateway sends 1000 with the reason of one of the next rows). */
  NORMAL: { code: 1000, reason: '', reconnect: false },
  /** A share link expired during the connection (after the `expired` event; docs/compat/gps-stream.md). */
  SHARE_LINK_EXPIRED: { code: 1000, reason: 'token expired', reconnect: false },
  /** An Azure Web PubSub reliable session was resumed on another socket; the old one ends. */
  AZURE_RESUMED_ELSEWHERE: { code: 1000, reason: 'resumed elsewhere', reconnect: false },
  /** The client library's own close when the application stops it (src/client/). */
  CLIENT_STOPPED: { code: 1000, reason: 'client stopped', reconnect: false },
  /** The server is shutting down; reconnect to another node or later. */
  GOING_AWAY: { code: 1001, reason: 'server shutting down', reconnect: true },
  /** Policy violation: invalid or expired credentials, a forbidden device or channel, a declined Azure client. */
  POLICY_VIOLATION: { code: 1008, reason: null, reconnect: false },
  /** A share link was revoked during the connection (after the `revoked` event). */
  SHARE_LINK_REVOKED: { code: 1008, reason: 'link revoked', reconnect: false },
  /** A client frame over the route's limit (GATEWAY_MAX_FRAME_BYTES; 1 MB for Azure clients, with the error's message). */
  MESSAGE_TOO_BIG: { code: 1009, reason: 'frame too big', reconnect: false },
  /** Unexpected server error on this connection. */
  SERVER_ERROR: { code: 1011, reason: 'server error', reconnect: true },
  /** The socket could not keep up (lagging past GATEWAY_SLOW_CONSUMER_TIMEOUT_MS); reconnect. */
  SLOW_CONSUMER: { code: 4000, reason: 'slow consumer, reconnect', reconnect: true },
  /** The same for an Azure Web PubSub client (its own reason text). */
  AZURE_SLOW_CONSUMER: { code: 4000, reason: 'slow consumer', reconnect: true },
  /** The token expired during the connection; reconnect with a fresh token (or refresh it in time). */
  TOKEN_EXPIRED: { code: 4001, reason: 'token expired', reconnect: true },
  /** Too many frames per second on this connection; reconnect after a backoff. */
  RATE_LIMITED: { code: 4029, reason: 'rate limited', reconnect: true },
  /** The request is invalid (missing, empty, oversized or malformed device_ids); do not retry it unchanged. */
  INVALID_REQUEST: { code: 4500, reason: null, reconnect: false },
  /** Too many bad frames in a minute (GATEWAY_MAX_BAD_FRAMES); fix the client before reconnecting. */
  TOO_MANY_BAD_FRAMES: { code: 4501, reason: 'too many bad frames', reconnect: false },
} as const satisfies Readonly<Record<string, Close>>;

export type CloseName = keyof typeof CLOSE;

const ROWS: readonly Close[] = Object.values(CLOSE);

/**
 * True when a client should reconnect after seeing `code`: the table's flag, and for a code not in
 * it (1005, 1006, a connection that never opened…) false only in the do-not-reconnect range.
 */
export function shouldReconnect(code: number): boolean {
  for (const row of ROWS) if (row.code === code) return row.reconnect;
  return code < 4500 || code > 4999;
}
