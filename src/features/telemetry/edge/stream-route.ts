/**
 * The telemetry stream endpoints (docs/compat/gps-stream.md), one behaviour in two variants:
 *   open  /api/v1/stream?device_ids=A,B  (a JWT and ACL checks when GATEWAY_AUTH_REQUIRED has `stream`)
 *   share /api/v1/public/share-location/stream?token=v4.local…[&device_id=X]  (one device, named by the link)
 * The client picks json (default) or msgpack with Sec-WebSocket-Protocol; frames in both
 * directions are described in features/telemetry/stream-actions.ts and docs/guide/telemetry.md.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t } from 'uWebSockets.js';
import type { Principal } from '../../../auth/principal.js';
import { tokenFailure } from '../../../auth/token-error-codes.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { type Codec, CODECS, type FormatIndex, WIRE_FORMATS } from '../../../protocol/codec.js';
import { ALL_DEVICES, parseDeviceIdsQuery } from '../device-ids.js';
import { parseStreamAction, type StreamAction } from '../stream-actions.js';
import { errorEvent } from '../telemetry-envelope.js';
import { BadFrames } from '../../../edge/bad-frames.js';
import { answerWith, gateUpgrade, refuseAtOpen, screenFrame, socketOptions, type GateDeps } from '../../../edge/connection-guards.js';
import type { ConnectionRegistry } from '../../../edge/connection-registry.js';
import type { Keepalive } from './keepalive.js';
import type { SessionAuth } from '../../../edge/session-expiry.js';
import type { SocketRouteDeps } from '../../../edge/route-deps.js';
import { refreshSession } from '../../../edge/session-refresh.js';
import { requestToken, upgradeAfter, upgradeNow } from '../../../edge/upgrade-after-check.js';
import type { SlowConsumers } from './slow-consumers.js';
import type { StreamSocket, StreamSocketData } from './stream-socket.js';
import type { DeviceTopics } from './device-topics.js';
import { SHARE_STREAM_PATH, STREAM_PATH } from '../stream-paths.js';

type StreamVariant = 'open' | 'share';

export interface StreamRouteDeps extends SocketRouteDeps {
  readonly devices: DeviceTopics;
  readonly slow: SlowConsumers;
  readonly connections: ConnectionRegistry<StreamSocket>;
  readonly keepalive: Keepalive;
}

/** What the upgrade learned, before the socket exists. */
interface Admission {
  readonly requested: string[] | null;
  readonly error: GatewayError | null;
  readonly auth: SessionAuth | null;
  /** `batch=1` with `device_ids=*`: one `batch` message per GATEWAY_STREAM_BATCH_MS. */
  readonly batch?: boolean;
}

function refused(error: GatewayError): Admission {
  return { requested: null, error, auth: null };
}

/** `batch=1|true` asks for batches, which only a `device_ids=*` stream has. */
function withBatch(admission: Admission, batch: string | undefined): Admission {
  if (admission.error !== null || batch === undefined || batch === '0' || batch === 'false') return admission;
  if (batch !== '1' && batch !== 'true')
    return refused(new GatewayError('GW_ERR_BATCH_INVALID', `batch must be 0 or 1, got ${JSON.stringify(batch.slice(0, 20))}`));
  if (admission.requested?.[0] !== ALL_DEVICES)
    return refused(new GatewayError('GW_ERR_BATCH_INVALID', 'batch=1 needs device_ids=* (only every-device streams are batched)'));
  return { ...admission, batch: true };
}

