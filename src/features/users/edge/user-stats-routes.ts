/**
 * docs/compat/user-hub.md's HTTP routes: GET /ws/stats (with its `metrics` object) and the non-production
 * POST /ws/_test/broadcast, which sends a `notification` to every /ws/connect user through the bus.
 *
 * Both are cluster-wide (docs/guide.md "Clustering"): `total_connections` and broadcast `sent` add up
 * the live nodes (their last heartbeat, this node's fresh), `unique_users` counts the distinct users of
 * the live nodes' presence with this edge's own, and `nodes: {<id>: …}` gives each node's figures
 * beside the totals (fields added, none renamed). `connections_by_role` stays this edge thread's.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../../config/config.js';
import type { RowWriter, SharedStats } from '../../../metrics/shared-stats.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import { handleAsync, jsonReply, sendJson } from '../../../edge/http-response.js';
import { readJsonBody } from '../../../edge/http-request.js';
import type { UserEvents } from './user-events-route.js';
import type { PortClient } from '../../../threads/port-rpc.js';
import type { StoreReply, StoreTask } from '../../../pool/store-protocol.js';
import { clusterView } from '../../cluster/cluster-view.js';
import { perNode, sum, type ClusterNode } from '../../cluster/node-figures.js';

export interface UserStatsDeps {
  readonly config: GatewayConfig;
  readonly users: UserEvents;
  readonly shared: SharedStats;
  readonly stats: RowWriter<EdgeMetric>;
  /** Publishes to the bus; the edges deliver what comes back. */
  readonly publish: (topic: string, payload: string) => void;
  readonly logger: Logger;
  readonly store: PortClient<StoreTask, StoreReply>;
  /** This node's id in the registry. */
  readonly nodeId: string;
}

export function registerUserStatsRoutes(app: TemplatedApp, deps: UserStatsDeps): void {
  const { config, users, shared, stats, logger } = deps;
  const view = (uniqueUsers?: readonly string[]) => clusterView({ config, shared, store: deps.store, nodeId: deps.nodeId }, uniqueUsers);
  // The counters add up the live nodes; the last broadcast is this node's.
  const metrics = (nodes: readonly ClusterNode[]) => {
    const last = shared.maxEdges('user_last_broadcast_at_ms');
    return {
      total_messages_sent: sum(nodes, (f) => f.users.total_messages_sent),
      total_broadcasts: sum(nodes, (f) => f.users.total_broadcasts),
      total_send_errors: sum(nodes, (f) => f.users.total_send_errors),
      last_broadcast_at: last > 0 ? new Date(last).toISOString() : null,
    };
  };

  app.get('/ws/stats', (res) => {
    handleAsync(
      res,
      async () => {
        // Roles are counted on the edge thread that answers (exact with one edge thread).
        const local = users.stats();
        const cluster = await view(users.presence.users());
        return jsonReply(200, {
          status: 'ok',
          stats: {
            total_connections: sum(cluster.nodes, (f) => f.users.total_connections),
            connections_by_role: local.byRole,
            unique_users: cluster.uniqueUsers ?? local.uniqueUsers,
            heartbeat_active: true,
            heartbeat_interval: config.auth.heartbeatMs / 1000,
            metrics: metrics(cluster.nodes),
            nodes: perNode(cluster.nodes, (f) => f.users),
          },
          timestamp: new Date().toISOString(),
        });
      },
      (err) => logger.error({ err }, 'user stats failed'),
    );
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
        // `sent`: the /ws/connect connections it reaches on every live node (each node delivers what the bus brings it).
        const cluster = await view();
        return jsonReply(200, {
          status: 'ok',
          sent: sum(cluster.nodes, (f) => f.users.total_connections),
          metrics: metrics(cluster.nodes),
          nodes: perNode(cluster.nodes, (f) => ({ sent: f.users.total_connections })),
        });
      },
      (err) => logger.error({ err }, 'broadcast failed'),
    );
  });
}
