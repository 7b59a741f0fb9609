/**
 * Trip coordination (docs/compat/trips.md) over REST, served from the store pool:
 *
 *   POST  /viaje/crear             {equipo, patente, id_jornada, …} → {"id": IdMovimiento}   ViajeCreado
 *   PATCH /viaje/actualizar        {id_movimiento, …changed fields}                          ViajeActualizado
 *   POST  /viaje/finalizar-carga   {id_movimiento, hora_fin_carga?}                          CargaFinalizada
 *   POST  /viaje/en-descarga       {id_movimiento, hora_descarga?}                           ViajeEnDescarga
 *   POST  /viaje/finalizar         {id_movimiento, hora_fin?}                                ViajeFinalizado
 *   POST  /viaje/cancelar          {id_movimiento, motivo?}                                  ViajeCancelado
 *   GET   /viaje, /viaje/{id}      trips, newest first / one trip
 *   GET/PUT/DELETE /api/v1/equipment[/{code}]   the equipment registry
 *   GET   /ws/negotiate?user_id=EXC-001         {"url": "ws://…/client/hubs/<hub>?access_token=…"} (1 h)
 *   GET   /api/v1/trips/stats                   the reference's monitoring table
 *
 * With `rest` in GATEWAY_AUTH_REQUIRED, writes need the ACL's `publish` grant on channel `viajes`
 * and reads its `channels` grant. Negotiate is open, as in the reference: it only hands tokens to
 * registered, active equipment.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { AzureAccessTokens } from '../../azure/access-tokens.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import type { SharedStats } from '../../../metrics/shared-stats.js';
import { EQUIPMENT_CODE } from '../store/trip-store.js';
import type { TripStep } from '../trip-steps.js';
import { handleAsync, jsonReply } from '../../../edge/http-response.js';
import { clusterView } from '../../cluster/cluster-view.js';
import { perNode, sum } from '../../cluster/node-figures.js';
import { pageQuery, serveStoreCall, type Guard, type StoreCallDeps } from '../../../edge/store-call.js';

/** The roles docs/compat/trips.md's negotiate gives every piece of equipment. */
const NEGOTIATE_ROLES = ['webpubsub.joinLeaveGroup', 'webpubsub.sendToGroup'];
const TOKEN_MINUTES = 60;

/** The reference's alert thresholds. */
const ALERTS = { connectedBelow: 0.8, latencyAboveMs: 500, errorsAbove: 0.05, lostAbove: 0.01 };

export interface TripRouteDeps extends StoreCallDeps {
  readonly tokens: AzureAccessTokens;
  readonly shared: SharedStats;
  /** The base URL (`https://host:port`) of client URLs, read synchronously from the request (edge-worker.ts publicBase). */
  readonly baseUrl: (res: HttpResponse, req: HttpRequest) => string;
  /** This node's id in the registry. */
  readonly nodeId: string;
}

const ratio = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : 0);

