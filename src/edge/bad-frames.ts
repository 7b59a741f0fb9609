/**
 * Bad client frames: one sequence on every WebSocket route (docs/reference/errors.md, docs/reference/close-codes.md).
 *
 *   refused   the route's error frame with the code; the connection stays, until more than
 *             GATEWAY_MAX_BAD_FRAMES in a minute: then the GW_ERR_TOO_MANY_BAD_FRAMES error and 4501
 *   ends      the error frame, then the error's close code: a frame over the route's limit
 *             (GW_ERR_FRAME_TOO_BIG, Azure GW_ERR_MESSAGE_TOO_LARGE: 1009), a malformed Azure frame (1008)
 *   cut       what never reaches JS: uWS closes the TCP connection without a close frame (the client
 *             sees 1006) for a text frame that is not UTF-8 or a frame over its hard cap
 *             (maxPayloadLength, the route's limit + FRAME_SLACK); the close handler gets 1006 and
 *             uWS's reason, and `closed` counts it
 *
 * The warning describes the frame (route, text or binary, bytes, the error's code and message) and
 * never its content: the errors of frames are worded not to quote them (protocol/codec.ts,
 * client-frames.ts, stream-actions.ts), so a token sent by mistake never lands in the log.
 */
import type { Logger } from 'pino';
import { CLOSE, type Close } from '../errors/close-codes.js';
import { ERRORS } from '../errors/error-codes.js';
import { GatewayError } from '../errors/gateway-error.js';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import type { RowWriter } from '../metrics/shared-stats.js';

/**
 * uWS's maxPayloadLength is the route's documented limit plus this: a frame up to it reaches JS
 * and gets the documented error and 1009; past it uWS cuts the connection (1006) before JS sees a
 * byte. It bounds what one socket can make uWS buffer for a frame in flight (limit + 64 KiB).
 */
const FRAME_SLACK = 64 * 1024;

/** uWS's hard cap for a route whose documented frame limit is `limit` bytes. */
export const uwsFrameCap = (limit: number): number => limit + FRAME_SLACK;

/** uWS's reasons for the closes it makes itself (uWebSockets src/WebSocketProtocol.h, ERR_*). */
const UWS_INVALID_UTF8 = 'Received invalid UTF-8';
const UWS_TOO_BIG = 'Received too big message';

/**
 * How a route answers a bad frame: its error frame for `err`, then, when `close` is given, that
 * close (errors/close-codes.ts). Only called while the socket is open.
 */
export type FrameAnswer = (err: GatewayError, close?: Close) => void;

export interface BadFrameCounter {
  badFrames: number;
  badWindowStart: number;
}

const BAD_FRAME_WINDOW_MS = 60_000;

export class BadFrames {
  private readonly log: RateLimitedLog;

  constructor(
    private readonly route: string,
    private readonly maxPerMinute: number,
    private readonly stats: RowWriter<EdgeMetric>,
    logger: Logger,
  ) {
    this.log = new RateLimitedLog(logger);
  }

  /** A frame the route refuses while the connection stays (unless it is one too many: 4501). */
  refused(ws: BadFrameCounter, err: GatewayError, binary: boolean, bytes: number, answer: FrameAnswer): void {
    this.stats.inc('bad_frames_total');
    this.warn(err, binary, bytes);
    answer(err);
    if (!this.overLimit(ws)) return;
    this.stats.inc('bad_frame_closes_total');
    answer(new GatewayError('GW_ERR_TOO_MANY_BAD_FRAMES', `More than ${this.maxPerMinute} bad frames in a minute`), CLOSE.TOO_MANY_BAD_FRAMES);
  }

  /** A frame that ends the connection: its error frame, then the error's close code. */
  ends(err: GatewayError, binary: boolean, bytes: number, answer: FrameAnswer): void {
    this.stats.inc('bad_frames_total');
    this.stats.inc('bad_frame_closes_total');
    this.warn(err, binary, bytes);
    answer(err, ERRORS[err.code].close ?? CLOSE.POLICY_VIOLATION);
  }

  /** A frame over the route's documented limit: the error (GW_ERR_FRAME_TOO_BIG or the route's own), then 1009. */
  tooBig(
    binary: boolean,
    bytes: number,
    limit: number,
    answer: FrameAnswer,
    code: 'GW_ERR_FRAME_TOO_BIG' | 'GW_ERR_MESSAGE_TOO_LARGE' = 'GW_ERR_FRAME_TOO_BIG',
  ): void {
    this.ends(new GatewayError(code, `Frame of ${bytes} bytes is larger than ${limit}`), binary, bytes, answer);
  }

  /**
   * Every route's close handler reports here: a 1006 with one of uWS's frame reasons is a socket uWS
   * cut for a frame JS never saw (its bytes are gone, so only the kind is known). Counted, and
   * described like the other bad frames.
   */
  closed(code: number, message: ArrayBuffer): void {
    if (code !== 1006 || message.byteLength === 0) return;
    const reason = Buffer.from(message).toString('latin1');
    let metric: EdgeMetric;
    if (reason === UWS_INVALID_UTF8) metric = 'invalid_utf8_closes_total';
    else if (reason.startsWith(UWS_TOO_BIG)) metric = 'frame_cap_closes_total';
    else return;
    this.stats.inc(metric);
    this.stats.inc('bad_frames_total');
    this.stats.inc('bad_frame_closes_total');
    this.log.warn(
      { route: this.route, kind: metric === 'invalid_utf8_closes_total' ? 'text' : undefined, closed: 1006, reason },
      'bad frame: connection cut by uWS',
    );
  }

  private warn(err: GatewayError, binary: boolean, bytes: number): void {
    this.log.warn({ route: this.route, kind: binary ? 'binary' : 'text', bytes, code: err.code, reason: err.message }, 'bad frame');
  }

  /** Counts one more bad frame in the connection's minute; true when that makes too many. */
  private overLimit(ws: BadFrameCounter): boolean {
    const now = Date.now();
    if (now - ws.badWindowStart > BAD_FRAME_WINDOW_MS) {
      ws.badWindowStart = now;
      ws.badFrames = 0;
    }
    return ++ws.badFrames > this.maxPerMinute;
  }
}
