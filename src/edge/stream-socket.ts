import type { WebSocket } from 'uWebSockets.js';
import type { GatewayError } from '../errors/gateway-error.js';
import type { Principal } from '../auth/principal.js';

/**
 * Per-connection state of a /api/v1/stream socket (uWS userData: these become the ws object's
 * own properties). Kept small: it is most of an idle connection's memory.
 */
export interface StreamSocketData {
  readonly route: 'stream';
  /** Wire format: 0 json, 1 msgpack. */
  readonly format: 0 | 1;
  /** Devices this socket watches, in subscription order. */
  devices: string[];
  /** Set by uWS `dropped`: telemetry is being conflated until the socket drains. */
  lagging: boolean;
  lagSince: number;
  /** While lagging: each device's seq when the socket was paused (same order as `devices`). */
  pausedAt: number[] | null;
  badFrames: number;
  badWindowStart: number;
  /** True once the close handler ran: the native socket must not be touched any more. */
  closed: boolean;
  /** Token expiry (ms since the epoch) of an authenticated connection; 0: none. */
  expiresAt: number;
  /** The share link's jti (share-location viewers); null otherwise. */
  shareJti: string | null;
  /** Who an authenticated connection is (for ACL checks on subscribe and refresh); null otherwise. */
  principal: Principal | null;
  /** Frame rate limit bucket. */
  frameTokens: number;
  frameAt: number;
  /** Devices asked for in the query string, consumed in `open`. */
  requested: string[] | null;
  /** A query-string problem to report in `open` before closing. */
  requestError: GatewayError | null;
}

/** uWS makes userData the socket's own properties (`ws.getUserData() === ws`, notes/uws.md). */
export type StreamSocket = WebSocket<StreamSocketData> & StreamSocketData;
