import type { WebSocket } from 'uWebSockets.js';
import type { GatewayError } from '../../../errors/gateway-error.js';
import type { SessionAuth } from '../../../edge/session-expiry.js';
import type { FormatIndex } from '../../../protocol/codec.js';

/**
 * Per-connection state of a /api/v1/stream socket (uWS userData: these become the ws object's
 * own properties). Kept small: it is most of an idle connection's memory.
 */
export interface StreamSocketData {
  /** Wire format: 0 json, 1 msgpack. */
  readonly format: FormatIndex;
  /** Devices this socket watches, in subscription order. */
  devices: string[];
  /** When the socket started lagging (telemetry conflated until it drains); 0 when it is not. */
  lagSince: number;
  /** While lagging: each device's seq when the socket was paused (same order as `devices`). */
  pausedAt: number[] | null;
  badFrames: number;
  badWindowStart: number;
  /** True once the close handler ran: the native socket must not be touched any more. */
  closed: boolean;
  /** Token state of an authenticated connection (JWT or share link); null otherwise. */
  auth: SessionAuth | null;
  /** Frame rate limit bucket. */
  frameTokens: number;
  frameAt: number;
  /** What the upgrade decided (devices to watch, or the error to report), consumed in `open`. */
  admission: { readonly requested: string[] | null; readonly error: GatewayError | null; readonly batch: boolean } | null;
}

/*
 * Eleven fields on purpose: uWS copies userData onto the native socket one property at a time, and
 * with many more V8 moved the objects to dictionary mode: 16 fields cost 4.25 KB of RSS per idle
 * connection against 2.6 KB (bench/suite, memory scenario).
 */

/** uWS makes userData the socket's own properties (`ws.getUserData() === ws`, docs/notes/uws.md). */
export type StreamSocket = WebSocket<StreamSocketData> & StreamSocketData;
