/**
 * Channels on the ingest thread: the outbox relay publishes what the store wrote; the pipeline
 * takes what comes back (<GATEWAY_EVENTS_TOPIC>/<channel>), logs it and hands it to every edge.
 */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';
import { openDatabase } from '../../../store/database.js';
import type { ChannelsToIngest } from '../messages.js';
import { EventLog } from '../store/event-log.js';
import { ChannelPipeline } from './channel-pipeline.js';
import { OutboxRelay } from './outbox-relay.js';

export interface ChannelsIngestLinks {
  /** This node's own events of a channel bound to an Azure hub, for the outbound Azure service; null: none configured. */
  readonly toAzure: ((hub: string, groups: readonly string[], data: unknown) => void) | null;
}

export function channelsIngest(links: ChannelsIngestLinks): IngestFeature<ChannelsToIngest> {
  return {
    name: 'channels',
    register({ config, identity, storeDb, bus, fanout, stats, logger }) {
      const historyDb = openDatabase(config.events.dataDir, 'history');
      const eventLog = new EventLog(historyDb, storeDb);
      const relay = new OutboxRelay(
        eventLog,
        identity.nodeId,
        config.events.topic,
        {
          get connected() {
            return bus.subscribed();
          },
          publish: (topic, payload) => bus.publish(topic, payload, 1),
        },
        config.events.outboxRetryMs,
        stats,
        logger.child({ component: 'outbox' }),
      );
      const channels = new ChannelPipeline(
        config.events.channels,
        eventLog,
        identity.epoch,
        identity.nodeId,
        relay,
        config.limits.maxJsonDepth,
        (message) => fanout.broadcast(message),
        stats,
        logger.child({ component: 'channels' }),
        links.toAzure,
      );
      fanout.broadcast(channels.initMessage());
      return {
        control: [{ topic: config.events.topic, subtopics: 'one', handle: (channel, body) => channels.handle(channel, body) }],
        handlers: { outbox: () => relay.nudge() },
        subscribed: () => relay.rewind('(re)subscribed to the broker'),
        stop: () => {
          relay.stop();
          channels.stop();
        },
        close: () => historyDb.close(),
      };
    },
  };
}
