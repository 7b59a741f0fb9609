/**
 * docs/compat/user-hub.md's HTTP routes: GET /ws/stats (with its `metrics` object) and the non-production
 * POST /ws/_test/broadcast, which sends a `notification` to every /ws/connect user through the bus.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../../config/config.js';
import type { RowWriter, SharedStats } from '../../../metrics/shared-stats.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import { handleAsync, jsonReply, sendJson } from '../../../edge/http-response.js';
import { readJsonBody } from '../../../edge/http-request.js';
import type { UserEvents } from './user-events-route.js';

export interface UserStatsDeps {
  readonly config: GatewayConfig;
  readonly users: UserEvents;
  readonly shared: SharedStats;
  readonly stats: RowWriter<EdgeMetric>;
  /** Publishes to the bus; the edges deliver what comes back. */
  readonly publish: (topic: string, payload: string) => void;
  readonly logger: Logger;
}

export function registerUserStatsRoutes(app: TemplatedApp, deps: UserStatsDeps): void {
  const { config, users, shared, stats, logger } = deps;
  const metrics = () => {
    const last = shared.maxEdges('user_last_broadcast_at_ms');
    return {
      total_messages_sent: shared.sumEdges('user_messages_sent_total'),
      total_broadcasts: shared.sumEdges('user_broadcasts_total'),
      total_send_errors: shared.sumEdges('user_send_errors_total'),
      last_broadcast_at: last > 0 ? new Date(last).toISOString() : null,
    };
  };

  app.get('/ws/stats', (res) => {
    // Roles and unique users are counted on the edge thread that answers (exact with one edge thread).
    const local = users.stats();
    sendJson(res, 200, {
      status: 'ok',
      stats: {
        total_connections: shared.sumEdges('user_connections'),
        connections_by_role: local.byRole,
        unique_users: local.uniqueUsers,
        heartbeat_active: true,
        heartbeat_interval: config.auth.heartbeatMs / 1000,
        metrics: metrics(),
      },
      timestamp: new Date().toISOString(),
    });
  });

  app.post('/ws/_test/broadcast', (res) => {
    if (config.environment === 'production') {
      // docs/compat/user-hub.md: answers {"status":"forbidden"} in production.
      sendJson(res, 403, { status: 'forbidden' });
      return;
    }
    handleAsync(
      res,
      async () => {
        const value = ((await readJsonBody(res, { maxBytes: 16 * 1024, maxDepth: config.limits.maxJsonDepth })) ?? {}) as Record<string, unknown>;
        const str = (key: string, fallback: string) => (typeof value[key] === 'string' ? (value[key] as string).slice(0, 1000) : fallback);
        const event = { type: 'notification', data: { title: str('title', 'BroadcastTest'), content: str('content', ''), level: str('level', 'info') } };
        deps.publish(`${config.auth.eventsTopic}/all`, JSON.stringify(event));
        stats.inc('user_broadcasts_total');
        stats.set('user_last_broadcast_at_ms', Date.now());
        return jsonReply(200, { status: 'ok', sent: shared.sumEdges('user_connections'), metrics: metrics() });
      },
      (err) => logger.error({ err }, 'broadcast failed'),
    );
  });
}
