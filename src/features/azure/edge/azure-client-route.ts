/**
 * Azure Web PubSub's client endpoint, self-hosted (docs/compat/azure-webpubsub.md §3-§6):
 *
 *   /client/hubs/{hub}  or  /client?hub={hub}     token: access_token=… or Authorization: Bearer …
 *
 * Subprotocols: json.reliable.webpubsub.azure.v1 (the official client's default),
 * json.webpubsub.azure.v1, or none (a simple client: raw payloads only; webpubsub_mode=sendToGroup
 * &group=… publishes its frames to that group, the default sendEvent hands them to backends on
 * MQTT). A reliable client resumes its session with awps_connection_id + awps_reconnection_token,
 * on whichever edge thread it lands (a session another thread holds is handed over through ingest);
 * when that is impossible the socket is opened and closed with 1008, so the client starts afresh.
 *
 * Client requests are checked against the connection's roles: joinGroup/leaveGroup need
 * webpubsub.joinLeaveGroup[.<group>], sendToGroup needs webpubsub.sendToGroup[.<group>]; a refused
 * request with an ackId gets `{"type":"ack","success":false,"error":{"name":"Forbidden"}}`.
 * Group messages and membership changes cross the bus (<GATEWAY_AZURE_TOPIC>/<hub>), so members
 * on other threads and nodes get them; `event` requests go to <GATEWAY_AZURE_TOPIC>/<hub>/events/<event>,
 * and, with the hub's event handlers set (GATEWAY_AZURE_EVENT_HANDLERS), to its upstream, whose answer
 * goes back to the client before the ack; the `connect` event there may set the userId, groups,
 * roles and subprotocol of a new connection, or refuse it (azure-upstream.ts).
 */
import type { ClientAddresses } from '../../../edge/client-address.js';
import { randomBytes } from 'node:crypto';
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { AzureAccessTokens } from '../access-tokens.js';
import { parseClientRequest, type ClientRequest } from '../client-requests.js';
import { encodeAzureMessage, MAX_MESSAGE_BYTES, servesHub, type AzureCommand } from '../commands.js';
import { ackFrame, PONG_FRAME, renderMessage, type AckError, type DataType } from '../frames.js';
import { allows } from '../permissions.js';
import type { GatewayConfig } from '../../../config/config.js';
import { CLOSE } from '../../../errors/close-codes.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import { parseOffered } from '../../../protocol/subprotocol.js';
import type { KeyedBuckets } from '../../../util/token-bucket.js';
import {
  AzureConnection,
  RELIABLE,
  SIMPLE,
  SUBPROTOCOL_KINDS,
  type AzureSocket,
  type AzureSocketData,
  type ClientKind,
  type SimpleMode,
} from './azure-connection.js';
import type { AzureSessions } from './azure-sessions.js';
import type { AzureDirectory } from './azure-directory.js';
import type { AzureUpstream, ConnectContext, UserEventAnswer } from './azure-upstream.js';
import { endSocket } from '../../../edge/close-socket.js';
import { BadFrames, uwsFrameCap, type FrameAnswer } from '../../../edge/bad-frames.js';
import { admitUpgrade, socketOptions, takeFrame } from '../../../edge/connection-guards.js';
import { bearerToken } from '../../../edge/http-request.js';
import { rejectUpgrade } from '../../../edge/http-response.js';
import { pathParameter } from '../../../edge/request-encoding.js';
import { upgradeAfter, upgradeNow } from '../../../edge/upgrade-after-check.js';

export interface AzureClientRouteDeps {
  readonly config: GatewayConfig;
  readonly sessions: AzureSessions;
  /** Asks ingest for a session another edge thread holds (a resume that landed here). */
  readonly directory: AzureDirectory;
  readonly tokens: AzureAccessTokens;
  readonly ipBuckets: KeyedBuckets;
  /** The client address behind trusted proxies (client-address.ts). */
  readonly clients: ClientAddresses;
  readonly stats: RowWriter<EdgeMetric>;
  readonly logger: Logger;
  readonly isClosing: () => boolean;
  /** Publishes on the bus (QoS 1). */
  readonly publish: (topic: string, payload: string | Uint8Array) => void;
  /** The hubs' upstream event handlers (GATEWAY_AZURE_EVENT_HANDLERS); absent: none. */
  readonly upstream?: AzureUpstream;
}

const newId = () => randomBytes(15).toString('base64url');

