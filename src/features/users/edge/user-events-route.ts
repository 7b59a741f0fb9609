/**
 * /ws/connect (docs/compat/user-hub.md): JWT-authenticated users receive the events of their user, their
 * roles and everyone, in the reference's `{"type": …, "data": …, "timestamp": …}` frames
 * (`task_event`, `efectivo_event`, `system_event`, `dashboard_event`, `notification`). Events
 * arrive from the bus (control-messages.ts) already encoded once per format and are published to
 * uWS topics `evt.<format>:all`, `evt.<format>:user/<id>`, `evt.<format>:role/<role>`.
 * A heartbeat `{"type":"ping"}` goes out every GATEWAY_HEARTBEAT_MS (30 s).
 *
 * Client frames: {"type":"ping"} → {"type":"pong"}; {"type":"pong"} (heartbeat answer);
 * {"type":"refresh_token","token":"<fresh JWT for the same user>"} → {"type":"token_refreshed"}.
 */
import type { ClientAddresses } from '../../../edge/client-address.js';
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { TokenChecks } from '../../../auth/token-checks.js';
import { tokenFailure } from '../../../auth/token-error-codes.js';
import type { GatewayConfig } from '../../../config/config.js';
import { CLOSE } from '../../../errors/close-codes.js';
import { ERRORS } from '../../../errors/error-codes.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import { CODECS, FORMAT_INDEX, type FormatIndex, WIRE_FORMATS } from '../../../protocol/codec.js';
import type { KeyedBuckets } from '../../../util/token-bucket.js';
import { endSocket } from '../../../edge/close-socket.js';
import { BadFrames } from '../../../edge/bad-frames.js';
import { answerWith, gateUpgrade, socketOptions, takeTypeFrame, type GateDeps } from '../../../edge/connection-guards.js';
import type { SessionExpiry } from '../../../edge/session-expiry.js';
import { refreshSession } from '../../../edge/session-refresh.js';
import { requestToken, upgradeAfter } from '../../../edge/upgrade-after-check.js';
import type { Principal } from '../../../auth/principal.js';
import type { UserSocket, UserSocketData } from './user-socket.js';
import { PresenceCounts } from '../../cluster/presence-counts.js';

const CONNECT_PATH = '/ws/connect';
const HEARTBEAT_TOPICS = ['hb.json', 'hb.msgpack'] as const;

const eventTopic = (format: FormatIndex, target: string) => `evt.${WIRE_FORMATS[format]}:${target}`;

export interface UserEventsDeps {
  readonly config: GatewayConfig;
  readonly checks: TokenChecks;
  readonly expiry: SessionExpiry;
  readonly ipBuckets: KeyedBuckets;
  /** The client address behind trusted proxies (client-address.ts). */
  readonly clients: ClientAddresses;
  readonly stats: RowWriter<EdgeMetric>;
  readonly logger: Logger;
  readonly isClosing: () => boolean;
  /** The channel topics a user's socket joins besides its user/role/all events. */
  readonly channelTopics: (principal: Principal, format: FormatIndex) => string[];
}

