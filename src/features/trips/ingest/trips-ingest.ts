/** Trips on the ingest thread: the monitor of active equipment and its connections to the trips hub. */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';
import { TripMonitor } from './trip-monitor.js';

export interface TripsIngestLinks {
  /** The users connected to an Azure hub on this node (azure-ingest.ts). */
  readonly connectedUsers: (hub: string) => string[];
  /** The equipment codes the other live nodes list as connected (features/cluster/ingest/node-registry.ts). */
  readonly otherNodesEquipment: () => Iterable<string>;
  /** Given this node's connected equipment, for its heartbeat. */
  readonly ownEquipment: (read: () => readonly string[]) => void;
}

export function tripsIngest(links: TripsIngestLinks): IngestFeature {
  return {
    name: 'trips',
    register({ config, store, stats, logger }) {
      const monitor = new TripMonitor(
        store.tripMonitor,
        () => links.connectedUsers(config.trips.hub),
        links.otherNodesEquipment,
        stats,
        logger.child({ component: 'trips-monitor' }),
      );
      links.ownEquipment(() => monitor.ownEquipment());
      return { handlers: {}, stop: () => monitor.stop() };
    },
  };
}
