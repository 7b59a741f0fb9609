import type { WebSocket } from 'uWebSockets.js';
import type { EnvelopeIndex } from '../envelopes.js';
import type { GatewayError } from '../../../errors/gateway-error.js';
import type { Since } from './channel-history.js';
import type { SessionAuth } from '../../../edge/session-expiry.js';
import type { FormatIndex } from '../../../protocol/codec.js';

/** Per-connection state of a channel socket (/api/v1/ws, /ws/{channel}); kept small, see stream-socket.ts. */
export interface ChannelSocketData {
  readonly format: FormatIndex;
  readonly envelope: EnvelopeIndex;
  readonly channel: string;
  /** Whose notifications this socket also receives; null: only channel-wide events. */
  readonly userId: string | null;
  auth: SessionAuth | null;
  closed: boolean;
  /** When the socket went over GATEWAY_WS_MAX_BACKPRESSURE; 0 when it is not lagging. */
  lagSince: number;
  frameTokens: number;
  frameAt: number;
  badFrames: number;
  badWindowStart: number;
  /** What the upgrade decided (the position to resume from, or the error), consumed in `open`. */
  admission: { readonly since: Since | null; readonly error: GatewayError | null } | null;
  /** Set while a `since` ahead of this edge's head waits for it (ChannelHistory.whenAt): cancels the wait. */
  cancelWait: (() => void) | null;
}

export type ChannelSocket = WebSocket<ChannelSocketData> & ChannelSocketData;