/** The users and roles connected to this edge, for /ws/stats and shutdown. */
export class UserEvents {
  readonly sockets = new Set<UserSocket>();
  /** Connections per user on this edge, for the cluster's presence (users-edge.ts sends the diffs to ingest once a second). */
  readonly presence = new PresenceCounts();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly app: TemplatedApp,
    private readonly deps: UserEventsDeps,
  ) {
    this.heartbeat = setInterval(() => this.beat(), deps.config.auth.heartbeatMs);
  }

  private beat(): void {
    const frame = { type: 'ping', timestamp: new Date().toISOString() };
    let sent = 0;
    HEARTBEAT_TOPICS.forEach((topic, f) => {
      sent += this.app.numSubscribers(topic);
      this.app.publish(topic, CODECS[WIRE_FORMATS[f]].encode(frame), f === 1);
    });
    if (sent > 0) this.deps.stats.inc('user_messages_sent_total', sent);
  }

  /** An event from the bus: one publish per format, the bytes encoded once by ingest. */
  deliver(target: string, json: string, msgpack: Uint8Array): void {
    const subscribers = this.app.numSubscribers(eventTopic(FORMAT_INDEX.json, target)) + this.app.numSubscribers(eventTopic(FORMAT_INDEX.msgpack, target));
    if (subscribers === 0) return;
    this.app.publish(eventTopic(FORMAT_INDEX.json, target), json, false);
    this.app.publish(eventTopic(FORMAT_INDEX.msgpack, target), msgpack, true);
    this.deps.stats.inc('user_messages_sent_total', subscribers);
  }

  stats(): { total: number; byRole: Record<string, number>; uniqueUsers: number } {
    const byRole: Record<string, number> = {};
    const users = new Set<string>();
    for (const ws of this.sockets) {
      const principal = ws.auth?.principal;
      if (!principal) continue;
      users.add(principal.userId);
      for (const role of principal.roles) byRole[role] = (byRole[role] ?? 0) + 1;
    }
    return { total: this.sockets.size, byRole, uniqueUsers: users.size };
  }

  closeAll(reason: string = CLOSE.GOING_AWAY.reason): void {
    clearInterval(this.heartbeat);
    for (const ws of [...this.sockets]) if (!ws.closed) endSocket(ws, CLOSE.GOING_AWAY, reason); // not corked: see close-socket.ts
  }

  register(): void {
    const { config, checks, expiry, ipBuckets, clients, stats, logger } = this.deps;
    const gate: GateDeps = { limits: config.limits, ipBuckets, clients, stats, isClosing: this.deps.isClosing };
    const send = (ws: UserSocket, type: string, data: object) => {
      const codec = CODECS[WIRE_FORMATS[ws.format]];
      if (ws.send(codec.encode({ type, data, timestamp: new Date().toISOString() }), codec.binary) === 2) stats.inc('user_send_errors_total');
      else stats.inc('user_messages_sent_total');
    };
    const badFrames = new BadFrames(CONNECT_PATH, config.edge.maxBadFramesPerMinute, stats, logger);
    const sendError = (ws: UserSocket, err: GatewayError) => send(ws, 'error', { code: err.code, message: err.message });
    /** `binary` and `bytes` describe the refresh_token frame, should the refresh be refused (a bad frame). */
    const refresh = (ws: UserSocket, token: unknown, binary: boolean, bytes: number) =>
      void refreshSession(checks, expiry, ws, token, {
        refused: (err) =>
          badFrames.refused(
            ws,
            err,
            binary,
            bytes,
            answerWith(ws, (e) => sendError(ws, e)),
          ),
        refreshed: (expiresAt) => send(ws, 'token_refreshed', { expires_at: new Date(expiresAt).toISOString() }),
      });

    this.app.ws<UserSocketData>(CONNECT_PATH, {
      ...socketOptions(config.edge),
      maxBackpressure: 1024 * 1024, // no scan of its own here: past 1 MiB uWS drops sends (user_send_errors_total)

      upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
        const admitted = gateUpgrade(res, req, gate);
        if (admitted === null) return;
        const { format, echo, protocolHeader } = admitted;
        const token = requestToken(req, protocolHeader);
        upgradeAfter(
          res,
          req,
          context,
          echo,
          async (): Promise<UserSocketData> => {
            let principal: Principal | null = null;
            let requestError: GatewayError | null = null;
            try {
              principal = await checks.jwt(token);
            } catch (err) {
              requestError = tokenFailure(err);
            }
            return {
              format,
              closed: false,
              auth: principal ? { route: 'connect', principal, expiresAt: principal.expiresAt, shareJti: null } : null,
              frameTokens: config.limits.frameBurst,
              frameAt: Date.now(),
              badFrames: 0,
              badWindowStart: 0,
              requestError,
            };
          },
          logger,
        );
      },

      open: (socket) => {
        const ws = socket as UserSocket;
        if (ws.requestError !== null || ws.auth === null) {
          const err = ws.requestError ?? new GatewayError('GW_ERR_TOKEN_MISSING', 'A token is required');
          stats.inc('auth_failures_total');
          send(ws, 'error', { code: err.code, message: err.message });
          endSocket(ws, ERRORS[err.code as keyof typeof ERRORS].close ?? CLOSE.POLICY_VIOLATION, err.message);
          return;
        }
        this.sockets.add(ws);
        stats.inc('user_connections');
        stats.inc('connections_total');
        const p = ws.auth.principal!;
        this.presence.opened(p.userId);
        ws.subscribe(HEARTBEAT_TOPICS[ws.format]);
        ws.subscribe(eventTopic(ws.format, 'all'));
        ws.subscribe(eventTopic(ws.format, `user/${p.userId}`));
        for (const role of p.roles) ws.subscribe(eventTopic(ws.format, `role/${role}`));
        for (const topic of this.deps.channelTopics(p, ws.format)) ws.subscribe(topic);
        expiry.track(ws);
        send(ws, 'connection_established', {
          user_id: p.userId,
          roles: p.roles,
          expires_at: new Date(p.expiresAt).toISOString(),
          heartbeat_interval: config.auth.heartbeatMs / 1000,
        });
      },

      message: (socket, message, isBinary) => {
        const ws = socket as UserSocket;
        const frame = takeTypeFrame(ws, message, isBinary, config, stats, badFrames, (err) => sendError(ws, err));
        if (frame === null) return;
        if (frame.type === 'ping') send(ws, 'pong', {});
        else if (frame.type === 'refresh_token') refresh(ws, frame.token, isBinary, message.byteLength);
      },

      close: (socket, code, message) => {
        const ws = socket as UserSocket;
        logger.debug({ code, reason: Buffer.from(message).toString(), user: ws.auth?.principal?.userId }, 'user connection closed');
        ws.closed = true;
        badFrames.closed(code, message);
        expiry.untrack(ws);
        if (this.sockets.delete(ws)) {
          stats.inc('user_connections', -1);
          this.presence.closed(ws.auth!.principal!.userId);
        }
      },
    });
  }
}
