/**
 * Azure Web PubSub on the ingest thread: the commands from the bus (<GATEWAY_AZURE_TOPIC>/<hub>),
 * the directory of connections the edges report and the other nodes publish
 * (GATEWAY_AZURE_PRESENCE_TOPIC, azure-cluster-presence.ts), session handovers between edges and
 * between nodes (`<GATEWAY_AZURE_PRESENCE_TOPIC>/handover/<node>`, azure-remote-handovers.ts),
 * the outbound Azure service (when configured), and the user-group relations at start
 * (azure-user-groups-load.ts).
 */
import type { IngestContext, IngestFeature } from '../../../ingest/ingest-feature.js';
import type { AzureSessionState } from '../edge/azure-connection.js';
import type { AzurePresence, AzureToEdge, AzureToIngest } from '../messages.js';
import { AzureClusterPresence } from './azure-cluster-presence.js';
import { AzureHandovers } from './azure-handovers.js';
import { AzureOutbound } from './azure-outbound.js';
import { AzurePipeline } from './azure-pipeline.js';
import { UserGroupsLoad } from './azure-user-groups-load.js';
import { AzureRemoteHandovers } from './azure-remote-handovers.js';
import { retryAtStart } from '../../../store/retry-at-start.js';

export interface AzureIngest extends IngestFeature<AzureToIngest> {
  /** The users connected to a hub on this node, not the cluster's (trips' monitor). */
  connectedUsers(hub: string): string[];
  /** Sends this node's events of a hub-bound channel to the outbound Azure service; null: none configured. */
  readonly outbound: ((hub: string, groups: readonly string[], data: unknown) => void) | null;
}

const opened = (s: AzureSessionState): AzurePresence => ({ op: 'open', id: s.id, userId: s.userId, roles: s.roles, groups: s.groups });

/** Made before the list: channels and trips use it. */
export function azureIngest(context: IngestContext): AzureIngest {
  const { config, fanout, edgePorts, stats, logger, bus, identity, store } = context;
  const userGroups = new UserGroupsLoad(store.azureUserGroups, (message) => fanout.broadcast(message), logger.child({ component: 'azure' }));
  const azure = new AzurePipeline(
    config.azure.hubs,
    config.limits.maxJsonDepth,
    (message) => {
      userGroups.heard(message);
      fanout.broadcast(message);
    },
    stats,
    logger.child({ component: 'azure' }),
  );
  const presence = new AzureClusterPresence(azure, {
    nodeId: identity.nodeId,
    snapshotMs: config.azure.presence.snapshotMs,
    ttlMs: config.azure.presence.ttlMs,
    publish: (payload) => bus.publish(config.azure.presence.topic, payload, 1),
    subscribed: bus.subscribed,
    stats,
    logger: logger.child({ component: 'azure-presence' }),
  });
  const outbound = config.azure.outbound === undefined ? null : new AzureOutbound(config.azure.outbound, stats, logger.child({ component: 'azure-outbound' }));
  const toEdge = (edge: number, message: AzureToEdge) => fanout.sendTo(edgePorts[edge], message);
  const handoverTopic = `${config.azure.presence.topic}/handover`;
  const remote: AzureRemoteHandovers = new AzureRemoteHandovers({
    nodeId: identity.nodeId,
    topicOf: (node) => `${handoverTopic}/${node}`,
    publish: (topic, payload) => bus.publish(topic, payload, 1),
    nodeOf: (hub, connectionId) => azure.nodeOf(hub, connectionId),
    send: toEdge,
    askOwner: (...args) => handovers.askOwner(...args),
    moved: {
      away(session, node) {
        azure.presence(session.hub, opened(session), node); // B's from now on, here at once
        presence.local(session.hub, { op: 'close', id: session.id });
      },
      here(session, edge) {
        azure.presence(session.hub, opened(session));
        presence.local(session.hub, opened(session));
        handovers.opened(session.id, edge);
      },
    },
    reserveMs: config.azure.presence.ttlMs,
    stats,
    logger: logger.child({ component: 'azure-handover' }),
  });
  const handovers = new AzureHandovers(toEdge, (...args) => remote.ask(...args));
  const userGroupsLog = logger.child({ component: 'azure' });
  const reloadUserGroups = () =>
    userGroups.load().catch((err: unknown) => userGroupsLog.warn({ err }, 'could not read the azure user-group relations from the store'));
  return {
    name: 'azure',
    connectedUsers: (hub) => azure.localUsers(hub),
    outbound: outbound === null ? null : (hub, groups, data) => outbound.send(hub, groups, data),
    register() {
      presence.start();
      return {
        control: [
          { topic: handoverTopic, subtopics: 'one', handle: (node, body) => node === identity.nodeId && remote.receive(body) },
          { topic: config.azure.topic, subtopics: 'one', handle: (hub, body) => azure.handle(hub, body) },
          { topic: config.azure.presence.topic, subtopics: 'none', handle: (_, body) => presence.receive(body) },
        ],
        subscribed: () => {
          presence.subscribed();
          void reloadUserGroups();
        },
        // addUserToGroup's relations kept in the store, to the edges before ready
        ready: retryAtStart('azure user-group relations', () => userGroups.load(), config.store.startWaitMs, logger).then(() => userGroups.ready),
        handlers: {
          'azure-presence': (message, from) => {
            azure.presence(message.hub, message.change);
            presence.local(message.hub, message.change);
            if (message.change.op === 'open') handovers.opened(message.change.id, from.index);
            else if (message.change.op === 'close') handovers.closed(message.change.id, from.index);
          },
          'azure-query': (message, from) =>
            from.port.postMessage({ t: 'azure-answer', id: message.id, value: azure.query(message.hub, message.query) } satisfies AzureToEdge),
          'azure-handover-ask': (message, from) => handovers.ask(from.index, message.id, message.hub, message.connectionId, message.reconnectionToken),
          'azure-handover-state': (message) => handovers.answered(message.id, message.session, message.positions),
          'azure-handover-positions': (message, from) => remote.positions(from.index, message.id, message.positions),
        },
        stop: () => {
          presence.stop();
          remote.stop();
          outbound?.stop();
        },
      };
    },
  };
}
