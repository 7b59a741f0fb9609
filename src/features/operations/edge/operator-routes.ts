/**
 * Routes for operators and orchestrators: stream stats (docs/compat/gps-stream.md), Prometheus metrics,
 * liveness and readiness. Unknown routes get a JSON 404. Only /metrics is behind the operator auth
 * (GATEWAY_OPERATOR_TOKEN, edge/operator-auth.ts): the probes are called without headers, and the stream
 * stats are the reference's, read by clients that send no token.
 *
 * /healthz (liveness) answers 503 while a thread makes no progress (threads/progress.ts): a
 * gateway that delivers nothing is not alive, whatever its event loops say. /readyz (readiness)
 * answers 503 for that too, while the broker is away, while the store is unavailable (a database
 * that stopped answering: pool/store-service.ts), and while the gateway shuts down. Both name
 * their reasons. A wedged edge cannot answer at all; the other edges report it.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { createPrometheusRegistry } from '../../../metrics/prometheus.js';
import type { RowWriter, SharedStats } from '../../../metrics/shared-stats.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import { streamStats } from '../../../metrics/stream-stats.js';
import { handleAsync, jsonReply, sendError, sendJson } from '../../../edge/http-response.js';
import { findStalls } from '../../../threads/progress.js';
import type { GatewayConfig } from '../../../config/config.js';
import type { StoreReply, StoreTask } from '../../../pool/store-protocol.js';
import type { PortClient } from '../../../threads/port-rpc.js';
import type { OperatorGuard } from '../../../edge/operator-auth.js';
import { clusterView } from '../../cluster/cluster-view.js';
import { max, perNode, sum } from '../../cluster/node-figures.js';

export interface OperatorRouteDeps {
  readonly stats: SharedStats;
  readonly mqttUrl: string;
  readonly logger: Logger;
  readonly edgeStats: RowWriter<EdgeMetric>;
  /** GATEWAY_WATCHDOG_MS. */
  readonly watchdogMs: number;
  /** The token-check pool runs (GATEWAY_TOKEN_CHECKS is not `inline`). */
  readonly tokenPool: boolean;
  readonly config: GatewayConfig;
  readonly store: PortClient<StoreTask, StoreReply>;
  /** This node's id in the registry. */
  readonly nodeId: string;
  /** GATEWAY_OPERATOR_TOKEN: /metrics is behind it; the stream stats (reference-compatible) and the probes are not. */
  readonly operatorGuard: OperatorGuard;
}

export function registerOperatorRoutes(app: TemplatedApp, deps: OperatorRouteDeps): void {
  const { stats, mqttUrl, logger, edgeStats, watchdogMs, tokenPool } = deps;
  const registry = createPrometheusRegistry(stats, { watchdogMs, tokenPool });
  const stalls = () => findStalls(stats, Date.now(), watchdogMs, tokenPool).map((s) => s.reason);

  // Cluster-wide (docs/guide.md "Clustering"): what sockets hold adds up over the live nodes; what every
  // node sees of the one bus (messages processed, devices) is the largest; the rest is this node's.
  app.get('/api/v1/stream/stats', (res) => {
    handleAsync(
      res,
      async () => {
        const own = streamStats(stats, mqttUrl);
        const { nodes, error } = await clusterView({ config: deps.config, shared: stats, store: deps.store, nodeId: deps.nodeId });
        return jsonReply(200, {
          ...own,
          total_messages_processed: max(nodes, (f) => f.stream.total_messages_processed),
          active_subscribers: sum(nodes, (f) => f.stream.active_subscribers),
          devices_being_monitored: max(nodes, (f) => f.stream.devices_being_monitored),
          connections: sum(nodes, (f) => f.stream.connections),
          deliveries_total: sum(nodes, (f) => f.stream.deliveries_total),
          user_connections: sum(nodes, (f) => f.users.total_connections),
          nodes: perNode(nodes, (f) => f.stream),
          ...(error === undefined ? {} : { cluster_error: error }),
        });
      },
      (err) => logger.error({ err }, 'stream stats failed'),
    );
  });

  app.get('/metrics', (res, req) => {
    if (!deps.operatorGuard(res, req)) return;
    handleAsync(
      res,
      async () => ({ status: 200, contentType: registry.contentType, body: await registry.metrics() }),
      (err) => logger.error({ err }, 'metrics collection failed'),
    );
  });

  app.get('/healthz', (res) => {
    const reasons = stalls();
    sendJson(res, reasons.length === 0 ? 200 : 503, reasons.length === 0 ? { status: 'ok' } : { status: 'unhealthy', reasons });
  });

  app.get('/readyz', (res) => {
    const reasons: string[] = [];
    if (stats.getGlobal('shutting_down') === 1) reasons.push('shutting down');
    if (stats.getIngest('mqtt_connected') !== 1) reasons.push('mqtt not connected');
    if (stats.getGlobal('store_available') !== 1) reasons.push('store unavailable');
    reasons.push(...stalls());
    sendJson(res, reasons.length === 0 ? 200 : 503, reasons.length === 0 ? { status: 'ready' } : { status: 'not_ready', reasons });
  });

  app.any('/*', (res, req) => {
    edgeStats.inc('http_not_found_total');
    sendError(res, 'GW_ERR_NOT_FOUND', `No route for ${req.getMethod().toUpperCase()} ${req.getUrl()}`);
  });
}
