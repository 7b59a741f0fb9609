/**
 * Telemetry on the ingest thread: every bus message that is not a control message, decoded once and
 * encoded once per wanted format; the last positions kept across restarts (position-keeper.ts).
 */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';
import type { TelemetryToIngest } from '../messages.js';
import { PositionKeeper } from './position-keeper.js';
import { TelemetryPipeline } from './telemetry-pipeline.js';
import { retryAtStart } from '../../../store/retry-at-start.js';

export const telemetry: IngestFeature<TelemetryToIngest> = {
  name: 'telemetry',
  register({ config, fanout, stats, logger, store, storePool }) {
    const pipeline = new TelemetryPipeline(config.telemetry, config.limits.maxJsonDepth, fanout, stats, logger.child({ component: 'pipeline' }));
    const ticker = setInterval(() => pipeline.tick(), 1000);
    let keeper: PositionKeeper | undefined;
    let ready: Promise<void> | undefined;
    if (config.telemetry.positionsRetentionS > 0) {
      // Restored before ingest reports ready, so before any edge asks for a snapshot: none misses them.
      const write = (json: string) => storePool.call({ op: 'positions-put', json }).then((reply) => reply.ok);
      const positions = new PositionKeeper(pipeline.devices, store.positions, write, config.telemetry, stats, logger.child({ component: 'positions' }));
      keeper = positions;
      positions.start();
      ready = retryAtStart('last positions', () => positions.restore(), config.store.startWaitMs, logger).then((restored) => {
        if (restored > 0) logger.info({ devices: restored, retentionS: config.telemetry.positionsRetentionS }, 'last positions restored');
        pipeline.tick();
      });
    }
    return {
      ready,
      handlers: { interest: (message, from) => pipeline.interest(from.port, message.id, message.format, message.delta) },
      dataTopics: (topic, payload) => pipeline.handle(topic, payload),
      stop: () => clearInterval(ticker),
      close: () => keeper?.close(),
    };
  },
};
