/** Operations on an edge thread: /metrics, /healthz, /readyz, the stream stats, and the catch-all 404. */
import type { EdgeFeature } from '../../../edge/edge-feature.js';
import { registerOperatorRoutes } from './operator-routes.js';

export const operations: EdgeFeature = {
  name: 'operations',
  register({ app, shared, mqttUrl, logger, stats, config, tokenPool, store, nodeId, operatorGuard }) {
    registerOperatorRoutes(app, {
      stats: shared,
      mqttUrl,
      logger,
      edgeStats: stats,
      watchdogMs: config.health.watchdogMs,
      tokenPool,
      config,
      store,
      nodeId,
      operatorGuard,
    });
    return { handlers: {} };
  },
};
