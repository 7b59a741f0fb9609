/**
 * What every WebSocket route checks before anything else, and on every client frame:
 * upgrades are refused while shutting down (503), over the per-IP rate (429) or without a
 * subprotocol the route speaks (400); frames over the per-connection rate close with 4029; more
 * than GATEWAY_MAX_BAD_FRAMES bad frames in a minute close with 4501.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { EdgeConfig, LimitsConfig } from '../config/config.js';
import { CloseCode } from '../errors/close-codes.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import { CODECS, FORMAT_INDEX, WIRE_FORMATS, type WireFormat } from '../protocol/codec.js';
import { decodeClientFrame, TYPE_FRAMES, type ClientFrame } from '../protocol/client-frames.js';
import { ERRORS, type ErrorCode } from '../errors/error-codes.js';
import { negotiate } from '../protocol/subprotocol.js';
import { take, type KeyedBuckets } from '../util/token-bucket.js';
import { endSocket, type EndableSocket } from './close-socket.js';
import { rejectUpgrade } from './http-response.js';
import { remoteIp } from './http-request.js';

const SUBPROTOCOLS: Readonly<Record<string, WireFormat>> = { json: 'json', msgpack: 'msgpack' };

export interface GateDeps {
  readonly limits: LimitsConfig;
  readonly ipBuckets: KeyedBuckets;
  readonly stats: RowWriter<EdgeMetric>;
  readonly isClosing: () => boolean;
}

export interface Admitted {
  readonly format: 0 | 1;
  /** The subprotocol token to echo ('' when none was offered). */
  readonly echo: string;
  /** The raw Sec-WebSocket-Protocol header (it may carry a `bearer.<jwt>` entry). */
  readonly protocolHeader: string;
}

/** The checks before any route's own: not shutting down (503), under the per-IP rate (429). False: answered. */
export function admitUpgrade(res: HttpResponse, deps: GateDeps): boolean {
  const { stats } = deps;
  if (deps.isClosing()) {
    stats.inc('upgrades_rejected_total');
    rejectUpgrade(res, 'GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down');
    return false;
  }
  if (!deps.ipBuckets.take(remoteIp(res))) {
    stats.inc('upgrades_rejected_total');
    stats.inc('rate_limited_total');
    rejectUpgrade(res, 'GW_ERR_RATE_LIMITED', `Too many connection attempts from this address (at most ${deps.limits.connectRatePerIp} per second)`);
    return false;
  }
  return true;
}

/** Runs the checks; on refusal it has answered the request and returns null. */
export function gateUpgrade(res: HttpResponse, req: HttpRequest, deps: GateDeps): Admitted | null {
  const { stats } = deps;
  if (!admitUpgrade(res, deps)) return null;
  const protocolHeader = req.getHeader('sec-websocket-protocol');
  const negotiation = negotiate(protocolHeader, SUBPROTOCOLS, 'json');
  if (!negotiation.ok) {
    stats.inc('upgrades_rejected_total');
    const shown = negotiation.offered.filter((p) => !p.startsWith('bearer.')).join(', ') || '(only a bearer token)';
    rejectUpgrade(res, 'GW_ERR_UNSUPPORTED_SUBPROTOCOL', `Unsupported Sec-WebSocket-Protocol ${JSON.stringify(shown.slice(0, 100))}; this endpoint speaks ${Object.keys(SUBPROTOCOLS).join(', ')} (a bearer.<jwt> entry may come with them)`);
    return null;
  }
  return { format: FORMAT_INDEX[negotiation.chosen], echo: negotiation.echo, protocolHeader };
}

interface FrameBucket {
  frameTokens: number;
  frameAt: number;
}

/** uWS's own frame limit; frames between GATEWAY_MAX_FRAME_BYTES and this get our 1009 close. */
export const UWS_MAX_PAYLOAD = 64 * 1024;

/**
 * The behaviour options every client WebSocket route shares. uWS's backpressure limit is off: past
 * it uWS drops every send silently, close frames included (notes/uws.md), so the routes' own scans
 * (slow-consumers.ts, channel-backpressure.ts) enforce the limits and close with 4000 instead.
 */