export function registerAzureClientRoute(app: TemplatedApp, deps: AzureClientRouteDeps): void {
  const { config, sessions: azure, tokens, stats, logger, upstream } = deps;
  const badFrames = new BadFrames('/client/hubs/{hub}', config.edge.maxBadFramesPerMinute, stats, logger);
  const gate = { limits: config.limits, ipBuckets: deps.ipBuckets, clients: deps.clients, stats, isClosing: deps.isClosing };
  const topic = config.azure.topic;

  const socketData = (conn: AzureConnection, resume: boolean, refuse: string | null): AzureSocketData => ({
    conn,
    resume,
    refuse,
    replaced: false,
    frameTokens: config.limits.frameBurst,
    frameAt: 0,
  });

  /** A resume of a session no thread holds: the socket opens and closes with 1008, and the client starts afresh. */
  function recoveryFailed(hubName: string): AzureSocketData {
    stats.inc('azure_connection_errors_total');
    const placeholder = new AzureConnection('', hubName, null, [], RELIABLE, null, null);
    return socketData(placeholder, false, 'Recovery failed: the session is unknown or expired');
  }

  function refused(res: HttpResponse, err: GatewayError): void {
    stats.inc('azure_connection_errors_total');
    stats.inc('upgrades_rejected_total');
    rejectUpgrade(res, err.code, err.message);
  }

  function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t, hubName: string): void {
    if (!admitUpgrade(res, req, gate)) return;
    if (!servesHub(config.azure.hubs, hubName)) {
      refused(res, new GatewayError('GW_ERR_HUB_UNKNOWN', `Hub ${JSON.stringify(hubName.slice(0, 130))} is not served here (GATEWAY_AZURE_HUBS)`));
      return;
    }
    const offered = parseOffered(req.getHeader('sec-websocket-protocol'));
    const echo = offered.find((p) => Object.hasOwn(SUBPROTOCOL_KINDS, p)) ?? '';
    const kind: ClientKind = echo === '' ? SIMPLE : SUBPROTOCOL_KINDS[echo];
    if (echo === '' && offered.some((p) => p.startsWith('protobuf.'))) {
      refused(
        res,
        new GatewayError(
          'GW_ERR_UNSUPPORTED_SUBPROTOCOL',
          'The protobuf subprotocols are not supported; use json.reliable.webpubsub.azure.v1 or json.webpubsub.azure.v1',
        ),
      );
      return;
    }

    const resumeId = req.getQuery('awps_connection_id');
    const resumeToken = req.getQuery('awps_reconnection_token');
    if (kind === RELIABLE && resumeId !== undefined && resumeToken !== undefined) {
      const session = azure.session(hubName, resumeId, resumeToken);
      if (session !== null) upgradeNow(res, req, context, echo, socketData(session, true, null));
      // another thread or node may hold it (ingest answers null at once when none does)
      else
        upgradeAfter(
          res,
          req,
          context,
          echo,
          async () => {
            const handed = await deps.directory.handover(hubName, resumeId, resumeToken);
            return handed === null ? recoveryFailed(hubName) : socketData(handed, true, null);
          },
          logger,
        );
      return;
    }

    const token = req.getQuery('access_token') ?? bearerToken(req.getHeader('authorization'));
    const sendToGroup = req.getQuery('webpubsub_mode') === 'sendToGroup' ? { group: req.getQuery('group') ?? '' } : null;
    // What the upstream `connect` event carries, copied now (req dies with this handler)
    const connectContext = upstream?.serves(hubName) ? connectRequest(req, offered) : null;
    upgradeAfter(
      res,
      req,
      context,
      (data: AzureSocketData) => data.conn.subprotocol,
      async () => {
        let grant;
        try {
          grant = await tokens.verifyClient(token, hubName);
        } catch (err) {
          stats.inc('azure_connection_errors_total');
          stats.inc('auth_failures_total');
          throw err;
        }
        if (deps.isClosing()) throw new GatewayError('GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down');
        const id = newId();
        let answer = null;
        if (connectContext !== null) {
          try {
            answer = await upstream!.connect({ ...connectContext, hub: hubName, connectionId: id, userId: grant.userId, claims: grant.claims ?? {} });
          } catch (err) {
            stats.inc('azure_connection_errors_total');
            throw err;
          }
          if (deps.isClosing()) throw new GatewayError('GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down');
        }
        // The handler may pick one of the offered subprotocols (a custom one makes a simple client)
        const chosen = answer?.subprotocol !== undefined && offered.includes(answer.subprotocol) ? answer.subprotocol : echo;
        const finalKind: ClientKind = Object.hasOwn(SUBPROTOCOL_KINDS, chosen) ? SUBPROTOCOL_KINDS[chosen] : SIMPLE;
        const mode: SimpleMode = finalKind === SIMPLE ? sendToGroup : null;
        const conn = new AzureConnection(
          id,
          hubName,
          answer?.userId ?? grant.userId,
          answer === null ? grant.roles : [...new Set([...grant.roles, ...answer.roles])],
          finalKind,
          finalKind === RELIABLE ? randomBytes(24).toString('base64url') : null,
          mode,
        );
        conn.subprotocol = chosen;
        conn.upstreamState = answer?.state ?? null;
        for (const group of grant.groups) conn.groups.add(group);
        for (const group of answer?.groups ?? []) conn.groups.add(group);
        return socketData(conn, false, null);
      },
      logger,
    );
  }

  const ack = (ws: AzureSocket, ackId: number | undefined, error?: AckError, message?: string) => {
    if (ackId !== undefined) ws.send(ackFrame(ackId, error, message), false);
  };

  const publishCommand = (hubName: string, command: AzureCommand, payload: Uint8Array | string) =>
    deps.publish(`${topic}/${hubName}`, encodeAzureMessage(command, payload));
  const publishEvent = (conn: AzureConnection, event: string, dataType: DataType, data: string) =>
    deps.publish(`${topic}/${conn.hub}/events/${event}`, JSON.stringify({ hub: conn.hub, event, connectionId: conn.id, userId: conn.userId, dataType, data }));

  function request(ws: AzureSocket, conn: AzureConnection, r: ClientRequest): void {
    switch (r.type) {
      case 'ping':
        ws.send(PONG_FRAME, false);
        return;
      case 'sequenceAck':
        if (conn.kind === RELIABLE) conn.acknowledge(r.sequenceId);
        return;
      case 'invoke':
        ws.send(
          JSON.stringify({
            type: 'invokeResponse',
            invocationId: r.invocationId,
            success: false,
            error: { name: 'NotSupported', message: 'No upstream handler: client events go to MQTT (<GATEWAY_AZURE_TOPIC>/<hub>/events/<event>)' },
          }),
          false,
        );
        return;
      case 'cancelInvocation':
        return;
      case 'joinGroup':
      case 'leaveGroup':
      case 'sendToGroup':
      case 'event':
        break; // acknowledged requests: the duplicate check below, then the second switch
    }
    if (r.ackId !== undefined && !conn.firstTime(r.ackId)) {
      ack(ws, r.ackId, 'Duplicate', `Message with ack-id: ${r.ackId} has been processed`);
      return;
    }
    switch (r.type) {
      case 'joinGroup':
      case 'leaveGroup':
        if (!allows(conn.roles, 'joinLeaveGroup', r.group)) {
          ack(ws, r.ackId, 'Forbidden', `The connection has no permission to join or leave group ${r.group}`);
          return;
        }
        azure.joinOrLeave(conn, r.group, r.type === 'joinGroup');
        ack(ws, r.ackId);
        return;
      case 'sendToGroup':
        if (!allows(conn.roles, 'sendToGroup', r.group)) {
          ack(ws, r.ackId, 'Forbidden', `The connection has no permission to send to group ${r.group}`);
          return;
        }
        publishCommand(
          conn.hub,
          {
            op: 'send',
            to: { kind: 'group', name: r.group },
            dataType: r.dataType,
            from: { connectionId: conn.id, userId: conn.userId },
            noEcho: r.noEcho,
          },
          r.dataType === 'binary' ? Buffer.from(r.data, 'base64') : r.data,
        );
        ack(ws, r.ackId);
        return;
      case 'event': {
        publishEvent(conn, r.event, r.dataType, r.data);
        const answer = upstream?.serves(conn.hub)
          ? upstream.userEvent(conn, r.event, r.dataType, r.dataType === 'binary' ? Buffer.from(r.data, 'base64') : Buffer.from(r.data, 'utf8'))
          : null;
        if (answer === null) ack(ws, r.ackId);
        else answered(conn, answer, r.ackId);
        return;
      }
    }
  }

  /**
   * An upstream user event's answer: its body goes to the client as a server message (a simple
   * client gets the payload alone), then the ack; a failed handler drops the connection, as the
   * service does.
   */
  function answered(conn: AzureConnection, answer: Promise<UserEventAnswer | null>, ackId: number | undefined): void {
    answer.then(
      (a) => {
        if (conn.ended) return;
        if (a?.reply) azure.sendTo(conn, renderMessage(null, a.reply.dataType, a.reply.payload, null));
        if (ackId !== undefined && conn.ws !== null) conn.ws.send(ackFrame(ackId), false);
      },
      (err: unknown) => {
        if (conn.ended) return;
        const why = String((err as Error).message ?? err);
        logger.warn({ hub: conn.hub, connectionId: conn.id, why }, 'azure user event handler failed: connection dropped');
        if (ackId !== undefined && conn.ws !== null) conn.ws.send(ackFrame(ackId, 'InternalServerError', `The event handler failed: ${why}`), false);
        azure.close(conn, `The event handler failed: ${why}`);
      },
    );
  }

  /** A simple client's frame: to its group (sendToGroup mode) or to backends as a `message` event. */
  function simpleFrame(conn: AzureConnection, message: ArrayBuffer, isBinary: boolean): void {
    const bytes = Buffer.from(message);
    const dataType: DataType = isBinary ? 'binary' : 'text';
    if (conn.mode === null) {
      publishEvent(conn, 'message', dataType, isBinary ? bytes.toString('base64') : bytes.toString('utf8'));
      // a copy: uWS detaches the frame's memory when this handler returns
      const answer = upstream?.serves(conn.hub) ? upstream.userEvent(conn, 'message', dataType, Buffer.from(bytes)) : null;
      if (answer !== null) answered(conn, answer, undefined);
      return;
    }
    if (!allows(conn.roles, 'sendToGroup', conn.mode.group)) {
      stats.inc('bad_frames_total'); // no ack to say it: dropped, as the service does
      return;
    }
    publishCommand(
      conn.hub,
      { op: 'send', to: { kind: 'group', name: conn.mode.group }, dataType, from: { connectionId: conn.id, userId: conn.userId } },
      bytes,
    );
  }

  /**
   * The protocol's answer to a frame that ends the connection: it declines the client (`disconnected`
   * with the reason, for the json subprotocols), then the close; the session ends, no resume.
   */
  const decline =
    (conn: AzureConnection): FrameAnswer =>
    (err, close) =>
      azure.close(conn, err.message, close);

  const behavior = {
    ...socketOptions(config.edge),
    // Frames up to the 1 MB limit + FRAME_SLACK reach JS, so those over 1 MB get 1009 (bad-frames.ts).
    maxPayloadLength: uwsFrameCap(MAX_MESSAGE_BYTES),
    open: (ws: AzureSocket) => {
      const data = ws.getUserData();
      if (data.refuse !== null) {
        endSocket(ws, CLOSE.POLICY_VIOLATION, data.refuse);
        return;
      }
      if (data.resume) azure.resume(data.conn, ws);
      else azure.open(data.conn, ws);
    },
    message: (ws: AzureSocket, message: ArrayBuffer, isBinary: boolean) => {
      const data = ws.getUserData();
      const conn = data.conn;
      if (conn.ws !== ws) return;
      if (!takeFrame(data, config.limits, stats)) {
        endSocket(ws, CLOSE.RATE_LIMITED);
        return;
      }
      const bytes = message.byteLength;
      if (bytes > MAX_MESSAGE_BYTES) {
        badFrames.tooBig(isBinary, bytes, MAX_MESSAGE_BYTES, decline(conn), 'GW_ERR_MESSAGE_TOO_LARGE');
        return;
      }
      if (conn.kind === SIMPLE) {
        simpleFrame(conn, message, isBinary);
        return;
      }
      let r: ClientRequest;
      try {
        r = parseClientRequest(new Uint8Array(message));
      } catch (err) {
        const known = err instanceof GatewayError ? err : new GatewayError('GW_ERR_AZURE_REQUEST_INVALID', 'the frame could not be read');
        if (!(err instanceof GatewayError)) logger.error({ err }, 'azure client frame failed');
        badFrames.ends(new GatewayError(known.code, `Invalid message: ${known.message}`), isBinary, bytes, decline(conn));
        return;
      }
      request(ws, conn, r);
    },
    close: (ws: AzureSocket, code: number, message: ArrayBuffer) => {
      badFrames.closed(code, message);
      azure.socketClosed(ws);
    },
  };

  app.ws<AzureSocketData>('/client/hubs/:hub', {
    ...behavior,
    upgrade: (res, req, context) => upgrade(res, req, context, pathParameter(req, 0)),
  });
  app.ws<AzureSocketData>('/client', {
    ...behavior,
    upgrade: (res, req, context) => upgrade(res, req, context, req.getQuery('hub') ?? ''),
  });
}

/** The query (without the token) and headers (without Authorization) of a connect request, as the `connect` event has them. */
function connectRequest(req: HttpRequest, subprotocols: readonly string[]): Omit<ConnectContext, 'hub' | 'connectionId' | 'userId' | 'claims'> {
  const query: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(req.getQuery() ?? '')) if (k !== 'access_token') (query[k] ??= []).push(v);
  const headers: Record<string, string[]> = {};
  req.forEach((k, v) => {
    if (k !== 'authorization') (headers[k] ??= []).push(v);
  });
  return { query, headers, subprotocols: [...subprotocols] };
}
