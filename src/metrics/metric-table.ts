/**
 * Every number the gateway keeps, one table. Each thread writes only its own row of the shared
 * stats (single writer, so no locks); /stats and /metrics on any edge sum the rows. The index of a
 * metric in its role's list is its slot in that row.
 */
type MetricKind = 'counter' | 'gauge';

export interface MetricSpec {
  readonly key: string;
  readonly kind: MetricKind;
  readonly help: string;
}

/** The embedded broker's refusals; it runs on the main thread, the global row's writer. */
export const BROKER_METRICS = [
  { key: 'broker_connects_refused_total', kind: 'counter', help: 'MQTT connections the embedded broker refused: bad username or password, anonymous when not allowed (GATEWAY_BROKER_ANONYMOUS), or the gateway\'s client id taken by another client.' },
  { key: 'broker_publishes_refused_total', kind: 'counter', help: 'Publishes the embedded broker refused (and disconnected the client): a device or anonymous client publishing on a control topic or outside GATEWAY_MQTT_TOPICS. Logged without payloads.' },
  { key: 'broker_subscribes_refused_total', kind: 'counter', help: 'Subscriptions the embedded broker refused (SUBACK 0x80): a device or anonymous client whose filter could match a control topic.' },
] as const satisfies readonly MetricSpec[];

/** The store's state and its 503s, written by the main thread (pool/store-service.ts) from the pool's replies. */
export const STORE_METRICS = [
  { key: 'store_available', kind: 'gauge', help: '0 from a store call that found the database unreachable or too slow (503 GW_ERR_STORE_UNAVAILABLE) until a ping to it succeeds (tried once a second); /readyz answers 503 "store unavailable" meanwhile. Always 1 on SQLite.' },
  { key: 'store_unavailable_total', kind: 'counter', help: 'Store calls answered 503 GW_ERR_STORE_UNAVAILABLE (the database unreachable, shutting down, or past a timeout); nothing was written.' },
  { key: 'store_overloaded_total', kind: 'counter', help: 'Store calls answered 503 GW_ERR_OVERLOADED: the store queue was full (GATEWAY_STORE_QUEUE) or a task waited past GATEWAY_STORE_QUEUE_TIMEOUT_MS for a database connection.' },
] as const satisfies readonly MetricSpec[];

export const GLOBAL_METRICS = [
  { key: 'shutting_down', kind: 'gauge', help: '1 while the gateway is shutting down.' },
  { key: 'started_at_ms', kind: 'gauge', help: 'Start time, ms since the epoch.' },
  { key: 'edge_threads', kind: 'gauge', help: 'Edge threads serving the port.' },
  ...BROKER_METRICS,
  ...STORE_METRICS,
] as const satisfies readonly MetricSpec[];