export function socketOptions(edge: EdgeConfig) {
  return {
    compression: 0,
    maxPayloadLength: Math.max(UWS_MAX_PAYLOAD, edge.maxFrameBytes + 1),
    idleTimeout: edge.idleTimeoutS,
    sendPingsAutomatically: true,
    maxBackpressure: 0,
    closeOnBackpressureLimit: 0,
  } as const;
}

type ClosingSocket = FrameBucket & EndableSocket;

/**
 * The checks every client frame passes first: the per-connection rate (close 4029) and the size
 * (close 1009). On refusal `refuse` has sent the route's error frame, the socket is closing, and
 * the result is false.
 */
export function screenFrame(ws: ClosingSocket, byteLength: number, limits: LimitsConfig, maxFrameBytes: number,
  stats: RowWriter<EdgeMetric>, refuse: (err: GatewayError) => void): boolean {
  if (!takeFrame(ws, limits, stats)) {
    refuse(new GatewayError('GW_ERR_RATE_LIMITED', `More than ${limits.frameRate} frames per second`));
    endSocket(ws, CloseCode.RATE_LIMITED, 'rate limited');
    return false;
  }
  if (byteLength > maxFrameBytes) {
    stats.inc('bad_frames_total');
    stats.inc('bad_frame_closes_total');
    refuse(new GatewayError('GW_ERR_FRAME_TOO_BIG', `Frame of ${byteLength} bytes is larger than ${maxFrameBytes}`));
    endSocket(ws, CloseCode.MESSAGE_TOO_BIG, 'frame too big');
    return false;
  }
  return true;
}

/** Takes one frame from the connection's bucket; false means the connection is over its rate. */
export function takeFrame(ws: FrameBucket, limits: LimitsConfig, stats: RowWriter<EdgeMetric>): boolean {
  const state = { tokens: ws.frameTokens, at: ws.frameAt };
  const allowed = take(state, limits.frameRate, limits.frameBurst, Date.now());
  ws.frameTokens = state.tokens;
  ws.frameAt = state.at;
  if (!allowed) stats.inc('rate_limited_total');
  return allowed;
}

const BAD_FRAME_WINDOW_MS = 60_000;

interface BadFrameCounter {
  badFrames: number;
  badWindowStart: number;
}

/** Counts a bad frame; true means the connection passed GATEWAY_MAX_BAD_FRAMES and must close with 4501. */
export function countBadFrame(ws: BadFrameCounter, maxPerMinute: number, stats: RowWriter<EdgeMetric>): boolean {
  stats.inc('bad_frames_total');
  const now = Date.now();
  if (now - ws.badWindowStart > BAD_FRAME_WINDOW_MS) {
    ws.badWindowStart = now;
    ws.badFrames = 0;
  }
  if (++ws.badFrames <= maxPerMinute) return false;
  stats.inc('bad_frame_closes_total');
  return true;
}

/**
 * Ends a socket whose admission failed (bad token, forbidden, invalid request): counted, reported
 * in the route's error frame by `report`, closed with the error's close code.
 */
export function refuseAtOpen(ws: EndableSocket, err: GatewayError, stats: RowWriter<EdgeMetric>, report: (err: GatewayError) => void): void {
  stats.inc(err.code.startsWith('GW_ERR_TOKEN') || err.code === 'GW_ERR_FORBIDDEN' ? 'auth_failures_total' : 'invalid_requests_total');
  report(err);
  endSocket(ws, ERRORS[err.code as ErrorCode]?.close ?? CloseCode.INVALID_REQUEST, err.message);
}

/**
 * A client frame of a `{"type": …}` endpoint: screened (rate, size), decoded in the connection's
 * format and checked against TYPE_FRAMES. null when refused: `refuse` (closing) or `bad` (the
 * connection stays, counted by the route) has been called.
 */
export function takeTypeFrame(ws: ClosingSocket & { readonly format: 0 | 1 }, message: ArrayBuffer, isBinary: boolean, config: { limits: LimitsConfig; edge: EdgeConfig },
  stats: RowWriter<EdgeMetric>, refuse: (err: GatewayError) => void, bad: (err: GatewayError) => void): ClientFrame | null {
  if (!screenFrame(ws, message.byteLength, config.limits, config.edge.maxFrameBytes, stats, refuse)) return null;
  try {
    return decodeClientFrame(CODECS[WIRE_FORMATS[ws.format]], message, isBinary, TYPE_FRAMES);
  } catch (err) {
    bad(err as GatewayError);
    return null;
  }
}
