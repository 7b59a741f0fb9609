/**
 * The one way the gateway ends a WebSocket (every server-initiated close goes through endSocket).
 *
 * uWS's `end(code, reason)` sends the close frame and then shuts the TCP write side (FIN), but the
 * FIN goes out at once only when the socket is not corked (uWebSockets src/WebSocket.h, `end()`).
 * Corked by `ws.cork(fn)` from a timer or a MessagePort handler, the close frame leaves on uncork and
 * the FIN never does: the socket ignores the client's answering close frame (it is shutting down)
 * and waits for uWS's end() timeout, the ping-timeout part of the idle timeout (16 s with
 * GATEWAY_IDLE_TIMEOUT_S 120). A client that waits for the server to close TCP, as RFC 6455 §7.1.1
 * asks (Python `websockets`), reported the close only after its own close timeout. Inside uWS's own
 * callbacks (message, open after a synchronous upgrade, drain) uWS sends the FIN itself when the
 * callback returns, so those are fine.
 *
 * So: send the last frame (error, expired, revoked…) with a plain `send`, then call endSocket,
 * never inside `ws.cork(...)` of the same socket. After it the uWS handle is invalid (the close
 * handler has run); `ws.close()` later would throw, so there is no "close after a deadline" from
 * JS. When the close frame itself waits behind unsent data (a slow consumer), uWS sends the FIN once
 * the buffer drains, or cuts the socket after that same ping timeout if the client reads nothing.
 */

import type { Close } from '../errors/close-codes.js';

/** What endSocket needs of a socket (uWS WebSocket). */
export interface EndableSocket {
  end(code?: number, reason?: string): void;
}

/** uWS sends at most 123 bytes of reason (RFC 6455: 125 with the code) and cuts them wherever they fall. */
const MAX_REASON_BYTES = 123;

/**
 * The reason cut to 123 bytes on a character boundary, so the close frame stays valid UTF-8
 * (a byte cut inside a character makes clients fail the connection with 1007 instead).
 */
export function closeReason(reason: string): string {
  if (reason.length * 3 <= MAX_REASON_BYTES || Buffer.byteLength(reason) <= MAX_REASON_BYTES) return reason;
  let end = Math.min(reason.length, MAX_REASON_BYTES);
  while (end > 0 && Buffer.byteLength(reason.slice(0, end)) > MAX_REASON_BYTES) end--;
  // Do not leave half of a surrogate pair at the end.
  const last = reason.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return reason.slice(0, end);
}

/**
 * Sends the close frame of `close` (errors/close-codes.ts) with its reason, or with `reason` where
 * the close carries the refusal's own message, and closes TCP as soon as it has left (see above:
 * call it outside any `ws.cork` of this socket). The route's close handler runs before it returns.
 */
export function endSocket(ws: EndableSocket, close: Close, reason: string = close.reason ?? ''): void {
  ws.end(close.code, closeReason(reason));
}
