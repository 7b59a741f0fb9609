/**
 * /api/v1/stream: GPS telemetry per device (reference/001). Query `device_ids=A,B`; the client
 * picks json (default) or msgpack with Sec-WebSocket-Protocol; frames in both directions are
 * described in protocol/stream-actions.ts and the README.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/config.js';
import { CloseCode } from '../errors/close-codes.js';
import { ERRORS } from '../errors/error-codes.js';
import { GatewayError } from '../errors/gateway-error.js';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import { CODECS, FORMAT_INDEX, WIRE_FORMATS, type Codec, type WireFormat } from '../protocol/codec.js';
import { parseDeviceIdsQuery } from '../protocol/device-ids.js';
import { parseStreamAction } from '../protocol/stream-actions.js';
import { negotiate } from '../protocol/subprotocol.js';
import { errorEvent } from '../protocol/telemetry-envelope.js';
import { rejectUpgrade } from './http-response.js';
import type { ConnectionRegistry } from './connection-registry.js';
import type { SlowConsumers } from './slow-consumers.js';
import type { StreamSocket, StreamSocketData } from './stream-socket.js';
import type { TelemetryHub } from './telemetry-hub.js';

export const STREAM_PATH = '/api/v1/stream';
const SUBPROTOCOLS: Readonly<Record<string, WireFormat>> = { json: 'json', msgpack: 'msgpack' };
/** uWS's own frame limit; frames between GATEWAY_MAX_FRAME_BYTES and this get our 1009 close. */
export const UWS_MAX_PAYLOAD = 64 * 1024;
const BAD_FRAME_WINDOW_MS = 60_000;

export interface StreamRouteDeps {
  readonly config: GatewayConfig;
  readonly hub: TelemetryHub;
  readonly slow: SlowConsumers;
  readonly connections: ConnectionRegistry<StreamSocket>;
  readonly stats: RowWriter<EdgeMetric>;
  readonly logger: Logger;
}

