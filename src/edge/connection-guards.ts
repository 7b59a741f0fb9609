/**
 * What every WebSocket route checks before anything else, and on every client frame:
 * upgrades are refused while shutting down (503), over the per-IP rate (429) or without a
 * subprotocol the route speaks (400); frames over the per-connection rate close with 4029; more
 * than GATEWAY_MAX_BAD_FRAMES bad frames in a minute close with 4501.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { LimitsConfig } from '../config/config.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import { FORMAT_INDEX, type WireFormat } from '../protocol/codec.js';
import { negotiate } from '../protocol/subprotocol.js';
import { take, type KeyedBuckets } from '../util/token-bucket.js';
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

/** Runs the checks; on refusal it has answered the request and returns null. */
export function gateUpgrade(res: HttpResponse, req: HttpRequest, deps: GateDeps): Admitted | null {
  const { stats } = deps;
  if (deps.isClosing()) {
    stats.inc('upgrades_rejected_total');
    rejectUpgrade(res, 'GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down');
    return null;
  }
  if (!deps.ipBuckets.take(remoteIp(res))) {
    stats.inc('upgrades_rejected_total');
    stats.inc('rate_limited_total');
    rejectUpgrade(res, 'GW_ERR_RATE_LIMITED', `Too many connection attempts from this address (at most ${deps.limits.connectRatePerIp} per second)`);
    return null;
  }
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
