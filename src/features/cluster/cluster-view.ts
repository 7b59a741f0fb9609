/**
 * The cluster as an edge's stats routes see it (docs/guide.md "Clustering"): the live nodes of the
 * registry with the figures of their last heartbeat, read through the store pool on each request,
 * and this node's own figures fresh from the shared stats in place of its row (at most a heartbeat
 * old). A store that does not answer leaves this node alone: the totals are then this node's, and
 * `cluster_error` says why.
 */
import type { GatewayConfig } from '../../config/config.js';
import type { SharedStats } from '../../metrics/shared-stats.js';
import type { StoreReply, StoreTask } from '../../pool/store-protocol.js';
import type { NodeRow } from '../../store/store.js';
import type { PortClient } from '../../threads/port-rpc.js';
import { nodeFigures, type ClusterNode, type NodeFigures } from './node-figures.js';

export interface ClusterView {
  readonly self: string;
  /** Every live node, this one first, with its figures. */
  readonly nodes: readonly ClusterNode[];
  /** The registry's rows (this node's included when written), for GET /api/v1/cluster. */
  readonly rows: readonly NodeRow[];
  /** Distinct users over the live nodes' presence and `uniqueUsers`, when asked. */
  readonly uniqueUsers: number | null;
  /** Set when the registry could not be read: the view is this node alone. */
  readonly error?: string;
}

export interface ClusterViewDeps {
  readonly config: GatewayConfig;
  readonly shared: SharedStats;
  readonly store: PortClient<StoreTask, StoreReply>;
  /** This node's id (the ingest thread's, as it writes its heartbeat). */
  readonly nodeId: string;
}

function parseFigures(row: NodeRow): NodeFigures | null {
  try {
    return JSON.parse(row.figures) as NodeFigures;
  } catch {
    return null;
  }
}

/** The cluster now. `uniqueUsers`: this edge's own users, to be counted with the presence. */
export async function clusterView(deps: ClusterViewDeps, uniqueUsers?: readonly string[]): Promise<ClusterView> {
  const { shared, store, nodeId, config } = deps;
  const self: ClusterNode = { id: nodeId, figures: nodeFigures(shared) };
  try {
    const reply = await store.call({ op: 'cluster-nodes', ttlMs: config.cluster.nodeTtlMs, uniqueUsers });
    if (!reply.ok) throw new Error(reply.message);
    const body = JSON.parse(reply.body) as { nodes: NodeRow[]; unique_users: number | null };
    const others: ClusterNode[] = [];
    for (const row of body.nodes) {
      if (row.id === nodeId) continue;
      const figures = parseFigures(row);
      if (figures !== null) others.push({ id: row.id, figures });
    }
    return { self: nodeId, nodes: [self, ...others], rows: body.nodes, uniqueUsers: body.unique_users };
  } catch (err) {
    return { self: nodeId, nodes: [self], rows: [], uniqueUsers: uniqueUsers === undefined ? null : new Set(uniqueUsers).size, error: (err as Error).message };
  }
}
