/** Users on the ingest thread: the bus's user/role events (<GATEWAY_EVENTS_TOPIC>/all, user/<id>, role/<role>) for /ws/connect. */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';

export const users: IngestFeature = {
  name: 'users',
  register({ config, controlMessages }) {
    return {
      control: [{ topic: config.auth.eventsTopic, subtopics: 'any', handle: (target, body) => controlMessages.event(target, body) }],
      handlers: {},
    };
  },
};