export function registerStreamRoute(app: TemplatedApp, deps: StreamRouteDeps): void {
  const { config, hub, slow, connections, stats, logger } = deps;
  const maxDevices = config.telemetry.maxDevicesPerConnection;
  const badFrameLog = new RateLimitedLog(logger);
  const codecOf = (ws: StreamSocket): Codec => CODECS[WIRE_FORMATS[ws.format]];
  const sendEvent = (ws: StreamSocket, value: object) => {
    const codec = codecOf(ws);
    ws.send(codec.encode(value), codec.binary);
  };

  function badFrame(ws: StreamSocket, err: unknown): void {
    stats.inc('bad_frames_total');
    const known = err instanceof GatewayError ? err : new GatewayError('GW_ERR_FRAME_INVALID', `Frame could not be decoded: ${(err as Error).message}`);
    badFrameLog.warn({ code: known.code, detail: known.message }, 'bad frame from client');
    sendEvent(ws, errorEvent(known.message, known.code));
    const now = Date.now();
    if (now - ws.badWindowStart > BAD_FRAME_WINDOW_MS) {
      ws.badWindowStart = now;
      ws.badFrames = 0;
    }
    if (++ws.badFrames > config.edge.maxBadFramesPerMinute) {
      stats.inc('bad_frame_closes_total');
      sendEvent(ws, errorEvent(`More than ${config.edge.maxBadFramesPerMinute} bad frames in a minute`, 'GW_ERR_TOO_MANY_BAD_FRAMES'));
      ws.end(CloseCode.TOO_MANY_BAD_FRAMES, 'too many bad frames');
    }
  }

  app.ws<StreamSocketData>(STREAM_PATH, {
    compression: 0,
    maxPayloadLength: Math.max(UWS_MAX_PAYLOAD, config.edge.maxFrameBytes + 1),
    idleTimeout: config.edge.idleTimeoutS,
    sendPingsAutomatically: true,
    // Unlimited in uWS; SlowConsumers enforces the soft and hard limits (see its header).
    maxBackpressure: 0,
    closeOnBackpressureLimit: 0,

    upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t) {
      if (connections.closing) {
        stats.inc('upgrades_rejected_total');
        rejectUpgrade(res, 'GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down');
        return;
      }
      const negotiation = negotiate(req.getHeader('sec-websocket-protocol'), SUBPROTOCOLS, 'json');
      if (!negotiation.ok) {
        stats.inc('upgrades_rejected_total');
        rejectUpgrade(res, 'GW_ERR_UNSUPPORTED_SUBPROTOCOL',
          `Unsupported Sec-WebSocket-Protocol ${JSON.stringify(negotiation.offered.join(', ').slice(0, 100))}; this endpoint speaks ${Object.keys(SUBPROTOCOLS).join(', ')}`);
        return;
      }
      let requested: string[] | null = null;
      let requestError: GatewayError | null = null;
      try {
        requested = parseDeviceIdsQuery(req.getQuery('device_ids'), maxDevices);
      } catch (err) {
        requestError = err instanceof GatewayError ? err : new GatewayError('GW_ERR_DEVICE_ID_INVALID', 'Invalid device_ids');
      }
      const data: StreamSocketData = {
        format: FORMAT_INDEX[negotiation.chosen], devices: [], lagging: false, lagSince: 0, pausedAt: null,
        badFrames: 0, badWindowStart: 0, closed: false, requested, requestError,
      };
      res.upgrade(data, req.getHeader('sec-websocket-key'), negotiation.echo, req.getHeader('sec-websocket-extensions'), context);
    },

    open(socket) {
      const ws = socket as StreamSocket;
      connections.add(ws);
      stats.inc('connections');
      stats.inc('connections_total');
      ws.subscribe(connections.keepaliveTopic(ws.format));
      if (ws.requestError !== null) {
        // Reference/001: an `error` event, then the connection ends. 4500: do not retry unchanged.
        const err = ws.requestError;
        ws.requestError = null;
        stats.inc('invalid_requests_total');
        sendEvent(ws, errorEvent(err.message, err.code));
        ws.end(ERRORS[err.code as keyof typeof ERRORS].close ?? CloseCode.INVALID_REQUEST, err.message.slice(0, 100));
        return;
      }
      const requested = ws.requested!;
      ws.requested = null;
      sendEvent(ws, { event: 'subscribed', data: { device_ids: requested } });
      hub.subscribe(ws, requested);
    },

    message(socket, message, isBinary) {
      const ws = socket as StreamSocket;
      if (message.byteLength > config.edge.maxFrameBytes) {
        stats.inc('bad_frames_total');
        stats.inc('bad_frame_closes_total');
        const text = `Frame of ${message.byteLength} bytes is larger than ${config.edge.maxFrameBytes}`;
        sendEvent(ws, errorEvent(text, 'GW_ERR_FRAME_TOO_BIG'));
        ws.end(CloseCode.MESSAGE_TOO_BIG, 'frame too big');
        return;
      }
      let action;
      try {
        action = parseStreamAction(codecOf(ws).decode(message, isBinary), maxDevices);
      } catch (err) {
        badFrame(ws, err);
        return;
      }
      switch (action.action) {
        case 'ping':
          sendEvent(ws, { event: 'pong', data: {} });
          break;
        case 'subscribe': {
          const fresh = action.deviceIds.filter((id) => !ws.devices.includes(id));
          if (ws.devices.length + fresh.length > maxDevices) {
            badFrame(ws, new GatewayError('GW_ERR_DEVICE_IDS_TOO_MANY', `Subscribing would watch ${ws.devices.length + fresh.length} devices (at most ${maxDevices} per connection)`));
            return;
          }
          sendEvent(ws, { event: 'subscribed', data: { device_ids: action.deviceIds } });
          hub.subscribe(ws, fresh);
          break;
        }
        case 'unsubscribe':
          hub.unsubscribe(ws, action.deviceIds);
          sendEvent(ws, { event: 'unsubscribed', data: { device_ids: action.deviceIds } });
          break;
      }
    },

    drain(socket) {
      slow.drain(socket as StreamSocket);
    },

    close(socket) {
      const ws = socket as StreamSocket;
      ws.closed = true;
      connections.delete(ws);
      slow.closed(ws);
      stats.inc('connections', -1);
      hub.release(ws);
    },
  });
}
