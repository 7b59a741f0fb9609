/** The cluster on the ingest thread: the node registry and the users' presence (node-registry.ts). */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';
import type { SharedStats } from '../../../metrics/shared-stats.js';
import { gatewayVersion } from '../../../util/version.js';
import type { ClusterToIngest } from '../messages.js';
import { nodeFigures } from '../node-figures.js';
import { NodeRegistry } from './node-registry.js';

export interface ClusterIngestLinks {
  readonly shared: SharedStats;
  /** This node's connected equipment (the trip monitor's last sample). */
  readonly ownEquipment: () => readonly string[];
}

export interface ClusterIngest extends IngestFeature<ClusterToIngest> {
  /** The equipment codes the other live nodes list as connected (empty until the first heartbeat). */
  otherEquipment(): Iterable<string>;
}

export function clusterIngest(links: ClusterIngestLinks): ClusterIngest {
  let registry: NodeRegistry | undefined;
  return {
    name: 'cluster',
    otherEquipment: () => registry?.otherEquipment() ?? [],
    register({ config, identity, store, stats, logger }) {
      registry = new NodeRegistry({
        store: store.nodes,
        id: identity.nodeId,
        version: gatewayVersion(),
        startedAt: links.shared.getGlobal('started_at_ms'),
        heartbeatMs: config.cluster.heartbeatMs,
        ttlMs: config.cluster.nodeTtlMs,
        figures: () => nodeFigures(links.shared, links.ownEquipment()),
        stats,
        logger: logger.child({ component: 'cluster' }),
      });
      const started = registry;
      return {
        handlers: { 'user-presence': (message, from) => started.presence(from.index, message.entries) },
        ready: started.ready,
        close: () => started.close(),
      };
    },
  };
}
