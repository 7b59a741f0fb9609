/**
 * The REST side of the entity channels (reference/003, and the same code for every collection in
 * GATEWAY_CHANNELS):
 *
 *   GET/POST /api/v1/<path>/          list (skip, limit) and create
 *   GET/PUT/DELETE /api/v1/<path>/{id}
 *   the same under /api/v1/<test_path>/ without a token, outside production only
 *   POST /api/v1/channels/{channel}/events   the publish API: an entity_event, realtime_update or
 *                                            notification from a backend with its own database
 *
 * The edge only reads, authenticates and validates; the store pool does the SQLite write, writes
 * the event to the outbox in the same transaction and serialises the reply. A write that produced an
 * event nudges the relay (ingest) so the event leaves at once.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { Acl, AclKind } from '../auth/acl.js';
import type { TokenChecks } from '../auth/token-checks.js';
import { tokenFailure } from '../auth/token-error-codes.js';
import type { CollectionSpec } from '../channels/channel-config.js';
import { parseChannelEvent } from '../channels/channel-event.js';
import { parseEntityId, validateEntityBody } from '../channels/entity-fields.js';
import type { GatewayConfig } from '../config/config.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import type { StoreReply, StoreTask } from '../pool/store-protocol.js';
import type { PortClient } from '../threads/port-rpc.js';
import { bearerToken, readJsonBody } from './http-request.js';
import { handleAsync } from './http-response.js';

export interface EntityRouteDeps {
  readonly config: GatewayConfig;
  readonly store: PortClient<StoreTask, StoreReply>;
  readonly checks: TokenChecks;
  readonly acl: Acl;
  readonly stats: RowWriter<EdgeMetric>;
  readonly logger: Logger;
  /** Tells the relay that the outbox has new rows. */
  readonly nudgeRelay: () => void;
  /** Channels there are (the publish API refuses others). */
  readonly hasChannel: (channel: string) => boolean;
}

/** Who may do what: a token with this ACL grant on the channel, or nobody checks (null). */
interface Guard {
  readonly kind: AclKind;
  readonly channel: string;
}

type Build = (body: unknown, id: string | undefined) => StoreTask;

const MAX_LIMIT = 1000;

/** `skip` and `limit` of a list request, read while the request is valid; an error is thrown later, in the handler. */
function pageQuery(req: HttpRequest): { skip: number; limit: number } | GatewayError {
  const read = (name: string, fallback: number, max: number) => {
    const text = req.getQuery(name);
    if (text === undefined || text === '') return fallback;
    if (!/^\d{1,9}$/.test(text) || Number(text) > max) throw new GatewayError('GW_ERR_QUERY_INVALID', `${name} must be a whole number from 0 to ${max}`);
    return Number(text);
  };
  try {
    return { skip: read('skip', 0, 1e9), limit: read('limit', 100, MAX_LIMIT) };
  } catch (err) {
    return err as GatewayError;
  }
}

export function registerEntityRoutes(app: TemplatedApp, deps: EntityRouteDeps): void {
  const { config, store, checks, acl, stats, logger } = deps;
  const restNeedsJwt = config.auth.requiredOn.includes('rest');

  /**
   * One request: headers and the body reader are taken synchronously (uWS invalidates the request
   * when the handler returns, and body chunks can come at once), then the token, validation, the
   * store call, and the reply.
   */
  function serve(res: HttpResponse, req: HttpRequest, guard: Guard | null, withBody: boolean, build: Build): void {
    stats.inc('rest_requests_total');
    const token = guard ? bearerToken(req.getHeader('authorization')) : undefined;
    const id = req.getParameter(0);
    handleAsync(res, async () => {
      const body = withBody ? readJsonBody(res, config.events.maxBodyBytes) : Promise.resolve(undefined);
      body.catch(() => undefined); // awaited below; never an unhandled rejection if auth fails first
      if (guard) {
        let principal;
        try {
          principal = await checks.jwt(token);
        } catch (err) {
          throw tokenFailure(err);
        }
        if (!acl.allows(principal, guard.kind, guard.channel)) {
          throw new GatewayError('GW_ERR_FORBIDDEN', `Not allowed to ${guard.kind === 'publish' ? 'write to' : 'read'} channel ${guard.channel}`);
        }
      }
      const reply = await store.call(build(await body, id === '' ? undefined : id));
      if (!reply.ok) throw new GatewayError(reply.code, reply.message);
      if (reply.wroteEvent) deps.nudgeRelay();
      return { status: reply.status, contentType: 'application/json', body: reply.body };
    }, (err) => logger.error({ err }, 'REST request failed'), () => stats.inc('rest_errors_total'));
  }

  function collectionRoutes(c: CollectionSpec, path: string, authenticated: boolean): void {
    const base = `/api/v1/${path}`;
    const read: Guard | null = authenticated ? { kind: 'channels', channel: c.channel } : null;
    const write: Guard | null = authenticated ? { kind: 'publish', channel: c.channel } : null;
    const idOf = (id: string | undefined) => parseEntityId(id ?? '');
    const list = (page: { skip: number; limit: number } | GatewayError): Build => () => {
      if (page instanceof GatewayError) throw page;
      return { op: 'list', collection: c.path, ...page };
    };
    const create: Build = (body) => ({ op: 'create', collection: c.path, fields: validateEntityBody(c, body, 'create') });
    for (const p of [base, `${base}/`]) {
      app.get(p, (res, req) => serve(res, req, read, false, list(pageQuery(req))));
      app.post(p, (res, req) => serve(res, req, write, true, create));
    }
    app.get(`${base}/:id`, (res, req) => serve(res, req, read, false, (_, id) => ({ op: 'get', collection: c.path, id: idOf(id) })));
    app.put(`${base}/:id`, (res, req) => serve(res, req, write, true, (body, id) => {
      const entityId = idOf(id);
      return { op: 'update', collection: c.path, id: entityId, fields: validateEntityBody(c, body, 'update') };
    }));
    app.del(`${base}/:id`, (res, req) => serve(res, req, write, false, (_, id) => ({ op: 'delete', collection: c.path, id: idOf(id) })));
  }

  for (const c of config.events.channels.collections) {
    collectionRoutes(c, c.path, restNeedsJwt);
    // reference/003's unauthenticated twins, for tests and demos: never in production.
    if (c.testPath !== null && config.environment !== 'production') collectionRoutes(c, c.testPath, false);
  }

  app.post('/api/v1/channels/:channel/events', (res, req) => {
    const channel = req.getParameter(0) ?? '';
    serve(res, req, { kind: 'publish', channel }, true, (body) => {
      if (!deps.hasChannel(channel)) throw new GatewayError('GW_ERR_CHANNEL_UNKNOWN', `No channel ${JSON.stringify(channel.slice(0, 64))}`);
      parseChannelEvent(body); // validation only: the event is stored as sent, with a timestamp
      // `origin` is the relay's stamp (the duplicate filter's key): a client may not set it.
      const { origin: _ignored, ...event } = body as Record<string, unknown>;
      const stamped = event.timestamp === undefined ? { ...event, timestamp: new Date().toISOString() } : event;
      return { op: 'publish', channel, payload: JSON.stringify(stamped) };
    });
  });
}