export const INGEST_METRICS = [
  { key: 'mqtt_messages_received_total', kind: 'counter', help: 'MQTT messages received on the telemetry topics.' },
  { key: 'telemetry_messages_processed_total', kind: 'counter', help: 'Valid telemetry messages decoded and fanned out.' },
  { key: 'telemetry_rejected_json_total', kind: 'counter', help: 'Payloads that were not valid JSON.' },
  { key: 'telemetry_rejected_shape_total', kind: 'counter', help: 'Payloads that were JSON but not an object.' },
  { key: 'telemetry_rejected_size_total', kind: 'counter', help: 'Payloads over GATEWAY_MAX_PAYLOAD_BYTES.' },
  { key: 'telemetry_rejected_device_id_total', kind: 'counter', help: 'Payloads with a missing or invalid device id.' },
  { key: 'telemetry_rejected_utf8_total', kind: 'counter', help: 'Payloads that were not valid UTF-8 (never relayed: JSON clients would be cut).' },
  { key: 'telemetry_rejected_depth_total', kind: 'counter', help: 'Payloads nested deeper than GATEWAY_MAX_JSON_DEPTH.' },
  { key: 'mqtt_connected', kind: 'gauge', help: '1 while the ingest MQTT client is connected.' },
  { key: 'mqtt_reconnects_total', kind: 'counter', help: 'Reconnect attempts to the broker.' },
  { key: 'devices_known', kind: 'gauge', help: 'Devices with a known last position.' },
  { key: 'devices_monitored', kind: 'gauge', help: 'Devices with at least one subscriber.' },
  { key: 'frames_encoded_total', kind: 'counter', help: 'Envelopes encoded (once per message and wire format with subscribers).' },
  { key: 'batches_sent_total', kind: 'counter', help: 'Frame batches handed to the edge threads.' },
  { key: 'control_unauthenticated_total', kind: 'counter', help: 'Control messages on the bus (channel events, user/role events, Azure commands, revocations, test hooks) dropped before anything read them: no tag, a tag that does not match the key, topic and bytes, a time outside ±5 min, or over the size bound.' },
  { key: 'control_rejected_total', kind: 'counter', help: 'Revocation or event messages on the bus that were malformed.' },
  { key: 'ingest_rate_per_second', kind: 'gauge', help: 'Telemetry messages processed in the last second.' },
  { key: 'events_received_total', kind: 'counter', help: 'Messages received on the channel topics (GATEWAY_CHANNELS_TOPIC).' },
  { key: 'events_published_total', kind: 'counter', help: 'Channel events handed to the edges, in offset order (from the bus, or read from the store\'s log to fill a gap).' },
  { key: 'events_rejected_total', kind: 'counter', help: 'Channel messages refused: unknown channel, not JSON, too big, wrong shape, the epoch of another store.' },
  { key: 'events_duplicates_total', kind: 'counter', help: 'Channel events dropped as copies of one already delivered (an offset at or below the channel\'s last).' },
  { key: 'events_local_total', kind: 'counter', help: 'Channel events this node wrote (SQLite) and took from its own store pool\'s reply (the local fast path), before the relay\'s copy came back from the bus; that copy is then dropped, not counted as a duplicate.' },
  { key: 'events_gaps_total', kind: 'counter', help: 'Channel events that arrived from the bus ahead of a missing offset of their channel (held, and the gap filled from the store\'s log first).' },
  { key: 'events_gap_repairs_total', kind: 'counter', help: 'Reads of the store\'s channel log to fill a gap (a bus message ahead of a missing offset, or the head poll).' },
  { key: 'events_gap_repaired_total', kind: 'counter', help: 'Channel events delivered from the store\'s log because the bus had not brought them.' },
  { key: 'events_gap_unrepairable_total', kind: 'counter', help: 'Channel offsets passed over because the log no longer held them (trimmed by size or age before this node read them); a replay across them is recovered:false.' },
  { key: 'events_head_poll_repairs_total', kind: 'counter', help: 'Repairs started by the head poll (GATEWAY_HEAD_POLL_MS): the store\'s head of a channel was ahead of this node for two polls in a row, with no later event to reveal the gap.' },
  { key: 'events_intake_total', kind: 'counter', help: 'Channel events published on the bus without a position (by a backend) and written to the store\'s log by this node (then relayed with their position).' },
  { key: 'outbox_published_total', kind: 'counter', help: 'Outbox rows published to the bus (retries included).' },
  { key: 'outbox_retries_total', kind: 'counter', help: 'Outbox rows claimed again after their lease lapsed without the broker\'s acknowledgement (this node\'s or a dead node\'s).' },
  { key: 'outbox_taken_over_total', kind: 'counter', help: 'Outbox rows this node claimed from another node\'s lapsed lease (that node died or lost the bus) and published (PostgreSQL).' },
  { key: 'outbox_dead_letters', kind: 'gauge', help: 'Outbox rows in the store\'s dead-letter table (dead_letters; GET /api/v1/outbox/dead-letters).' },
  { key: 'outbox_dead_lettered_total', kind: 'counter', help: 'Outbox rows moved to the dead letters after 5 claims without the broker\'s acknowledgement (the event stays in the log and is still delivered from there).' },
  { key: 'ingest_poison_messages_total', kind: 'counter', help: 'Bus messages (or history rows at start) whose handling threw past the decoders\' checks: counted, logged with topic, length and error, skipped.' },
  { key: 'outbox_pending', kind: 'gauge', help: 'Outbox rows the broker has not acknowledged yet, on every node (sampled every second).' },
  { key: 'azure_commands_total', kind: 'counter', help: 'Azure Web PubSub commands received on the bus (sends, membership, closes, permissions).' },
  { key: 'trips_active_fleet', kind: 'gauge', help: 'Active equipment in the registry (docs/compat/trips.md monitoring; sampled every 5 s).' },
  { key: 'trips_connected_equipment', kind: 'gauge', help: 'Active equipment with a connection to the trips hub on any live node of the cluster (the union of their heartbeats; sampled every 5 s).' },
  { key: 'trips_node_connected_equipment', kind: 'gauge', help: 'Active equipment with a connection to the trips hub on this node (sampled every 5 s).' },
  { key: 'cluster_nodes_live', kind: 'gauge', help: 'Live nodes in the node registry, this one included (read every heartbeat).' },
  { key: 'node_heartbeat_failures_total', kind: 'counter', help: 'Heartbeats of this node that the store refused or did not answer (logged, rate-limited).' },
  { key: 'trip_events_last_hour', kind: 'gauge', help: 'Trip events written in the last hour (sampled every 5 s).' },
  { key: 'trip_outbound_sent_total', kind: 'counter', help: 'Trip events sent to the real Azure Web PubSub service (AZURE_WEBPUBSUB_CONNECTION_STRING).' },
  { key: 'trip_outbound_retries_total', kind: 'counter', help: 'Sends to the real Azure service that failed and were retried with backoff.' },
  { key: 'trip_outbound_failed_total', kind: 'counter', help: 'Trip events the real Azure service never took: refused over 1 MB (Message Too Large) or out of retries.' },
  { key: 'azure_commands_rejected_total', kind: 'counter', help: 'Azure Web PubSub commands on the bus refused: unknown hub, not JSON, wrong shape, bad filter.' },
  { key: 'azure_presence_received_total', kind: 'counter', help: 'Azure presence messages from other nodes taken (change batches and snapshot parts on GATEWAY_AZURE_PRESENCE_TOPIC).' },
  { key: 'azure_presence_rejected_total', kind: 'counter', help: 'Azure presence messages dropped as malformed (not JSON, wrong shape, bad field).' },
  { key: 'azure_remote_handovers_asked_total', kind: 'counter', help: 'Reliable Azure sessions this node asked another node for (a client resumed here a session the cluster directory places there).' },
  { key: 'azure_remote_handovers_total', kind: 'counter', help: 'Reliable Azure sessions another node handed over to this one (the client resumed here with its connection id and nothing lost).' },
  { key: 'azure_remote_handovers_served_total', kind: 'counter', help: 'Reliable Azure sessions this node handed over to another node.' },
  { key: 'azure_remote_handover_failures_total', kind: 'counter', help: 'Handovers across nodes that failed (logged with why): no answer within 5 s, the owner had no such session or refused a second owner, or the state was over 1 MiB. The client starts a new connection.' },
  { key: 'azure_remote_handover_rejected_total', kind: 'counter', help: 'Messages on this node\'s Azure handover topic dropped as malformed (not JSON, wrong shape, over 1 MiB, a session that does not match the question).' },
  { key: 'azure_presence_expired_total', kind: 'counter', help: 'Nodes whose Azure connections left this directory after GATEWAY_AZURE_PRESENCE_TTL_MS without a presence message from them.' },
  { key: 'azure_presence_remote_connections', kind: 'gauge', help: 'Azure connections of other nodes in this node\'s directory (from their presence messages).' },
  { key: 'positions_flushed_total', kind: 'counter', help: 'Last positions written to the data directory (one per device changed since the previous batch, every GATEWAY_POSITIONS_FLUSH_MS).' },
  { key: 'positions_flush_skipped_total', kind: 'counter', help: 'Position batches not sent because the previous one was still being written (its devices go in the next one).' },
  { key: 'positions_flush_ms', kind: 'gauge', help: 'Time the ingest thread spent making the last batch of positions, in milliseconds (a store pool thread writes it).' },
  { key: 'ingest_cpu_seconds_total', kind: 'counter', help: 'CPU time (user + system) of the ingest thread, seconds, written every watchdog beat (GATEWAY_WATCHDOG_MS / 5, at most 1 s) from /proc/thread-self/stat; 0 off Linux.' },
] as const satisfies readonly MetricSpec[];

