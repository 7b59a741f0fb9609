/**
 * The channel endpoints: one behaviour, two envelopes.
 *   /api/v1/ws?channel=sensors     entity_event frames (docs/compat/sensor-events.md); the channel defaults to `general`
 *   /api/v1/ws/secure?channel=…    the same, always with a JWT whose roles may see the channel (docs/compat/sensor-events.md)
 *   /ws/{channel}                  realtime_update and notification frames (docs/compat/pet-care.md)
 *
 * Query: `since=<offset>&epoch=<epoch>` resumes after the last event the client saw (ChannelHistory.recover);
 * `user_id=<id>` (only when channels need no token; otherwise the token's user) also delivers that
 * user's notifications. A JWT is required when GATEWAY_AUTH_REQUIRED lists `channels`, and the ACL
 * must then grant the channel.
 *
 * Server frames: connection_established {channel, epoch, offset, recovered?, replayed?, reason?},
 * on /api/v1/ws then `stats` (docs/compat/sensor-events.md's test counts "connection + stats + 3 CRUD"), the
 * events, pong, token_refreshed, error. Client frames: ping, pong, refresh_token (schema below).
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t } from 'uWebSockets.js';
import { tokenFailure } from '../../../auth/token-error-codes.js';
import { ENVELOPE, frameIndex, type ChannelEnvelope } from '../envelopes.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { CODECS, FORMAT_INDEX, type FormatIndex, WIRE_FORMATS } from '../../../protocol/codec.js';
import type { ChannelSocket, ChannelSocketData } from './channel-socket.js';
import { BadFrames } from '../../../edge/bad-frames.js';
import { answerWith, gateUpgrade, refuseAtOpen, socketOptions, takeTypeFrame, type GateDeps } from '../../../edge/connection-guards.js';
import type { ConnectionRegistry } from '../../../edge/connection-registry.js';
import type { ChannelHistory, Recovery, Since } from './channel-history.js';
import { channelTopic, userTopic } from '../channel-topics.js';
import { rejectUpgrade } from '../../../edge/http-response.js';
import { pathParameter } from '../../../edge/request-encoding.js';
import type { SessionAuth } from '../../../edge/session-expiry.js';
import type { SocketRouteDeps } from '../../../edge/route-deps.js';
import { refreshSession } from '../../../edge/session-refresh.js';
import { requestToken, upgradeAfter, upgradeNow } from '../../../edge/upgrade-after-check.js';

const CHANNEL_PATHS: Readonly<Record<ChannelEnvelope, string>> = { [ENVELOPE.ENTITY_EVENT]: '/api/v1/ws', [ENVELOPE.REALTIME_UPDATE]: '/ws/:channel' };
/** docs/compat/sensor-events.md's authenticated variant of /api/v1/ws. */
const SECURE_CHANNEL_PATH = '/api/v1/ws/secure';

const USER_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;
const EPOCH = /^[A-Za-z0-9_-]{1,64}$/;
/** How long a `since` ahead of this edge's head waits for the edge to reach it (docs/design/cluster-store.md §2.6). */
const RECOVERY_WAIT_MS = 2_000;

export interface ChannelRouteDeps extends SocketRouteDeps {
  readonly history: ChannelHistory;
  /** Asks ingest to read the store's heads now (a `since` ahead of this edge). */
  readonly catchUp: () => void;
  readonly sockets: ConnectionRegistry<ChannelSocket>;
}

/** `since` and `epoch` from the query: both or neither. */
export function parseSince(since: string | undefined, epoch: string | undefined): Since | null {
  if (since === undefined && epoch === undefined) return null;
  if (since === undefined || !/^\d{1,15}$/.test(since))
    throw new GatewayError(
      'GW_ERR_SINCE_INVALID',
      `since must be the offset of the last event seen, a whole number (got ${JSON.stringify((since ?? '').slice(0, 20))})`,
    );
  if (epoch === undefined || !EPOCH.test(epoch))
    throw new GatewayError('GW_ERR_SINCE_INVALID', 'since needs the epoch it came with (epoch=…, as in connection_established and every event)');
  return { offset: Number(since), epoch };
}

interface Admission {
  readonly channel: string;
  readonly userId: string | null;
  readonly since: Since | null;
  readonly error: GatewayError | null;
  readonly auth: SessionAuth | null;
}

/**
 * Registers the endpoint of `envelope`; `secure` (ENVELOPE.ENTITY_EVENT only) registers /api/v1/ws/secure,
 * which needs a JWT whatever GATEWAY_AUTH_REQUIRED says.
 */
