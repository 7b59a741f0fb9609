import type { WebSocket } from 'uWebSockets.js';
import type { Principal } from '../auth/principal.js';
import type { GatewayError } from '../errors/gateway-error.js';

/** Per-connection state of a /ws/connect socket (users and roles, reference/002). */
export interface UserSocketData {
  readonly route: 'connect';
  readonly format: 0 | 1;
  closed: boolean;
  principal: Principal | null;
  expiresAt: number;
  readonly shareJti: null;
  frameTokens: number;
  frameAt: number;
  badFrames: number;
  badWindowStart: number;
  requestError: GatewayError | null;
}

export type UserSocket = WebSocket<UserSocketData> & UserSocketData;
