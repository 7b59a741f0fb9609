/**
 * The body of GET /api/v1/stream/stats: the reference's three fields first (docs/compat/gps-stream.md,
 * "Endpoint de Estadísticas"), then what an operator needs. Summed over all edge threads.
 */
import type { SharedStats } from './shared-stats.js';

export function streamStats(stats: SharedStats, mqttUrl: string): Record<string, unknown> {
  const edge = (key: Parameters<SharedStats['sumEdges']>[0]) => stats.sumEdges(key);
  const ingest = (key: Parameters<SharedStats['getIngest']>[0]) => stats.getIngest(key);
  return {
    total_messages_processed: ingest('telemetry_messages_processed_total'),
    active_subscribers: edge('subscriptions'),
    devices_being_monitored: ingest('devices_monitored'),
    connections: edge('connections'),
    connections_total: edge('connections_total'),
    deliveries_total: edge('deliveries_total'),
    snapshots_sent_total: edge('snapshots_sent_total'),
    drops_total: edge('drops_total'),
    conflations_total: edge('conflations_total'),
    slow_consumer_closes_total: edge('slow_consumer_closes_total'),
    bad_frames_total: edge('bad_frames_total'),
    bad_frame_closes_total: edge('bad_frame_closes_total'),
    invalid_utf8_closes_total: edge('invalid_utf8_closes_total'),
    frame_cap_closes_total: edge('frame_cap_closes_total'),
    encoding_refusals_total: edge('encoding_refusals_total'),
    origin_refusals_total: edge('origin_refusals_total'),
    invalid_requests_total: edge('invalid_requests_total'),
    upgrades_rejected_total: edge('upgrades_rejected_total'),
    rate_limited_total: edge('rate_limited_total'),
    auth_failures_total: edge('auth_failures_total'),
    token_expiry_closes_total: edge('token_expiry_closes_total'),
    share_revocations_total: edge('share_revocations_total'),
    user_connections: edge('user_connections'),
    ingest: {
      messages_received_total: ingest('mqtt_messages_received_total'),
      rate_per_second: ingest('ingest_rate_per_second'),
      rejected: {
        json: ingest('telemetry_rejected_json_total'),
        shape: ingest('telemetry_rejected_shape_total'),
        size: ingest('telemetry_rejected_size_total'),
        device_id: ingest('telemetry_rejected_device_id_total'),
        utf8: ingest('telemetry_rejected_utf8_total'),
        depth: ingest('telemetry_rejected_depth_total'),
      },
      poison_messages_total: ingest('ingest_poison_messages_total'),
      control_unauthenticated_total: ingest('control_unauthenticated_total'),
      devices_known: ingest('devices_known'),
      frames_encoded_total: ingest('frames_encoded_total'),
      batches_sent_total: ingest('batches_sent_total'),
    },
    mqtt: {
      connected: ingest('mqtt_connected') === 1,
      reconnects_total: ingest('mqtt_reconnects_total'),
      url: mqttUrl,
    },
    broker: {
      connects_refused_total: stats.getGlobal('broker_connects_refused_total'),
      publishes_refused_total: stats.getGlobal('broker_publishes_refused_total'),
      subscribes_refused_total: stats.getGlobal('broker_subscribes_refused_total'),
    },
    edge_threads: stats.getGlobal('edge_threads'),
    uptime_seconds: Math.round((Date.now() - stats.getGlobal('started_at_ms')) / 1000),
    shutting_down: stats.getGlobal('shutting_down') === 1,
  };
}
