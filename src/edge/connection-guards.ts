/**
 * What every WebSocket route checks before anything else, and on every client frame:
 * upgrades are refused while shutting down (503), over the per-IP rate (429) or without a
 * subprotocol the route speaks (400); frames over the per-connection rate close with 4029, frames
 * over GATEWAY_MAX_FRAME_BYTES with 1009 (the bad-frame sequence is bad-frames.ts).
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { EdgeConfig, LimitsConfig } from '../config/config.js';
import { CLOSE } from '../errors/close-codes.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import { CODECS, FORMAT_INDEX, type FormatIndex, WIRE_FORMATS, type WireFormat } from '../protocol/codec.js';
import { decodeClientFrame, TYPE_FRAMES, type ClientFrame } from '../protocol/client-frames.js';
import { ERRORS, type ErrorCode } from '../errors/error-codes.js';
import { negotiate } from '../protocol/subprotocol.js';
import { take, type KeyedBuckets } from '../util/token-bucket.js';
import { endSocket, type EndableSocket } from './close-socket.js';
import { rejectUpgrade } from './http-response.js';
import { uwsFrameCap, type BadFrameCounter, type BadFrames, type FrameAnswer } from './bad-frames.js';
import type { ClientAddresses } from './client-address.js';

const SUBPROTOCOLS: Readonly<Record<string, WireFormat>> = { json: 'json', msgpack: 'msgpack' };

export interface GateDeps {
  readonly limits: LimitsConfig;
  readonly ipBuckets: KeyedBuckets;
  /** The client address behind trusted proxies (client-address.ts): what ipBuckets keys on. */
  readonly clients: ClientAddresses;
  readonly stats: RowWriter<EdgeMetric>;
  readonly isClosing: () => boolean;
}

interface Admitted {
  readonly format: FormatIndex;
  /** The subprotocol token to echo ('' when none was offered). */
  readonly echo: string;
  /** The raw Sec-WebSocket-Protocol header (it may carry a `bearer.<jwt>` entry). */
  readonly protocolHeader: string;
}

/** The checks before any route's own: not shutting down (503), under the per-IP rate (429). False: answered. */
export function admitUpgrade(res: HttpResponse, req: HttpRequest, deps: GateDeps): boolean {
  const { stats } = deps;
  if (deps.isClosing()) {
    stats.inc('upgrades_rejected_total');
    rejectUpgrade(res, 'GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down');
    return false;
  }
  if (!deps.ipBuckets.take(deps.clients.ip(res, req))) {
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
  if (!admitUpgrade(res, req, deps)) return null;
  const protocolHeader = req.getHeader('sec-websocket-protocol');
  const negotiation = negotiate(protocolHeader, SUBPROTOCOLS, 'json');
  if (!negotiation.ok) {
    stats.inc('upgrades_rejected_total');
    const shown = negotiation.offered.filter((p) => !p.startsWith('bearer.')).join(', ') || '(only a bearer token)';
    rejectUpgrade(
      res,
      'GW_ERR_UNSUPPORTED_SUBPROTOCOL',
      `Unsupported Sec-WebSocket-Protocol ${JSON.stringify(shown.slice(0, 100))}; this endpoint speaks ${Object.keys(SUBPROTOCOLS).join(', ')} (a bearer.<jwt> entry may come with them)`,
    );
    return null;
  }
  return { format: FORMAT_INDEX[negotiation.chosen], echo: negotiation.echo, protocolHeader };
}

interface FrameBucket {
  frameTokens: number;
  frameAt: number;
}

/**
 * The behaviour options every client WebSocket route shares. uWS's backpressure limit is off: past
 * it uWS drops every send silently, close frames included (docs/notes/uws.md), so the routes' own scans
 * (slow-consumers.ts, channel-backpressure.ts) enforce the limits and close with 4000 instead.
 * uWS's frame cap sits FRAME_SLACK above GATEWAY_MAX_FRAME_BYTES, so frames over the limit reach
 * screenFrame and get the documented error and 1009 (bad-frames.ts).
 */
export function socketOptions(edge: EdgeConfig) {
  return {
    compression: 0,
    maxPayloadLength: uwsFrameCap(edge.maxFrameBytes),
    idleTimeout: edge.idleTimeoutS,
    sendPingsAutomatically: true,
    maxBackpressure: 0,
    closeOnBackpressureLimit: 0,
  } as const;
}

type ClosingSocket = FrameBucket & EndableSocket;

/**
 * The checks every client frame passes first: the per-connection rate (close 4029) and the size
 * (GATEWAY_MAX_FRAME_BYTES: close 1009). On refusal `answer` has sent the route's error frame and
 * closed the socket, and the result is false.
 */
export function screenFrame(
  ws: FrameBucket,
  bytes: number,
  binary: boolean,
  limits: LimitsConfig,
  maxFrameBytes: number,
  stats: RowWriter<EdgeMetric>,
  badFrames: BadFrames,
  answer: FrameAnswer,
): boolean {
  if (!takeFrame(ws, limits, stats)) {
    answer(new GatewayError('GW_ERR_RATE_LIMITED', `More than ${limits.frameRate} frames per second`), CLOSE.RATE_LIMITED);
    return false;
  }
  if (bytes > maxFrameBytes) {
    badFrames.tooBig(binary, bytes, maxFrameBytes, answer);
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

/** The answer of the routes whose error frames `send` writes: the frame, then the close if any (bad-frames.ts). */
export function answerWith(ws: EndableSocket, send: (err: GatewayError) => void): FrameAnswer {
  return (err, close) => {
    send(err);
    if (close !== undefined) endSocket(ws, close, close.reason ?? err.message.slice(0, 100));
  };
}

/**
 * Ends a socket whose admission failed (bad token, forbidden, invalid request): counted, reported
 * in the route's error frame by `report`, closed with the error's close code.
 */
export function refuseAtOpen(ws: EndableSocket, err: GatewayError, stats: RowWriter<EdgeMetric>, report: (err: GatewayError) => void): void {
  stats.inc(err.code.startsWith('GW_ERR_TOKEN') || err.code === 'GW_ERR_FORBIDDEN' ? 'auth_failures_total' : 'invalid_requests_total');
  report(err);
  endSocket(ws, ERRORS[err.code as ErrorCode]?.close ?? CLOSE.INVALID_REQUEST, err.message);
}

/**
 * A client frame of a `{"type": …}` endpoint: screened (rate, size), decoded in the connection's
 * format and checked against TYPE_FRAMES. null when refused: the bad-frame sequence ran
 * (`answer` sent the error frame, and the close when it ends the connection).
 */
export function takeTypeFrame(
  ws: ClosingSocket & BadFrameCounter & { readonly format: FormatIndex },
  message: ArrayBuffer,
  isBinary: boolean,
  config: { limits: LimitsConfig; edge: EdgeConfig },
  stats: RowWriter<EdgeMetric>,
  badFrames: BadFrames,
  send: (err: GatewayError) => void,
): ClientFrame | null {
  const bytes = message.byteLength;
  const answer = answerWith(ws, send);
  if (!screenFrame(ws, bytes, isBinary, config.limits, config.edge.maxFrameBytes, stats, badFrames, answer)) return null;
  try {
    return decodeClientFrame(CODECS[WIRE_FORMATS[ws.format]], message, isBinary, TYPE_FRAMES);
  } catch (err) {
    badFrames.refused(ws, err as GatewayError, isBinary, bytes, answer);
    return null;
  }
}
