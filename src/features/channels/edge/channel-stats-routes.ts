/**
 * docs/compat/sensor-events.md's operational routes for the channels:
 *   GET  /api/v1/ws/stats             every channel: connections, offset, history
 *   GET  /api/v1/ws/stats/{channel}   one channel
 *   POST /api/v1/ws/test-event        a test event through the outbox and the bus (not in production)
 * Connections per channel are those of the answering edge thread (exact with one edge thread);
 * totals are gateway-wide.
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

export interface ChannelStatsDeps {
  readonly config: GatewayConfig;
  readonly history: ChannelHistory;
  readonly shared: SharedStats;
  readonly store: PortClient<StoreTask, StoreReply>;
  readonly nudgeRelay: () => void;
  readonly logger: Logger;
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
    sendJson(res, 200, {
      status: 'ok',
      total_connections: shared.sumEdges('channel_connections'),
      epoch: history.epoch,
      channels: Object.fromEntries(history.channelNames.map((name) => [name, channelStats(name)])),
      events_delivered: shared.sumEdges('channel_deliveries_total'),
      replays: shared.sumEdges('channel_replays_total'),
      unrecovered: shared.sumEdges('channel_unrecovered_total'),
      slow_consumer_closes: shared.sumEdges('slow_consumer_closes_total'),
      events_published: shared.getIngest('events_published_total'),
      outbox_pending: shared.getIngest('outbox_pending'),
      timestamp: new Date().toISOString(),
    });
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
        deps.nudgeRelay();
        return jsonReply(200, { status: 'ok', channel, message });
      },
      (err) => logger.error({ err }, 'test event failed'),
    );
  });
}
