/**
 * Channels on the ingest thread: the outbox relay publishes what the store wrote, with its position
 * in the log; the pipeline delivers what comes back (<GATEWAY_CHANNELS_TOPIC>/<channel>) to every
 * edge in offset order, filling gaps from the store's log.
 */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';
import type { ChannelsToIngest } from '../messages.js';
import { ChannelPipeline } from './channel-pipeline.js';
import { azureGroupsOf, parseLogEvent } from './channel-records.js';
import { OutboxRelay } from './outbox-relay.js';
import type { OutboxRow } from '../../../store/store.js';
import { retryAtStart } from '../../../store/retry-at-start.js';

export interface ChannelsIngestLinks {
  /** This node's own events of a channel bound to an Azure hub, for the outbound Azure service; null: none configured. */
  readonly toAzure: ((hub: string, groups: readonly string[], data: unknown) => void) | null;
}

export function channelsIngest(links: ChannelsIngestLinks): IngestFeature<ChannelsToIngest> {
  return {
    name: 'channels',
    register({ config, identity, store, bus, fanout, stats, logger }) {
      const channels = new ChannelPipeline(
        config.events.channels,
        store,
        config.events.headPollMs,
        config.limits.maxJsonDepth,
        (message) => fanout.broadcast(message),
        stats,
        logger.child({ component: 'channels' }),
        () => relay?.nudge(),
      );
      const hubOf = new Map(config.events.channels.channels.filter((c) => c.azureHub !== null).map((c) => [c.name, c.azureHub!]));
      const toAzure = links.toAzure;
      // The events this node published of a hub-bound channel go to the outbound Azure service once the broker has them.
      const onPublished =
        toAzure === null || hubOf.size === 0
          ? null
          : (row: OutboxRow) => {
              const hub = hubOf.get(row.channel);
              if (hub === undefined) return;
              try {
                const event = parseLogEvent(row, config.limits.maxJsonDepth);
                const groups = azureGroupsOf(event);
                if (groups.length > 0) toAzure(hub, groups, event.data);
              } catch {
                // refused by the pipeline too, and counted there
              }
            };
      let relay: OutboxRelay | undefined;
      const ready = retryAtStart('channel heads', () => channels.init(), config.store.startWaitMs, logger).then((init) => {
        fanout.broadcast(init);
        relay = new OutboxRelay(
          store.outbox,
          store.deadLetters,
          { nodeId: identity.nodeId, epoch: init.epoch, topicPrefix: config.events.topic, leaseMs: config.events.outboxLeaseMs },
          {
            get connected() {
              return bus.subscribed();
            },
            publish: (topic, payload, done) => bus.publish(topic, payload, 1, done),
          },
          stats,
          logger.child({ component: 'outbox' }),
          onPublished,
        );
        relay.nudge();
      });
      return {
        control: [{ topic: config.events.topic, subtopics: 'one', handle: (channel, body) => channels.handle(channel, body) }],
        handlers: {
          outbox: (message) => {
            // Committed rows from this node's store pool: delivered now; the relay publishes them all the same.
            if (message.events !== undefined) channels.written(message.events);
            relay?.nudge();
          },
          'catch-up': () => channels.catchUp(),
        },
        subscribed: () => {
          channels.subscribed();
          relay?.nudge();
        },
        stop: () => {
          void relay?.stop();
          channels.stop();
        },
        ready,
      };
    },
  };
}
