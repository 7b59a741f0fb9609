/**
 * The REST side of the entity channels (docs/compat/sensor-events.md, and the same code for every collection in
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
import type { CollectionSpec } from '../channel-config.js';
import { parseChannelEvent } from '../channel-event.js';
import { parseEntityId, validateEntityBody } from '../entity-fields.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { pathParameter } from '../../../edge/request-encoding.js';
import { pageQuery, serveStoreCall, type Build, type Guard, type StoreCallDeps } from '../../../edge/store-call.js';

export interface EntityRouteDeps extends StoreCallDeps {
  /** Channels there are (the publish API refuses others). */
  readonly hasChannel: (channel: string) => boolean;
}

export function registerEntityRoutes(app: TemplatedApp, deps: EntityRouteDeps): void {
  const { config } = deps;
  const restNeedsJwt = config.auth.requiredOn.includes('rest');

  const serve = (res: HttpResponse, req: HttpRequest, guard: Guard | null, withBody: boolean, build: Build) =>
    serveStoreCall(res, req, deps, guard, withBody, build);

  function collectionRoutes(c: CollectionSpec, path: string, authenticated: boolean): void {
    const base = `/api/v1/${path}`;
    const read: Guard | null = authenticated ? { kind: 'channels', channel: c.channel } : null;
    const write: Guard | null = authenticated ? { kind: 'publish', channel: c.channel } : null;
    const idOf = (id: string | undefined) => parseEntityId(id ?? '');
    const list =
      (page: { skip: number; limit: number } | GatewayError): Build =>
      () => {
        if (page instanceof GatewayError) throw page;
        return { op: 'list', collection: c.path, ...page };
      };
    const create: Build = (body) => ({ op: 'create', collection: c.path, fields: validateEntityBody(c, body, 'create') });
    for (const p of [base, `${base}/`]) {
      app.get(p, (res, req) => serve(res, req, read, false, list(pageQuery(req))));
      app.post(p, (res, req) => serve(res, req, write, true, create));
    }
    app.get(`${base}/:id`, (res, req) => serve(res, req, read, false, (_, id) => ({ op: 'get', collection: c.path, id: idOf(id) })));
    app.put(`${base}/:id`, (res, req) =>
      serve(res, req, write, true, (body, id) => {
        const entityId = idOf(id);
        return { op: 'update', collection: c.path, id: entityId, fields: validateEntityBody(c, body, 'update') };
      }),
    );
    app.del(`${base}/:id`, (res, req) => serve(res, req, write, false, (_, id) => ({ op: 'delete', collection: c.path, id: idOf(id) })));
  }

  for (const c of config.events.channels.collections) {
    collectionRoutes(c, c.path, restNeedsJwt);
    // docs/compat/sensor-events.md's unauthenticated twins, for tests and demos: never in production.
    if (c.testPath !== null && config.environment !== 'production') collectionRoutes(c, c.testPath, false);
  }

  app.post('/api/v1/channels/:channel/events', (res, req) => {
    const channel = pathParameter(req, 0);
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
