/**
 * `refresh_token` for any authenticated session: the fresh JWT must verify and name the same user;
 * then the session's expiry moves. Each route answers in its own frame shape, through `answer`,
 * called only while the socket is open, and not corked: a refusal may end the connection (4501),
 * and an end inside a cork leaves TCP open (close-socket.ts).
 */
import type { WebSocket } from 'uWebSockets.js';
import type { TokenChecks } from '../auth/token-checks.js';
import { tokenFailure } from '../auth/token-error-codes.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { ExpiringSocket, SessionExpiry } from './session-expiry.js';

interface RefreshAnswer {
  /** The refresh was refused; the connection stays (the route counts it as a bad frame). */
  refused(err: GatewayError): void;
  /** The session now ends at `expiresAt` (ms since the epoch). */
  refreshed(expiresAt: number): void;
}

/** Checks the token, moves the session's expiry, and answers. */
export async function refreshSession(
  checks: TokenChecks,
  expiry: SessionExpiry,
  ws: WebSocket<unknown> & ExpiringSocket,
  token: unknown,
  answer: RefreshAnswer,
): Promise<void> {
  const result = await checkRefresh(checks, expiry, ws, token);
  if (ws.closed) return;
  if (result instanceof GatewayError) answer.refused(result);
  else answer.refreshed(result);
}

/** Resolves with the new expiry (ms since the epoch), or the error to report; the connection stays either way. */
async function checkRefresh(
  checks: TokenChecks,
  expiry: SessionExpiry,
  ws: WebSocket<unknown> & ExpiringSocket,
  token: unknown,
): Promise<number | GatewayError> {
  if (typeof token !== 'string' || token === '') return new GatewayError('GW_ERR_FRAME_INVALID', '"refresh_token" needs "token": a string');
  const current = ws.auth;
  if (!current?.principal) return new GatewayError('GW_ERR_FRAME_INVALID', 'This connection has no token to refresh');
  try {
    const principal = await checks.jwt(token);
    if (principal.userId !== current.principal.userId) return new GatewayError('GW_ERR_FORBIDDEN', 'A refreshed token must be for the same user');
    if (ws.closed) return principal.expiresAt;
    expiry.untrack(ws);
    ws.auth = { route: current.route, principal, expiresAt: principal.expiresAt, shareJti: null };
    expiry.track(ws);
    return principal.expiresAt;
  } catch (err) {
    return tokenFailure(err);
  }
}
