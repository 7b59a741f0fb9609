/**
 * Channels on an edge thread: the channel WebSocket routes, the entity REST routes that write
 * events through the store's outbox, the stats and dead-letter routes, and the channel history
 * ingest's events are appended to and published from.
 */
import type { EdgeFeature } from '../../../edge/edge-feature.js';
import { ConnectionRegistry } from '../../../edge/connection-registry.js';
import type { ChannelEventRecord, ChannelsToEdge } from '../messages.js';
import { ChannelBackpressure } from './channel-backpressure.js';
import { ChannelHistory } from './channel-history.js';
import { registerChannelRoute } from './channel-route.js';
import type { ChannelSocket } from './channel-socket.js';
import { registerChannelStatsRoutes } from './channel-stats-routes.js';
import { registerDeadLetterRoutes } from './dead-letter-routes.js';
import { registerEntityRoutes } from './entity-routes.js';
import { ENVELOPE } from '../envelopes.js';

export interface ChannelsEdgeLinks {
  /** A live event of a channel bound to an Azure hub (the trips channel), for that hub's connections. */
  readonly toAzure: (event: ChannelEventRecord) => void;
}

export function channelsEdge(links: ChannelsEdgeLinks): EdgeFeature<ChannelsToEdge> {
  return {
    name: 'channels',
    register(context) {
      const { app, config, stats, logger, shared, store, nudgeRelay, expiry, checks, acl, ipBuckets, clients } = context;
      const history = new ChannelHistory(app, config.events.channels.channels, stats, links.toAzure);
      const sockets = new ConnectionRegistry<ChannelSocket>();
      const backpressure = new ChannelBackpressure(config.edge, config.events.maxBufferBytes, sockets, stats, logger.child({ component: 'channels' }));
      const catchUp = () => context.toIngest({ t: 'catch-up' });
      const channelDeps = {
        config,
        history,
        catchUp,
        sockets,
        expiry,
        checks,
        acl,
        ipBuckets,
        clients,
        stats,
        logger: logger.child({ component: 'channels' }),
      };
      registerChannelRoute(app, ENVELOPE.ENTITY_EVENT, channelDeps);
      registerChannelRoute(app, ENVELOPE.ENTITY_EVENT, channelDeps, true); // /api/v1/ws/secure
      registerChannelRoute(app, ENVELOPE.REALTIME_UPDATE, channelDeps);
      registerEntityRoutes(app, {
        config,
        store,
        checks,
        acl,
        stats,
        logger: logger.child({ component: 'rest' }),
        nudgeRelay,
        hasChannel: (c) => history.has(c),
      });
      registerChannelStatsRoutes(app, { config, history, shared, store, nudgeRelay, logger, nodeId: context.nodeId });
      registerDeadLetterRoutes(app, { config, store, checks, acl, stats, logger: logger.child({ component: 'outbox' }), nudgeRelay }, context.operatorGuard);
      const onMessage = (message: ChannelsToEdge) => history.onIngestMessage(message);
      return {
        handlers: { 'channels-init': onMessage, 'channel-events': onMessage },
        close: (reason) => {
          sockets.closeAll(reason);
          backpressure.stop();
        },
      };
    },
  };
}
