/**
 * The cluster on an edge thread: GET /api/v1/cluster, the live nodes of the registry (docs/guide.md
 * "Clustering", docs/guide/operations.md). Like /metrics and the dead letters it is an operator
 * route: behind GATEWAY_OPERATOR_TOKEN when it is set (edge/operator-auth.ts), open otherwise.
 *
 *   {"status":"ok","node":"<this node>","heartbeat_ms","ttl_ms","nodes":[{"id","version","started_at",
 *    "uptime_seconds","connections":{"stream","channels","users","azure","total"},"last_heartbeat",
 *    "heartbeat_age_ms","self"},…],"timestamp"}
 */
import type { EdgeFeature } from '../../../edge/edge-feature.js';
import { handleAsync, jsonReply } from '../../../edge/http-response.js';
import type { NodeRow } from '../../../store/store.js';
import { clusterView, type ClusterViewDeps } from '../cluster-view.js';

export const cluster: EdgeFeature = {
  name: 'cluster',
  register({ app, config, shared, store, nodeId, logger, operatorGuard }) {
    const deps: ClusterViewDeps = { config, shared, store, nodeId };
    app.get('/api/v1/cluster', (res, req) => {
      if (!operatorGuard(res, req)) return;
      handleAsync(
        res,
        async () => {
          const view = await clusterView(deps);
          const now = Date.now();
          const rows: NodeRow[] = [...view.rows];
          if (!rows.some((r) => r.id === nodeId)) {
            // This node's first heartbeat is not written yet (or the store is away): it is live all the same.
            rows.unshift({ id: nodeId, version: '', startedAt: shared.getGlobal('started_at_ms'), heartbeatAt: 0, ageMs: 0, figures: '' });
          }
          const nodes = rows.map((row) => {
            const figures = view.nodes.find((n) => n.id === row.id)?.figures;
            const c = figures?.connections ?? { stream: 0, channels: 0, users: 0, azure: 0 };
            return {
              id: row.id,
              version: row.version || null,
              started_at: new Date(row.startedAt).toISOString(),
              uptime_seconds: Math.max(0, Math.round((now - row.startedAt) / 1000)),
              connections: { ...c, total: c.stream + c.channels + c.users + c.azure },
              last_heartbeat: row.heartbeatAt > 0 ? new Date(row.heartbeatAt).toISOString() : null,
              heartbeat_age_ms: row.heartbeatAt > 0 ? row.ageMs : null,
              self: row.id === nodeId,
            };
          });
          return jsonReply(200, {
            status: 'ok',
            node: nodeId,
            heartbeat_ms: config.cluster.heartbeatMs,
            ttl_ms: config.cluster.nodeTtlMs,
            nodes,
            ...(view.error === undefined ? {} : { cluster_error: view.error }),
            timestamp: new Date(now).toISOString(),
          });
        },
        (err) => logger.error({ err }, 'cluster listing failed'),
      );
    });
    return { handlers: {} };
  },
};
