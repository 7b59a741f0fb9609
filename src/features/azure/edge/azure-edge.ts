/**
 * Azure Web PubSub, self-hosted, on an edge thread: the client endpoint (/client/hubs/{hub}), the
 * REST data plane (/api/hubs/…), this thread's connections and their sessions (azure-sessions.ts),
 * and the commands, answers and handovers that come from ingest.
 */
import type { EdgeContext, EdgeFeature } from '../../../edge/edge-feature.js';
import { AzureAccessTokens } from '../access-tokens.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { UserGroups } from '../user-groups.js';
import type { AzureToEdge } from '../messages.js';
import { registerAzureClientRoute } from './azure-client-route.js';
import { AzureDirectory } from './azure-directory.js';
import { registerAzureRestRoutes } from './azure-rest-routes.js';
import { stampingPublish } from './azure-session-handover.js';
import { AzureSessions } from './azure-sessions.js';
import { AzureUpstream } from './azure-upstream.js';

export interface AzureEdge extends EdgeFeature<AzureToEdge> {
  /** This thread's Azure connections: made before the list, since channels hand them the events of hub-bound channels. */
  readonly sessions: AzureSessions;
}

export function azureEdge(context: EdgeContext): AzureEdge {
  const { config, stats, logger, toIngest } = context;
  // Upstream event handlers: posted from this thread, the one holding the connection (so once per event in a cluster)
  const upstream =
    Object.keys(config.azure.eventHandlers).length === 0
      ? undefined
      : new AzureUpstream({
          handlers: config.azure.eventHandlers,
          accessKeys: [config.azure.accessKey],
          origin: config.azure.webhookOrigin,
          timeoutMs: config.azure.eventHandlerTimeoutMs,
          queueMax: config.azure.eventQueue,
          stats,
          logger: logger.child({ component: 'azure-upstream' }),
        });
  // addUserToGroup's relation: the same commands as the sessions', in the same order, and the store's at start
  const userGroups = new UserGroups();
  const sessions = new AzureSessions({
    app: context.app,
    sessionTtlMs: config.azure.sessionTtlS * 1000,
    maxBufferBytes: config.events.maxBufferBytes,
    stats,
    presence: (hubName, change) => toIngest({ t: 'azure-presence', hub: hubName, change }),
    userGroups: (hubName, userId) => userGroups.groups(hubName, userId),
    logger: logger.child({ component: 'azure' }),
    lifecycle: upstream && { opened: (conn) => upstream.connected(conn), ended: (conn) => upstream.disconnected(conn) },
  });
  const directory = new AzureDirectory(context.ingestPort);
  return {
    name: 'azure',
    sessions,
    register({ app, ipBuckets, clients, isClosing, publish: publishAny, publicBase }) {
      const publish = stampingPublish(config.azure.topic, publishAny); // the commands carry their place (handovers across nodes)
      const tokens = new AzureAccessTokens(config.azure.accessKey);
      registerAzureClientRoute(app, {
        config,
        sessions,
        directory,
        tokens,
        ipBuckets,
        clients,
        stats,
        logger: logger.child({ component: 'azure' }),
        isClosing,
        publish,
        upstream,
      });
      registerAzureRestRoutes(app, {
        config,
        tokens,
        stats,
        logger: logger.child({ component: 'azure-rest' }),
        publish,
        query: (hubName, q) => directory.ask(hubName, q),
        keepUserGroup: async (task) => {
          const reply = await context.store.call(task);
          if (!reply.ok) throw new GatewayError(reply.code, reply.message);
        },
        baseUrl: publicBase,
      });
      return {
        handlers: {
          azure: (message) => {
            userGroups.apply(message.hub, message.command);
            sessions.apply(message.hub, message.command, message.message, message.stamp);
          },
          'azure-user-groups': (message) => userGroups.replace(message.entries),
          'azure-answer': (message) => directory.answered(message.id, message.value),
          'azure-handover-start': (message) => {
            sessions.expectHandover(message.id, message.hub);
            // from another node: where this thread is in the hub's traffic as it starts holding
            if (message.remote === true) toIngest({ t: 'azure-handover-positions', id: message.id, positions: sessions.handover.positionsOf(message.hub) });
          },
          // adopted now, in order with the commands
          'azure-handover': (message) => directory.answered(message.id, sessions.adopt(message.id, message.session, message.positions)),
          'azure-handover-ask': (message) => {
            const { id, hub, connectionId, reconnectionToken, positions } = message;
            if (positions === undefined) {
              toIngest({ t: 'azure-handover-state', id, session: sessions.handOver(hub, connectionId, reconnectionToken) });
              return;
            }
            // another node asks: once this thread has applied what the asker had, the state and this thread's positions
            sessions.handover.whenCaughtUp(hub, positions, () => {
              const session = sessions.handOver(hub, connectionId, reconnectionToken);
              toIngest({ t: 'azure-handover-state', id, session, positions: sessions.handover.positionsOf(hub) });
            });
          },
        },
        close: (reason) => sessions.closeAll(reason),
      };
    },
  };
}
