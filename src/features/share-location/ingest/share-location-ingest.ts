/** Share-location on the ingest thread: share-link revocations from the bus (GATEWAY_REVOCATIONS_TOPIC), for every edge. */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';

export const shareLocation: IngestFeature = {
  name: 'share-location',
  register({ config, controlMessages }) {
    return {
      control: [{ topic: config.share.revocationsTopic, subtopics: 'none', handle: (_, body) => controlMessages.revocation(body) }],
      handlers: {},
    };
  },
};