export function registerTripRoutes(app: TemplatedApp, deps: TripRouteDeps): void {
  const { config, shared, tokens } = deps;
  const needsJwt = config.auth.requiredOn.includes('rest');
  const channel = config.trips.channel;
  const write: Guard | null = needsJwt ? { kind: 'publish', channel } : null;
  const read: Guard | null = needsJwt ? { kind: 'channels', channel } : null;

  const stepRoute = (step: TripStep) => (res: HttpResponse, req: HttpRequest) =>
    serveStoreCall(res, req, deps, write, true, (body) => ({ op: 'trip-step', step, body }));
  app.post('/viaje/crear', stepRoute('crear'));
  app.patch('/viaje/actualizar', stepRoute('actualizar'));
  app.put('/viaje/actualizar', stepRoute('actualizar'));
  app.post('/viaje/actualizar', stepRoute('actualizar'));
  for (const step of ['finalizar-carga', 'en-descarga', 'finalizar', 'cancelar'] as const) app.post(`/viaje/${step}`, stepRoute(step));
  app.get('/viaje', (res, req) => {
    const page = pageQuery(req);
    serveStoreCall(res, req, deps, read, false, () => {
      if (page instanceof GatewayError) throw page;
      return { op: 'trip-list', ...page };
    });
  });
  app.get('/viaje/:id', (res, req) =>
    serveStoreCall(res, req, deps, read, false, (_, id) => {
      if (!/^\d{1,15}$/.test(id ?? '') || Number(id) < 1) throw new GatewayError('GW_ERR_ID_INVALID', 'The trip id must be a positive whole number');
      return { op: 'trip-get', id: Number(id) };
    }),
  );

  const code = (id: string | undefined) => {
    if (id === undefined || !EQUIPMENT_CODE.test(id)) throw new GatewayError('GW_ERR_BODY_INVALID', 'An equipment code is 1-64 letters, digits, _ . : -');
    return id;
  };
  app.get('/api/v1/equipment', (res, req) => serveStoreCall(res, req, deps, read, false, () => ({ op: 'equipment-list' })));
  app.get('/api/v1/equipment/:code', (res, req) => serveStoreCall(res, req, deps, read, false, (_, id) => ({ op: 'equipment-get', code: code(id) })));
  app.put('/api/v1/equipment/:code', (res, req) => serveStoreCall(res, req, deps, write, true, (body, id) => ({ op: 'equipment-put', code: code(id), body })));
  app.del('/api/v1/equipment/:code', (res, req) => serveStoreCall(res, req, deps, write, false, (_, id) => ({ op: 'equipment-delete', code: code(id) })));

  app.get('/ws/negotiate', (res, req) => {
    const userId = req.getQuery('user_id') ?? '';
    const base = deps.baseUrl(res, req);
    handleAsync(
      res,
      async () => {
        if (!EQUIPMENT_CODE.test(userId))
          throw new GatewayError('GW_ERR_EQUIPMENT_UNKNOWN', 'Invalid User ID: user_id must be an equipment code (1-64 letters, digits, _ . : -)');
        const reply = await deps.store.call({ op: 'equipment-check', code: userId });
        if (!reply.ok) throw new GatewayError(reply.code, reply.message);
        const token = await tokens.signClient(base, config.trips.hub, { userId, roles: NEGOTIATE_ROLES, minutes: TOKEN_MINUTES });
        return jsonReply(200, { url: `${base.replace(/^http/, 'ws')}/client/hubs/${config.trips.hub}?access_token=${token}` });
      },
      (err) => deps.logger.error({ err }, 'negotiate failed'),
    );
  });

  // Cluster-wide (docs/guide.md "Clustering"): the fleet and connected equipment are the monitor's
  // (the union over the live nodes), the counters add up the nodes' heartbeats, `outbound` is this node's.
  app.get('/api/v1/trips/stats', (res) => {
    handleAsync(
      res,
      async () => {
        const { nodes, error } = await clusterView({ config, shared, store: deps.store, nodeId: deps.nodeId });
        const fleet = shared.getIngest('trips_active_fleet');
        const connected = shared.getIngest('trips_connected_equipment');
        const delivered = sum(nodes, (f) => f.trips.trip_events_delivered);
        const latency = delivered > 0 ? Math.round((sum(nodes, (f) => f.trips.trip_delivery_latency_ms_total) / delivered) * 100) / 100 : 0;
        const errors = sum(nodes, (f) => f.trips.connection_errors);
        const accepted = sum(nodes, (f) => f.trips.connections_accepted);
        const lost = sum(nodes, (f) => f.trips.messages_lost);
        const messages = sum(nodes, (f) => f.trips.messages_delivered);
        const stats = {
          connected_equipment: connected,
          active_fleet: fleet,
          connected_ratio: ratio(connected, fleet),
          latency_avg_ms: latency,
          events_last_hour: shared.getIngest('trip_events_last_hour'),
          trip_events_delivered: delivered,
          connection_errors: errors,
          connection_error_ratio: ratio(errors, errors + accepted),
          messages_lost: lost,
          messages_lost_ratio: ratio(lost, messages),
          outbound: {
            configured: config.azure.outbound !== undefined,
            sent: shared.getIngest('trip_outbound_sent_total'),
            retries: shared.getIngest('trip_outbound_retries_total'),
            failed: shared.getIngest('trip_outbound_failed_total'),
          },
        };
        const alerts: string[] = [];
        if (fleet > 0 && stats.connected_ratio < ALERTS.connectedBelow)
          alerts.push(`connected equipment ${connected}/${fleet} is below 80% of the active fleet`);
        if (latency > ALERTS.latencyAboveMs) alerts.push(`mean delivery latency ${latency} ms is above 500 ms`);
        if (stats.connection_error_ratio > ALERTS.errorsAbove) alerts.push(`connection errors ${stats.connection_error_ratio * 100}% are above 5%`);
        if (stats.messages_lost_ratio > ALERTS.lostAbove) alerts.push(`messages lost ${stats.messages_lost_ratio * 100}% are above 1%`);
        return jsonReply(200, {
          status: alerts.length === 0 ? 'ok' : 'alert',
          hub: config.trips.hub,
          ...stats,
          alerts,
          // Each node's counters, without its equipment codes (the heartbeat's, for the monitor).
          nodes: perNode(nodes, ({ trips: { equipment: _codes, ...figures } }) => figures),
          ...(error === undefined ? {} : { cluster_error: error }),
          timestamp: new Date().toISOString(),
        });
      },
      (err) => deps.logger.error({ err }, 'trips stats failed'),
    );
  });
}
