/**
 * Routes for operators and orchestrators: stream stats (reference/001), Prometheus metrics,
 * liveness and readiness. Unknown routes get a JSON 404.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { createPrometheusRegistry } from '../metrics/prometheus.js';
import type { RowWriter, SharedStats } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import { streamStats } from '../metrics/stream-stats.js';
import { handleAsync, sendError, sendJson } from './http-response.js';

export function registerOperatorRoutes(app: TemplatedApp, stats: SharedStats, mqttUrl: string, logger: Logger, edgeStats: RowWriter<EdgeMetric>): void {
  const registry = createPrometheusRegistry(stats);

  app.get('/api/v1/stream/stats', (res) => sendJson(res, 200, streamStats(stats, mqttUrl)));

  app.get('/metrics', (res) => {
    handleAsync(res, async () => ({ status: 200, contentType: registry.contentType, body: await registry.metrics() }),
      (err) => logger.error({ err }, 'metrics collection failed'));
  });

  app.get('/healthz', (res) => sendJson(res, 200, { status: 'ok' }));

  app.get('/readyz', (res) => {
    const reasons: string[] = [];
    if (stats.getGlobal('shutting_down') === 1) reasons.push('shutting down');
    if (stats.getIngest('mqtt_connected') !== 1) reasons.push('mqtt not connected');
    sendJson(res, reasons.length === 0 ? 200 : 503, reasons.length === 0 ? { status: 'ready' } : { status: 'not_ready', reasons });
  });

  app.any('/*', (res, req) => {
    edgeStats.inc('http_not_found_total');
    sendError(res, 'GW_ERR_NOT_FOUND', `No route for ${req.getMethod().toUpperCase()} ${req.getUrl()}`);
  });
}
