/**
 * Users on an edge thread: /ws/connect, whose sockets get the bus's user/role events (and the
 * channel events their roles may see), and its stats routes.
 */
import type { EdgeFeature } from '../../../edge/edge-feature.js';
import { channelTopic, userTopic } from '../../channels/channel-topics.js';
import type { UsersToEdge } from '../messages.js';
import { UserEvents } from './user-events-route.js';
import { registerUserStatsRoutes } from './user-stats-routes.js';
import { ENVELOPE } from '../../channels/envelopes.js';

export const users: EdgeFeature<UsersToEdge> = {
  name: 'users',
  register(context) {
    const { app, config, checks, acl, expiry, ipBuckets, clients, stats, shared, publish, logger } = context;
    const channelNames = config.events.channels.channels.map((c) => c.name);
    const events = new UserEvents(app, {
      config,
      checks,
      expiry,
      ipBuckets,
      clients,
      stats,
      logger: logger.child({ component: 'users' }),
      isClosing: context.isClosing,
      // /ws/connect users also get the channel events their roles may see, and their own notifications.
      channelTopics: (principal, format) => [
        ...channelNames.filter((c) => acl.allows(principal, 'channels', c)).map((c) => channelTopic(ENVELOPE.CONNECT, format, c)),
        userTopic(ENVELOPE.CONNECT, format, '', principal.userId),
      ],
    });
    events.register();
    registerUserStatsRoutes(app, { config, users: events, shared, stats, publish, logger, store: context.store, nodeId: context.nodeId });
    // The cluster's presence: this edge's users whose count changed, once a second (never per message).
    const presence = setInterval(() => {
      const entries = events.presence.take();
      if (entries !== null) context.toIngest({ t: 'user-presence', entries });
    }, 1_000);
    presence.unref();
    return {
      handlers: { event: (message) => events.deliver(message.target, message.json, message.msgpack) },
      close: (reason) => {
        clearInterval(presence);
        events.closeAll(reason);
      },
    };
  },
};