export function registerChannelRoute(app: TemplatedApp, envelope: ChannelEnvelope, deps: ChannelRouteDeps, secure = false): void {
  const { config, history, sockets, expiry, checks, acl, ipBuckets, clients, stats, logger } = deps;
  const needsJwt = secure || config.auth.requiredOn.includes('channels');
  const path = secure ? SECURE_CHANNEL_PATH : CHANNEL_PATHS[envelope];
  const badFrames = new BadFrames(
    secure ? SECURE_CHANNEL_PATH : envelope === ENVELOPE.ENTITY_EVENT ? '/api/v1/ws' : '/ws/{channel}',
    config.edge.maxBadFramesPerMinute,
    stats,
    logger,
  );
  const gate: GateDeps = { limits: config.limits, ipBuckets, clients, stats, isClosing: () => sockets.closing };

  const send = (ws: ChannelSocket, value: object) => {
    const codec = CODECS[WIRE_FORMATS[ws.format]];
    ws.send(codec.encode({ ...value, timestamp: new Date().toISOString() }), codec.binary);
  };
  const sendError = (ws: ChannelSocket, err: GatewayError) => send(ws, { type: 'error', data: { code: err.code, message: err.message } });

  /** Checks that need no token: channel name, since, user_id. */
  function requested(channel: string, query: { since?: string; epoch?: string; userId?: string }): Omit<Admission, 'auth' | 'error'> {
    if (!history.has(channel)) {
      throw new GatewayError('GW_ERR_CHANNEL_UNKNOWN', `No channel ${JSON.stringify(channel.slice(0, 64))}; channels: ${history.channelNames.join(', ')}`);
    }
    const since = parseSince(query.since, query.epoch);
    if (query.userId !== undefined && !USER_ID.test(query.userId))
      throw new GatewayError('GW_ERR_FRAME_INVALID', 'user_id must be 1-128 letters, digits or _ . : @ -');
    return { channel, since, userId: query.userId ?? null };
  }

  function socketData(format: FormatIndex, admission: Admission): ChannelSocketData {
    return {
      format,
      envelope,
      channel: admission.channel,
      userId: admission.userId,
      auth: admission.auth,
      closed: false,
      lagSince: 0,
      frameTokens: config.limits.frameBurst,
      frameAt: Date.now(),
      badFrames: 0,
      badWindowStart: 0,
      admission: { since: admission.since, error: admission.error },
      cancelWait: null,
    };
  }

  /** `binary` and `bytes` describe the refresh_token frame, should the refresh be refused (a bad frame). */
  function refresh(ws: ChannelSocket, token: unknown, binary: boolean, bytes: number): void {
    void refreshSession(checks, expiry, ws, token, {
      refused: (err) =>
        badFrames.refused(
          ws,
          err,
          binary,
          bytes,
          answerWith(ws, (e) => sendError(ws, e)),
        ),
      refreshed: (expiresAt) => send(ws, { type: 'token_refreshed', data: { expires_at: new Date(expiresAt).toISOString() } }),
    });
  }

  /**
   * docs/compat/sensor-events.md's stats frame, right after connection_established on /api/v1/ws: the fields of
   * GET /api/v1/ws/stats/{channel}, under `data` (no top-level `offset`: it is not an event).
   */
  function sendStats(ws: ChannelSocket): void {
    const channel = ws.channel;
    send(ws, {
      type: 'stats',
      data: {
        channel,
        connections: history.connections.get(channel) ?? 0,
        epoch: history.epoch,
        offset: history.head(channel),
        oldest_offset: history.oldest(channel),
        history: history.historyLength(channel),
      },
    });
  }

  /**
   * Sends connection_established, stats (/api/v1/ws), the replay if any, and subscribes: one
   * synchronous turn. A `since` ahead of this edge's head waits for it first (awaitHead).
   */
  function start(ws: ChannelSocket, since: Since | null): void {
    const recovery = history.recover(ws.channel, since);
    if (recovery.kind === 'ahead') return awaitHead(ws, since!);
    const position = { channel: ws.channel, epoch: history.epoch, offset: history.head(ws.channel) };
    let replay: Extract<Recovery, { kind: 'replay' }>['entries'] = [];
    if (recovery.kind === 'fresh') {
      send(ws, { type: 'connection_established', ...position });
    } else if (recovery.kind === 'unrecovered') {
      stats.inc('channel_unrecovered_total');
      send(ws, { type: 'connection_established', ...position, recovered: false, reason: recovery.reason });
    } else {
      replay = recovery.entries.filter((e) => e.userId === null || e.userId === ws.userId);
      stats.inc('channel_replays_total');
      send(ws, { type: 'connection_established', ...position, recovered: true, replayed: replay.length });
    }
    if (envelope === ENVELOPE.ENTITY_EVENT) sendStats(ws);
    if (replay.length > 0) {
      const index = frameIndex(ws.envelope, ws.format);
      for (const entry of replay) ws.send(entry.frames[index], ws.format === FORMAT_INDEX.msgpack);
      stats.inc('channel_deliveries_total', replay.length);
    }
    ws.subscribe(channelTopic(ws.envelope, ws.format, ws.channel));
    if (ws.userId !== null) ws.subscribe(userTopic(ws.envelope, ws.format, ws.channel, ws.userId));
  }

  /**
   * `since` is past this edge's head: another edge thread or node gave that offset and this one has
   * not taken the same events yet. Ingest is asked to read the store's heads at once (catch-up);
   * the socket waits (at most RECOVERY_WAIT_MS) and starts in the turn the events arrive; past the
   * wait the position was never given: GW_ERR_SINCE_INVALID (docs/design/cluster-store.md §2.6).
   */
  function awaitHead(ws: ChannelSocket, since: Since): void {
    stats.inc('channel_recovery_waits_total');
    deps.catchUp();
    ws.cancelWait = history.whenAt(ws.channel, since.offset, RECOVERY_WAIT_MS, (reached) => {
      ws.cancelWait = null;
      if (ws.closed) return;
      if (reached) return begin(ws, since);
      const head = history.head(ws.channel);
      refuseAtOpen(
        ws,
        new GatewayError(
          'GW_ERR_SINCE_INVALID',
          `since ${since.offset} is ahead of channel ${ws.channel}'s last offset ${head} (waited ${RECOVERY_WAIT_MS} ms)`,
        ),
        stats,
        (err) => sendError(ws, err),
      );
    });
  }

  /** start() in one cork; false (and the socket refused) when it threw. */
  function begin(ws: ChannelSocket, since: Since | null): boolean {
    try {
      ws.cork(() => start(ws, since));
      return true;
    } catch (err) {
      const error = err instanceof GatewayError ? err : new GatewayError('GW_ERR_INTERNAL', 'Internal error');
      if (!(err instanceof GatewayError)) logger.error({ err }, 'channel subscription failed');
      refuseAtOpen(ws, error, stats, (e) => sendError(ws, e));
      return false;
    }
  }

  app.ws<ChannelSocketData>(path, {
    ...socketOptions(config.edge), // ChannelBackpressure closes slow sockets with 4000 instead of dropping

    upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t) {
      const admitted = gateUpgrade(res, req, gate);
      if (admitted === null) return;
      if (!history.ready) {
        rejectUpgrade(res, 'GW_ERR_NOT_READY', 'Channels are starting; retry shortly');
        return;
      }
      const { format, echo, protocolHeader } = admitted;
      const channel = envelope === ENVELOPE.ENTITY_EVENT ? (req.getQuery('channel') ?? 'general') : pathParameter(req, 0);
      const query = { since: req.getQuery('since'), epoch: req.getQuery('epoch'), userId: needsJwt ? undefined : req.getQuery('user_id') };
      let base: Omit<Admission, 'auth' | 'error'>;
      try {
        base = requested(channel, query);
      } catch (err) {
        const error = err instanceof GatewayError ? err : new GatewayError('GW_ERR_FRAME_INVALID', 'Invalid request');
        upgradeNow(res, req, context, echo, socketData(format, { channel: '', userId: null, since: null, auth: null, error }));
        return;
      }
      if (!needsJwt) {
        upgradeNow(res, req, context, echo, socketData(format, { ...base, auth: null, error: null }));
        return;
      }
      const token = requestToken(req, protocolHeader);
      upgradeAfter(
        res,
        req,
        context,
        echo,
        async () => {
          try {
            const principal = await checks.jwt(token);
            if (!acl.allows(principal, 'channels', base.channel)) {
              return socketData(format, {
                ...base,
                auth: null,
                error: new GatewayError('GW_ERR_FORBIDDEN', `Not allowed to subscribe to channel ${base.channel}`),
              });
            }
            const auth: SessionAuth = { route: 'channel', principal, expiresAt: principal.expiresAt, shareJti: null };
            return socketData(format, { ...base, userId: principal.userId, auth, error: null });
          } catch (err) {
            return socketData(format, { ...base, auth: null, error: tokenFailure(err) });
          }
        },
        logger,
      );
    },

    open(socket) {
      const ws = socket as ChannelSocket;
      const admission = ws.admission!;
      ws.admission = null;
      if (admission.error !== null) return refuseAtOpen(ws, admission.error, stats, (err) => sendError(ws, err));
      sockets.add(ws);
      history.opened(ws.channel);
      stats.inc('channel_connections');
      stats.inc('connections_total');
      if (begin(ws, admission.since) && ws.auth) expiry.track(ws);
    },

    message(socket, message, isBinary) {
      const ws = socket as ChannelSocket;
      const frame = takeTypeFrame(ws, message, isBinary, config, stats, badFrames, (err) => sendError(ws, err));
      if (frame === null) return;
      if (frame.type === 'ping') send(ws, { type: 'pong' });
      else if (frame.type === 'refresh_token') refresh(ws, frame.token, isBinary, message.byteLength);
    },

    close(socket, code, message) {
      const ws = socket as ChannelSocket;
      ws.closed = true;
      ws.cancelWait?.();
      ws.cancelWait = null;
      badFrames.closed(code, message);
      if (!sockets.delete(ws)) return; // refused at open: never counted
      expiry.untrack(ws);
      history.closed(ws.channel);
      stats.inc('channel_connections', -1);
    },
  });
}
