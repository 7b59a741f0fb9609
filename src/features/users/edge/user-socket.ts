import type { WebSocket } from 'uWebSockets.js';
import type { SessionAuth } from '../../../edge/session-expiry.js';
import type { GatewayError } from '../../../errors/gateway-error.js';
import type { FormatIndex } from '../../../protocol/codec.js';

/** Per-connection state of a /ws/connect socket (users and roles, docs/compat/user-hub.md). */
export interface UserSocketData {
  readonly format: FormatIndex;
  closed: boolean;
  /** Set for an admitted user (principal and expiry); null when the token was refused. */
  auth: SessionAuth | null;
  frameTokens: number;
  frameAt: number;
  badFrames: number;
  badWindowStart: number;
  requestError: GatewayError | null;
}

export type UserSocket = WebSocket<UserSocketData> & UserSocketData;