export const EDGE_METRICS = [
  { key: 'connections', kind: 'gauge', help: 'Open WebSocket connections.' },
  { key: 'connections_total', kind: 'counter', help: 'WebSocket connections accepted.' },
  { key: 'upgrades_rejected_total', kind: 'counter', help: 'Upgrades refused (bad subprotocol, origin, shutting down).' },
  { key: 'subscriptions', kind: 'gauge', help: 'Active (connection, device) subscriptions.' },
  { key: 'deliveries_total', kind: 'counter', help: 'Frames handed to uWS for subscribers (frames x subscribers).' },
  { key: 'snapshots_sent_total', kind: 'counter', help: 'Last-position snapshots sent on subscribe or after a conflation.' },
  { key: 'conflations_total', kind: 'counter', help: 'Times a socket fell behind and its telemetry was conflated to the latest position.' },
  { key: 'drops_total', kind: 'counter', help: 'Positions a lagging socket skipped (conflated away): exact, from per-device sequence numbers.' },
  { key: 'slow_consumer_closes_total', kind: 'counter', help: 'Sockets closed with 4000 for lagging too long.' },
  { key: 'bad_frames_total', kind: 'counter', help: 'Client frames refused (invalid, unknown action, too big, invalid UTF-8), on every WebSocket route.' },
  { key: 'bad_frame_closes_total', kind: 'counter', help: 'Sockets closed for a bad frame: too many in a minute (4501), too big (1009), a malformed Azure frame (1008), or cut by uWS (invalid UTF-8, over its hard cap).' },
  { key: 'invalid_utf8_closes_total', kind: 'counter', help: 'Sockets uWS cut without a close frame (the client sees 1006) for a text frame that is not UTF-8; the gateway never sees the frame, so it cannot answer 1007.' },
  { key: 'frame_cap_closes_total', kind: 'counter', help: 'Sockets uWS cut without a close frame (the client sees 1006) for a frame over its hard cap (the route\'s limit + 64 KiB).' },
  { key: 'origin_refusals_total', kind: 'counter', help: 'Browser requests and upgrades refused with 403 GW_ERR_ORIGIN_FORBIDDEN (an `Origin` not in GATEWAY_ALLOWED_ORIGINS).' },
  { key: 'encoding_refusals_total', kind: 'counter', help: 'Requests and upgrades refused with 400 GW_ERR_ENCODING_INVALID (malformed percent-encoding or invalid UTF-8 in the path or query).' },
  { key: 'invalid_requests_total', kind: 'counter', help: 'Connections closed with 4500 for invalid device_ids.' },
  { key: 'rate_limited_total', kind: 'counter', help: 'Upgrades refused (429) and connections closed (4029) by the rate limits.' },
  { key: 'auth_failures_total', kind: 'counter', help: 'Connections refused for a missing, invalid, expired or forbidden token, and operator requests refused with 401 GW_ERR_OPERATOR_UNAUTHORIZED (GATEWAY_OPERATOR_TOKEN).' },
  { key: 'token_expiry_closes_total', kind: 'counter', help: 'Authenticated connections ended because their token expired (4001) or share link expired (1000).' },
  { key: 'share_revocations_total', kind: 'counter', help: 'Live share-location viewers ended because their link was revoked.' },
  { key: 'user_connections', kind: 'gauge', help: 'Open /ws/connect connections (users and roles).' },
  { key: 'user_messages_sent_total', kind: 'counter', help: 'Frames sent to /ws/connect sockets: bus events, channel events, notifications, heartbeats and replies (docs/compat/user-hub.md total_messages_sent).' },
  { key: 'user_broadcasts_total', kind: 'counter', help: 'Broadcasts through POST /ws/_test/broadcast (docs/compat/user-hub.md total_broadcasts).' },
  { key: 'user_send_errors_total', kind: 'counter', help: 'Sends to /ws/connect sockets that failed (docs/compat/user-hub.md total_send_errors).' },
  { key: 'user_last_broadcast_at_ms', kind: 'gauge', help: 'Time of the last broadcast, ms since the epoch (0: none).' },
  { key: 'channel_connections', kind: 'gauge', help: 'Open channel connections (/api/v1/ws, /api/v1/ws/secure, /ws/{channel}).' },
  { key: 'channel_deliveries_total', kind: 'counter', help: 'Channel event frames handed to uWS for subscribers (frames x subscribers), replays included.' },
  { key: 'channel_replays_total', kind: 'counter', help: 'Reconnects with `since` answered with the missed events (recovered: true).' },
  { key: 'channel_unrecovered_total', kind: 'counter', help: 'Reconnects with `since` told recovered: false (gap out of history, or another epoch).' },
  { key: 'channel_history_holes_total', kind: 'counter', help: 'Holes met in a channel\'s history on an edge (an event that does not follow the last offset, the history read back at start ending before the head, or a replay that would not be contiguous): the history starts after the hole, and a `since` before it is told recovered: false, history_exceeded.' },
  { key: 'channel_recovery_waits_total', kind: 'counter', help: 'Reconnects with `since` ahead of this edge\'s last offset, held until the edge reaches it (at most 2 s, then GW_ERR_SINCE_INVALID).' },
  { key: 'rest_requests_total', kind: 'counter', help: 'REST requests to the collections and the publish API.' },
  { key: 'rest_errors_total', kind: 'counter', help: 'REST requests answered with an error status.' },
  { key: 'http_not_found_total', kind: 'counter', help: 'HTTP requests for a route that does not exist (unknown collection or path).' },
  { key: 'keepalives_sent_total', kind: 'counter', help: 'Keep-alive publishes (one per format per interval per edge).' },
  { key: 'azure_connections', kind: 'gauge', help: 'Open Azure Web PubSub client connections (/client/hubs/{hub}).' },
  { key: 'azure_sessions_detached', kind: 'gauge', help: 'Reliable Azure sessions whose socket dropped, kept for the client to resume (GATEWAY_AZURE_SESSION_TTL_S).' },
  { key: 'azure_connections_total', kind: 'counter', help: 'Azure client connections accepted (resumed sessions not included).' },
  { key: 'azure_connection_errors_total', kind: 'counter', help: 'Azure client upgrades refused (unknown hub, missing, bad or expired token, bad subprotocol) and sessions that could not be resumed.' },
  { key: 'azure_recoveries_total', kind: 'counter', help: 'Reliable Azure sessions resumed with their reconnection token (unacknowledged messages sent again).' },
  { key: 'azure_sessions_handed_over_total', kind: 'counter', help: 'Reliable Azure sessions handed over to this edge thread from another (of this node or, counted also in azure_remote_handovers_total, of another node), for a client whose resume reached this thread.' },
  { key: 'azure_handover_catchup_timeouts_total', kind: 'counter', help: 'Handovers to another node for which the owner thread gave up waiting (2 s) to apply the commands the asking node had applied; it handed over anyway (logged with what was missing: those commands do not reach the client).' },
  { key: 'azure_messages_delivered_total', kind: 'counter', help: 'Azure data messages handed to sockets or to a detached session\'s queue (messages x recipients).' },
  { key: 'azure_messages_lost_total', kind: 'counter', help: 'Azure messages a client never acknowledged when its session ended (expired detached, or over 1000 messages / 16 MB unacknowledged).' },
  { key: 'azure_rest_requests_total', kind: 'counter', help: 'Requests to the Azure Web PubSub REST data plane (/api/hubs/...).' },
  { key: 'azure_rest_errors_total', kind: 'counter', help: 'Azure REST requests answered with an error status (401 token, 400 request, 404, 413).' },
  { key: 'azure_upstream_requests_total', kind: 'counter', help: 'Events posted to Azure upstream event handlers (connect, connected, disconnected, user events), retries not counted.' },
  { key: 'azure_upstream_failures_total', kind: 'counter', help: 'Upstream events that failed: timeout, network error, non-2xx answer (after the retries of connected/disconnected); a failed connect refuses the client, a failed user event drops the connection.' },
  { key: 'azure_upstream_dropped_total', kind: 'counter', help: 'Upstream events not posted: the edge thread\'s queue was full (GATEWAY_AZURE_EVENT_QUEUE), or the handler failed the abuse-protection check (see azure_upstream_validation_failures_total).' },
  { key: 'azure_upstream_validation_failures_total', kind: 'counter', help: 'Abuse-protection checks (OPTIONS with WebHook-Request-Origin) an upstream failed: no WebHook-Allowed-Origin naming GATEWAY_AZURE_WEBHOOK_ORIGIN or *, an error or a timeout. The upstream is not used; checked again after 30 s.' },
  { key: 'trip_events_delivered_total', kind: 'counter', help: 'Trip events (docs/compat/trips.md) handed to Azure group members on this edge, counted once per event and edge.' },
  { key: 'trip_delivery_latency_ms_total', kind: 'counter', help: 'Sum over trip events of the ms from the REST write to the hand-off to the sockets (divide by trip_events_delivered_total for the mean).' },
] as const satisfies readonly MetricSpec[];

/** The watchdog's view (threads/progress.ts), computed when scraped; `thread` is a label of the first. */
export const HEALTH_METRICS = [
  { key: 'thread_progress_age_seconds', kind: 'gauge', help: 'Seconds since each thread last showed progress, by `thread` (main, ingest, ingest-mqtt, edge-N, token-pool, store-pool); 0 when not judged. Over GATEWAY_WATCHDOG_MS it is stalled.' },
  { key: 'threads_stalled', kind: 'gauge', help: 'Threads without progress for longer than GATEWAY_WATCHDOG_MS (/readyz and /healthz answer 503 meanwhile).' },
] as const satisfies readonly MetricSpec[];

type KeysOf<T extends readonly MetricSpec[]> = T[number]['key'];
export type GlobalMetric = KeysOf<typeof GLOBAL_METRICS>;
export type IngestMetric = KeysOf<typeof INGEST_METRICS>;
export type EdgeMetric = KeysOf<typeof EDGE_METRICS>;
