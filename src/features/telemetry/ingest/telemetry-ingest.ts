/** Telemetry on the ingest thread: every bus message that is not a control message, decoded once and encoded once per wanted format. */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';
import type { TelemetryToIngest } from '../messages.js';
import { TelemetryPipeline } from './telemetry-pipeline.js';

export const telemetry: IngestFeature<TelemetryToIngest> = {
  name: 'telemetry',
  register({ config, fanout, stats, logger }) {
    const pipeline = new TelemetryPipeline(config.telemetry, config.limits.maxJsonDepth, fanout, stats, logger.child({ component: 'pipeline' }));
    const ticker = setInterval(() => pipeline.tick(), 1000);
    return {
      handlers: { interest: (message, from) => pipeline.interest(from.port, message.id, message.format, message.delta) },
      dataTopics: (topic, payload) => pipeline.handle(topic, payload),
      stop: () => clearInterval(ticker),
    };
  },
};
