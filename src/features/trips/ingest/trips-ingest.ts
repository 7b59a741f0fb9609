/** Trips on the ingest thread: the monitor of active equipment and its connections to the trips hub. */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';
import { TripMonitor } from './trip-monitor.js';

export interface TripsIngestLinks {
  /** The users connected to an Azure hub on this node (azure-ingest.ts). */
  readonly connectedUsers: (hub: string) => string[];
}

export function tripsIngest(links: TripsIngestLinks): IngestFeature {
  return {
    name: 'trips',
    register({ config, storeDb, stats }) {
      const monitor = new TripMonitor(storeDb, () => links.connectedUsers(config.trips.hub), stats);
      return { handlers: {}, stop: () => monitor.stop() };
    },
  };
}