export function registerStreamRoute(app: TemplatedApp, variant: StreamVariant, deps: StreamRouteDeps): void {
  const { config, devices, slow, connections, keepalive, expiry, checks, acl, ipBuckets, clients, stats, logger } = deps;
  const maxDevices = config.telemetry.maxDevicesPerConnection;
  const needsJwt = variant === 'open' && config.auth.requiredOn.includes('stream');
  const badFrames = new BadFrames(variant === 'share' ? SHARE_STREAM_PATH : STREAM_PATH, config.edge.maxBadFramesPerMinute, stats, logger);
  const gate: GateDeps = { limits: config.limits, ipBuckets, clients, stats, isClosing: () => connections.closing };
  const codecOf = (ws: StreamSocket): Codec => CODECS[WIRE_FORMATS[ws.format]];
  const sendEvent = (ws: StreamSocket, value: object) => {
    const codec = codecOf(ws);
    ws.send(codec.encode(value), codec.binary);
  };

  /** The first of `ids` the principal may not watch, if any. */
  function forbiddenDevice(principal: Principal | null, ids: readonly string[]): string | undefined {
    return principal === null ? undefined : ids.find((id) => !acl.allows(principal, 'devices', id));
  }

  /** The checks that need a token; run after onAborted, off the synchronous upgrade. */
  async function admit(query: string | undefined, token: string | undefined): Promise<Admission> {
    try {
      if (variant === 'share') {
        // A viewer may name the device it expects (`device_id`); a link for another device is refused.
        const grant = await checks.share(token, query);
        return { requested: [grant.deviceId], error: null, auth: { route: 'stream', principal: null, expiresAt: grant.expiresAt, shareJti: grant.jti } };
      }
      const principal = await checks.jwt(token);
      const requested = parseDeviceIdsQuery(query, maxDevices);
      const denied = forbiddenDevice(principal, requested);
      if (denied !== undefined) return refused(new GatewayError('GW_ERR_FORBIDDEN', `Not allowed to watch device ${JSON.stringify(denied)}`));
      return { requested, error: null, auth: { route: 'stream', principal, expiresAt: principal.expiresAt, shareJti: null } };
    } catch (err) {
      return refused(tokenFailure(err));
    }
  }

  function socketData(format: FormatIndex, admission: Admission): StreamSocketData {
    return {
      format,
      devices: [],
      lagSince: 0,
      pausedAt: null,
      badFrames: 0,
      badWindowStart: 0,
      closed: false,
      auth: admission.auth,
      frameTokens: config.limits.frameBurst,
      frameAt: Date.now(),
      admission: { requested: admission.requested, error: admission.error, batch: admission.batch === true },
    };
  }

  const answer = (ws: StreamSocket) => answerWith(ws, (err) => sendEvent(ws, errorEvent(err.message, err.code)));

  /** The frame (`binary`, `bytes`) was refused: the bad-frame sequence (bad-frames.ts). */
  function badFrame(ws: StreamSocket, err: unknown, binary: boolean, bytes: number): void {
    // Codec errors never quote the frame (protocol/codec.ts), so their message may be shown and logged.
    const known = err instanceof GatewayError ? err : new GatewayError('GW_ERR_FRAME_INVALID', `Frame could not be decoded: ${(err as Error).message}`);
    badFrames.refused(ws, known, binary, bytes, answer(ws));
  }

  function refresh(ws: StreamSocket, token: string, binary: boolean, bytes: number): void {
    void refreshSession(checks, expiry, ws, token, {
      refused: (err) => badFrame(ws, err, binary, bytes),
      refreshed: (expiresAt) => sendEvent(ws, { event: 'token_refreshed', data: { expires_at: new Date(expiresAt).toISOString() } }),
    });
  }

  /** Carries out a decoded action; `binary` and `bytes` describe its frame, should it be refused. */
  function act(ws: StreamSocket, action: StreamAction, binary: boolean, bytes: number): void {
    switch (action.action) {
      case 'ping':
        sendEvent(ws, { event: 'pong', data: {} });
        return;
      case 'refresh_token':
        refresh(ws, action.token, binary, bytes);
        return;
      case 'subscribe': {
        if (variant === 'share') {
          badFrame(ws, new GatewayError('GW_ERR_FORBIDDEN', 'A share link streams only its own device'), binary, bytes);
          return;
        }
        const fresh = action.deviceIds.filter((id) => !ws.devices.includes(id));
        if (ws.devices.length + fresh.length > maxDevices) {
          badFrame(
            ws,
            new GatewayError(
              'GW_ERR_DEVICE_IDS_TOO_MANY',
              `Subscribing would watch ${ws.devices.length + fresh.length} devices (at most ${maxDevices} per connection)`,
            ),
            binary,
            bytes,
          );
          return;
        }
        const denied = forbiddenDevice(ws.auth?.principal ?? null, fresh);
        if (denied !== undefined) {
          // By position: a frame's error never quotes it (bad frames are logged).
          badFrame(ws, new GatewayError('GW_ERR_FORBIDDEN', `Not allowed to watch device_ids[${action.deviceIds.indexOf(denied)}]`), binary, bytes);
          return;
        }
        sendEvent(ws, { event: 'subscribed', data: { device_ids: action.deviceIds } });
        devices.subscribe(ws, fresh);
        return;
      }
      case 'unsubscribe':
        if (variant === 'share') {
          badFrame(ws, new GatewayError('GW_ERR_FORBIDDEN', 'A share link streams only its own device'), binary, bytes);
          return;
        }
        devices.unsubscribe(ws, action.deviceIds);
        sendEvent(ws, { event: 'unsubscribed', data: { device_ids: action.deviceIds } });
    }
  }

  app.ws<StreamSocketData>(variant === 'share' ? SHARE_STREAM_PATH : STREAM_PATH, {
    ...socketOptions(config.edge), // SlowConsumers enforces the backpressure limits (see its header)

    upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t) {
      const admitted = gateUpgrade(res, req, gate);
      if (admitted === null) return;
      const { format, echo, protocolHeader } = admitted;
      const query = req.getQuery(variant === 'share' ? 'device_id' : 'device_ids');
      const batch = variant === 'open' ? req.getQuery('batch') : undefined;
      if (variant === 'open' && !needsJwt) {
        let admission: Admission;
        try {
          admission = { requested: parseDeviceIdsQuery(query, maxDevices), error: null, auth: null };
        } catch (err) {
          admission = refused(err instanceof GatewayError ? err : new GatewayError('GW_ERR_DEVICE_ID_INVALID', 'Invalid device_ids'));
        }
        upgradeNow(res, req, context, echo, socketData(format, withBatch(admission, batch)));
        return;
      }
      // A share link comes only as ?token= (a viewer has no JWT); a stream JWT from any source.
      const token = variant === 'share' ? req.getQuery('token') : requestToken(req, protocolHeader);
      upgradeAfter(res, req, context, echo, async () => socketData(format, withBatch(await admit(query, token), batch)), logger);
    },

    open(socket) {
      const ws = socket as StreamSocket;
      connections.add(ws);
      stats.inc('connections');
      stats.inc('connections_total');
      ws.subscribe(keepalive.topic(ws.format));
      const admission = ws.admission!;
      ws.admission = null;
      if (admission.error !== null) {
        // docs/compat/gps-stream.md: an `error` event, then the connection ends (1008 for tokens, 4500 for requests).
        const err = admission.error;
        refuseAtOpen(ws, err, stats, (e) => sendEvent(ws, errorEvent(e.message, e.code)));
        return;
      }
      const requested = admission.requested!;
      expiry.track(ws);
      sendEvent(ws, {
        event: 'subscribed',
        data: {
          device_ids: requested,
          ...(admission.batch ? { batch_ms: config.telemetry.streamBatchMs } : {}),
          ...(ws.auth ? { expires_at: new Date(ws.auth.expiresAt).toISOString() } : {}),
        },
      });
      devices.subscribe(ws, requested, admission.batch);
    },

    message(socket, message, isBinary) {
      const ws = socket as StreamSocket;
      const bytes = message.byteLength;
      if (!screenFrame(ws, bytes, isBinary, config.limits, config.edge.maxFrameBytes, stats, badFrames, answer(ws))) return;
      let action: StreamAction;
      try {
        action = parseStreamAction(codecOf(ws).decode(message, isBinary), maxDevices);
      } catch (err) {
        badFrame(ws, err, isBinary, bytes);
        return;
      }
      act(ws, action, isBinary, bytes);
    },

    drain(socket) {
      slow.drain(socket as StreamSocket);
    },

    close(socket, code, message) {
      const ws = socket as StreamSocket;
      ws.closed = true;
      badFrames.closed(code, message);
      connections.delete(ws);
      slow.closed(ws);
      expiry.untrack(ws);
      stats.inc('connections', -1);
      devices.release(ws);
    },
  });
}
