/**
 * A node's figures: what it writes in its registry row every heartbeat and what the cluster-wide
 * stats add up (GET /ws/stats, POST /ws/_test/broadcast `sent`, /api/v1/stream/stats,
 * /api/v1/ws/stats, /api/v1/trips/stats: docs/guide.md "Clustering"). Read from the shared stats,
 * so any thread of the node makes the same figures: ingest for its heartbeat, the answering edge for
 * its own node's fresh ones.
 */
import type { SharedStats } from '../../metrics/shared-stats.js';

export interface NodeFigures {
  /** Open connections per endpoint family. */
  readonly connections: { readonly stream: number; readonly channels: number; readonly users: number; readonly azure: number };
  readonly stream: {
    readonly total_messages_processed: number;
    readonly active_subscribers: number;
    readonly devices_being_monitored: number;
    readonly connections: number;
    readonly deliveries_total: number;
  };
  readonly users: {
    readonly total_connections: number;
    readonly total_messages_sent: number;
    readonly total_broadcasts: number;
    readonly total_send_errors: number;
  };
  readonly channels: {
    readonly total_connections: number;
    readonly events_delivered: number;
    readonly replays: number;
    readonly unrecovered: number;
    readonly slow_consumer_closes: number;
    readonly events_published: number;
    readonly outbox_pending: number;
  };
  readonly trips: {
    /** This node's connected equipment (of the active fleet) on the trips hub. */
    readonly connected_equipment: number;
    readonly trip_events_delivered: number;
    readonly trip_delivery_latency_ms_total: number;
    readonly connection_errors: number;
    readonly connections_accepted: number;
    readonly messages_lost: number;
    readonly messages_delivered: number;
    /** Their codes: the trip monitor's union over the live nodes (ingest/trip-monitor.ts). */
    readonly equipment: readonly string[];
  };
}

/** The figures of this node now. `equipment`: its connected equipment codes, when the caller knows them (ingest). */
export function nodeFigures(shared: SharedStats, equipment: readonly string[] = []): NodeFigures {
  const edge = (key: Parameters<SharedStats['sumEdges']>[0]) => shared.sumEdges(key);
  const ingest = (key: Parameters<SharedStats['getIngest']>[0]) => shared.getIngest(key);
  return {
    connections: { stream: edge('connections'), channels: edge('channel_connections'), users: edge('user_connections'), azure: edge('azure_connections') },
    stream: {
      total_messages_processed: ingest('telemetry_messages_processed_total'),
      active_subscribers: edge('subscriptions'),
      devices_being_monitored: ingest('devices_monitored'),
      connections: edge('connections'),
      deliveries_total: edge('deliveries_total'),
    },
    users: {
      total_connections: edge('user_connections'),
      total_messages_sent: edge('user_messages_sent_total'),
      total_broadcasts: edge('user_broadcasts_total'),
      total_send_errors: edge('user_send_errors_total'),
    },
    channels: {
      total_connections: edge('channel_connections'),
      events_delivered: edge('channel_deliveries_total'),
      replays: edge('channel_replays_total'),
      unrecovered: edge('channel_unrecovered_total'),
      slow_consumer_closes: edge('slow_consumer_closes_total'),
      events_published: ingest('events_published_total'),
      outbox_pending: ingest('outbox_pending'),
    },
    trips: {
      connected_equipment: ingest('trips_node_connected_equipment'),
      trip_events_delivered: edge('trip_events_delivered_total'),
      trip_delivery_latency_ms_total: edge('trip_delivery_latency_ms_total'),
      connection_errors: edge('azure_connection_errors_total'),
      connections_accepted: edge('azure_connections_total'),
      messages_lost: edge('azure_messages_lost_total'),
      messages_delivered: edge('azure_messages_delivered_total'),
      equipment,
    },
  };
}

/** One node of the cluster as the stats routes see it. */
export interface ClusterNode {
  readonly id: string;
  readonly figures: NodeFigures;
}

/** The sum over the nodes of one figure. */
export const sum = (nodes: readonly ClusterNode[], pick: (f: NodeFigures) => number): number => nodes.reduce((total, n) => total + (pick(n.figures) || 0), 0);
/** The largest over the nodes of one figure: what every node sees of the one bus (messages processed, devices), not additive. */
export const max = (nodes: readonly ClusterNode[], pick: (f: NodeFigures) => number): number => nodes.reduce((m, n) => Math.max(m, pick(n.figures) || 0), 0);
/** `nodes: {<id>: <pick of its figures>}`, beside the totals. */
export const perNode = <T>(nodes: readonly ClusterNode[], pick: (f: NodeFigures) => T): Record<string, T> =>
  Object.fromEntries(nodes.map((n) => [n.id, pick(n.figures)]));
