/**
 * docs/compat/sensor-events.md's operational routes for the channels:
 *   GET  /api/v1/ws/stats             every channel: connections, offset, history
 *   GET  /api/v1/ws/stats/{channel}   one channel
 *   POST /api/v1/ws/test-event        a test event through the outbox and the bus (not in production)
 * Connections per channel are those of the answering edge thread (exact with one edge thread);
 * totals are cluster-wide (docs/guide.md "Clustering"): summed over the live nodes' heartbeats (this
 * node's fresh), `outbox_pending` the largest (the outbox is shared on PostgreSQL), with
 * `nodes: {<id>: …}` beside them.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../../config/config.js';
import { entityEventJson } from '../channel-event.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import type { SharedStats } from '../../../metrics/shared-stats.js';
import type { StoreReply, StoreTask } from '../../../pool/store-protocol.js';
import type { PortClient } from '../../../threads/port-rpc.js';
import type { ChannelHistory } from './channel-history.js';
import { readJsonBody } from '../../../edge/http-request.js';
import { handleAsync, jsonReply, sendError, sendJson } from '../../../edge/http-response.js';
import { pathParameter } from '../../../edge/request-encoding.js';
import { clusterView } from '../../cluster/cluster-view.js';
import { max, perNode, sum } from '../../cluster/node-figures.js';
import type { LogRow } from '../../../store/store.js';

export interface ChannelStatsDeps {
  readonly config: GatewayConfig;
  readonly history: ChannelHistory;
  readonly shared: SharedStats;
  readonly store: PortClient<StoreTask, StoreReply>;
  readonly nudgeRelay: (events?: readonly LogRow[]) => void;
  readonly logger: Logger;
  /** This node's id in the registry. */
  readonly nodeId: string;
}

export function registerChannelStatsRoutes(app: TemplatedApp, deps: ChannelStatsDeps): void {
  const { config, history, shared, store, logger } = deps;
  const channelStats = (name: string) => ({
    channel: name,
    connections: history.connections.get(name) ?? 0,
    epoch: history.epoch,
    offset: history.head(name),
    oldest_offset: history.oldest(name),
    history: history.historyLength(name),
  });

  app.get('/api/v1/ws/stats', (res) => {
    handleAsync(
      res,
      async () => {
        const { nodes, error } = await clusterView({ config, shared, store, nodeId: deps.nodeId });
        return jsonReply(200, {
          status: 'ok',
          total_connections: sum(nodes, (f) => f.channels.total_connections),
          epoch: history.epoch,
          channels: Object.fromEntries(history.channelNames.map((name) => [name, channelStats(name)])),
          events_delivered: sum(nodes, (f) => f.channels.events_delivered),
          replays: sum(nodes, (f) => f.channels.replays),
          unrecovered: sum(nodes, (f) => f.channels.unrecovered),
          slow_consumer_closes: sum(nodes, (f) => f.channels.slow_consumer_closes),
          events_published: sum(nodes, (f) => f.channels.events_published),
          outbox_pending: max(nodes, (f) => f.channels.outbox_pending),
          nodes: perNode(nodes, (f) => f.channels),
          ...(error === undefined ? {} : { cluster_error: error }),
          timestamp: new Date().toISOString(),
        });
      },
      (err) => logger.error({ err }, 'channel stats failed'),
    );
  });

  app.get('/api/v1/ws/stats/:channel', (res, req) => {
    const name = pathParameter(req, 0);
    if (!history.has(name)) {
      sendError(res, 'GW_ERR_CHANNEL_UNKNOWN', `No channel ${JSON.stringify(name.slice(0, 64))}; channels: ${history.channelNames.join(', ')}`);
      return;
    }
    sendJson(res, 200, { status: 'ok', ...channelStats(name), timestamp: new Date().toISOString() });
  });

  app.post('/api/v1/ws/test-event', (res) => {
    if (config.environment === 'production') {
      sendError(res, 'GW_ERR_FORBIDDEN_IN_PRODUCTION', 'POST /api/v1/ws/test-event is off in production');
      return;
    }
    handleAsync(
      res,
      async () => {
        const value = ((await readJsonBody(res, { maxBytes: 16 * 1024, maxDepth: config.limits.maxJsonDepth })) ?? {}) as Record<string, unknown>;
        const channel = typeof value.channel === 'string' ? value.channel : 'general';
        if (!history.has(channel))
          throw new GatewayError('GW_ERR_CHANNEL_UNKNOWN', `No channel ${JSON.stringify(channel.slice(0, 64))}; channels: ${history.channelNames.join(', ')}`);
        const message = typeof value.message === 'string' ? value.message.slice(0, 1000) : 'Test event';
        const payload = entityEventJson({
          entityType: 'test',
          action: 'test',
          entityId: null,
          data: { message },
          timestamp: new Date().toISOString(),
          metadata: { action: 'test_event' },
        });
        const reply = await store.call({ op: 'publish', channel, payload });
        if (!reply.ok) throw new GatewayError(reply.code, reply.message);
        deps.nudgeRelay(reply.events);
        return jsonReply(200, { status: 'ok', channel, message });
      },
      (err) => logger.error({ err }, 'test event failed'),
    );
  });
}
