/**
 * Every environment variable the gateway reads, in one table. The configuration table of docs/reference/configuration.md is
 * checked against this list by test/unit/docs-in-step.test.ts, so a new variable must be
 * documented there too.
 */
import { availableParallelism } from 'node:os';
import { DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH, MIN_JSON_DEPTH } from '../protocol/bounded-json.js';

type EnvKind = 'int' | 'string' | 'list' | 'enum' | 'url';

export interface EnvVar {
  readonly name: string;
  readonly kind: EnvKind;
  /** Default as the user would write it; `undefined` means "not set". */
  readonly default: string | undefined;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
  readonly description: string;
}

const defaultThreads = String(Math.max(1, availableParallelism() - 1));

export const ENV_TABLE: readonly EnvVar[] = [
  { name: 'PORT', kind: 'int', default: '8080', min: 0, max: 65535, description: 'HTTP and WebSocket port; 0 picks a free port (logged).' },
  { name: 'GATEWAY_HOST', kind: 'string', default: '0.0.0.0', description: 'Address the HTTP/WebSocket listener binds to.' },
  { name: 'GATEWAY_TLS_CERT', kind: 'string', default: undefined, description: 'PEM certificate file (chain after the leaf, if any). With GATEWAY_TLS_KEY the port serves `https://` and `wss://` itself (uWS SSLApp); unset: plain `http://` and `ws://`.' },
  { name: 'GATEWAY_TLS_KEY', kind: 'string', default: undefined, description: 'PEM private key file of GATEWAY_TLS_CERT.' },
  { name: 'GATEWAY_TLS_PASSPHRASE', kind: 'string', default: undefined, description: 'Passphrase of an encrypted GATEWAY_TLS_KEY.' },
  { name: 'GATEWAY_TLS_CA', kind: 'string', default: undefined, description: 'PEM CA file handed to uWS as `ca_file_name`: clients are asked for a certificate from it, but uWS neither requires nor checks one (this is not mutual TLS). Intermediates of the server certificate belong in GATEWAY_TLS_CERT.' },
  { name: 'GATEWAY_TRUSTED_PROXIES', kind: 'list', default: undefined, description: 'Comma-separated addresses and CIDRs (IPv4 and IPv6, e.g. `10.0.0.0/8,::1`) of reverse proxies in front of the gateway. Only a request whose TCP peer is one of them has its client address taken from `X-Forwarded-For` (the right-most entry that is not a trusted proxy) or `Forwarded: for=`, and its scheme and host (for the links the gateway builds) from `X-Forwarded-Proto`/`X-Forwarded-Host` or `Forwarded`. Unset: those headers are ignored (see docs/guide/security.md#tls-and-proxies).' },
  { name: 'GATEWAY_THREADS', kind: 'int', default: defaultThreads, min: 1, max: 64, description: 'Edge threads serving the port (SO_REUSEPORT); default is cores - 1, at least 1.' },
  { name: 'MQTT_URL', kind: 'url', default: undefined, description: 'External broker (mqtt://, mqtts://, ws://). Unset: start the embedded aedes broker.' },
  { name: 'GATEWAY_BROKER_PORT', kind: 'int', default: '1883', min: 0, max: 65535, description: 'Port of the embedded broker when MQTT_URL is unset; 0 picks a free port.' },
  { name: 'GATEWAY_BROKER_HOST', kind: 'string', default: '127.0.0.1', description: 'Address the embedded broker binds to: loopback unless told otherwise (`0.0.0.0` for devices on the network, with GATEWAY_BROKER_USERS; see docs/guide/security.md).' },
  { name: 'GATEWAY_BROKER_USERS', kind: 'string', default: undefined, description: 'Logins of the embedded broker, as JSON or `@path/to/users.json`: `{"truck-7":{"role":"device","password_hash":"scrypt:…"},"erp":{"role":"backend","secret":"…"}}` (`npm run broker-user` makes a hash). Devices may publish telemetry only; backends also the control topics. The name `gateway` is the gateway\'s own login.' },
  { name: 'GATEWAY_BROKER_ANONYMOUS', kind: 'enum', default: 'auto', values: ['auto', 'telemetry', 'none'], description: 'MQTT clients without a login on the embedded broker: `telemetry` may publish on GATEWAY_MQTT_TOPICS (never on a control topic), `none` are refused; `auto` is `telemetry` on a loopback GATEWAY_BROKER_HOST without GATEWAY_BROKER_USERS, else `none`.' },
  { name: 'GATEWAY_MQTT_TOPICS', kind: 'list', default: 'gps/#', description: 'Comma-separated MQTT topic filters carrying device telemetry.' },
  { name: 'GATEWAY_MQTT_USERNAME', kind: 'string', default: undefined, description: 'Username of the gateway on an external broker (MQTT_URL); overrides one in the URL. The embedded broker gives the gateway a login of its own.' },
  { name: 'GATEWAY_MQTT_PASSWORD', kind: 'string', default: undefined, description: 'Password of the gateway on an external broker; overrides one in the URL. Never logged.' },
  { name: 'GATEWAY_MQTT_CA', kind: 'string', default: undefined, description: 'PEM file of the CA(s) that signed the broker\'s certificate, for `mqtts://`/`wss://` to a private CA (default: Node\'s public CAs). The certificate is always verified.' },
  { name: 'GATEWAY_MQTT_CERT', kind: 'string', default: undefined, description: 'PEM file of the gateway\'s client certificate for brokers that require one (with GATEWAY_MQTT_KEY).' },
  { name: 'GATEWAY_MQTT_KEY', kind: 'string', default: undefined, description: 'PEM file of the client certificate\'s private key (with GATEWAY_MQTT_CERT).' },
  { name: 'GATEWAY_MQTT_QOS', kind: 'int', default: '0', min: 0, max: 2, description: 'QoS of the telemetry subscriptions.' },
  { name: 'GATEWAY_MQTT_CLIENT_ID', kind: 'string', default: undefined, description: 'MQTT client id; default `gateway-<host>-<pid>`.' },
  { name: 'GATEWAY_MQTT_RECONNECT_MIN_MS', kind: 'int', default: '250', min: 10, max: 600000, description: 'First reconnect delay to the broker (exponential backoff with full jitter).' },
  { name: 'GATEWAY_MQTT_RECONNECT_MAX_MS', kind: 'int', default: '15000', min: 10, max: 3600000, description: 'Cap of the reconnect delay.' },
  { name: 'GATEWAY_CLUSTER_KEY', kind: 'string', default: undefined, description: 'Key (at least 32 bytes, e.g. `openssl rand -hex 32`) of the HMAC tag every control message on the bus carries: channel events, user/role events, Azure commands, revocations (see docs/guide/security.md#authenticated-control-messages). Every node and every backend that publishes on those topics needs the same one. Unset: a random key per start (one node only; other nodes\' and backends\' messages are dropped).' },
  { name: 'GATEWAY_CLUSTER_KEY_ACCEPTED', kind: 'string', default: undefined, description: 'A second key (at least 32 bytes) whose tags are accepted too, never used to tag: for changing `GATEWAY_CLUSTER_KEY` without dropping messages (give every node the new key here, then make it `GATEWAY_CLUSTER_KEY` with the old one here, then remove this).' },
  { name: 'GATEWAY_DEVICE_ID_FIELD', kind: 'string', default: 'DEVICE_ID', description: 'Payload field holding the device id.' },
  { name: 'GATEWAY_DEVICE_ID_TOPIC_LEVEL', kind: 'int', default: undefined, min: 0, max: 32, description: 'Take the device id from this topic level instead (0-based; `gps/{id}` is 1).' },
  { name: 'GATEWAY_MAX_PAYLOAD_BYTES', kind: 'int', default: '65536', min: 64, max: 16777216, description: 'Largest MQTT telemetry payload accepted; larger ones are counted and dropped.' },
  { name: 'GATEWAY_MAX_DEVICES_PER_CONNECTION', kind: 'int', default: '1000', min: 1, max: 100000, description: 'Most devices one connection may watch.' },
  { name: 'GATEWAY_MAX_JSON_DEPTH', kind: 'int', default: String(DEFAULT_MAX_JSON_DEPTH), min: MIN_JSON_DEPTH, max: MAX_JSON_DEPTH, description: 'Deepest nesting of objects and arrays accepted in any JSON input (MQTT payloads, bus messages, REST bodies), checked before parsing; deeper ones are refused.' },
  { name: 'GATEWAY_MAX_FRAME_BYTES', kind: 'int', default: '4096', min: 64, max: 1048576, description: 'Largest client frame; larger ones close with 1009.' },
  { name: 'GATEWAY_MAX_BAD_FRAMES', kind: 'int', default: '20', min: 1, max: 100000, description: 'Bad client frames tolerated per minute before closing with 4501.' },
  { name: 'GATEWAY_STREAM_BATCH_MS', kind: 'int', default: '100', min: 10, max: 5000, description: 'How long `device_ids=*&batch=1` streams collect positions before sending them as one `batch` message.' },
  { name: 'GATEWAY_KEEPALIVE_MS', kind: 'int', default: '60000', min: 50, max: 3600000, description: 'Interval of the `{"event":"ping"}` keep-alive frame.' },
  { name: 'GATEWAY_IDLE_TIMEOUT_S', kind: 'int', default: '120', min: 0, max: 960, description: 'uWS idle timeout with automatic protocol pings; 0 or 9-960 (other values abort uWS, so they are refused here).' },
  { name: 'GATEWAY_WS_MAX_BACKPRESSURE', kind: 'int', default: '262144', min: 1024, max: 268435456, description: 'Bytes buffered for one socket before it counts as lagging and telemetry is conflated.' },
  { name: 'GATEWAY_SLOW_CONSUMER_TIMEOUT_MS', kind: 'int', default: '30000', min: 100, max: 3600000, description: 'A socket lagging this long without draining is closed with 4000.' },
  { name: 'GATEWAY_POSITIONS_RETENTION_S', kind: 'int', default: '86400', min: 0, max: 31536000, description: "Each device's last position is kept in the data directory for this long, so the snapshots of a restarted gateway hold the devices seen within it; older ones are deleted. 0: positions are not kept (a restart starts with none)." },
  { name: 'GATEWAY_POSITIONS_FLUSH_MS', kind: 'int', default: '1000', min: 50, max: 60000, description: 'Ingest writes the positions that changed since its last write at this interval, in one statement (never per message): a process killed hard loses at most this much.' },
  { name: 'GATEWAY_BATCH_MAX_BYTES', kind: 'int', default: '65536', min: 1024, max: 16777216, description: 'Ingest flushes a batch of frames to the edges at this size or at the end of the event-loop turn.' },
  { name: 'GATEWAY_WATCHDOG_MS', kind: 'int', default: '10000', min: 500, max: 600000, description: 'A thread (main, ingest and its MQTT client, each edge, each pool) that shows no progress for this long makes `/readyz` and `/healthz` answer 503; after twice this long the process exits with code 70 for its supervisor to restart it (see docs/guide/operations.md#health-and-the-watchdog).' },
  { name: 'GATEWAY_WATCHDOG_TOPIC', kind: 'string', default: 'gateway/watchdog', description: 'MQTT topic prefix of the watchdog probe: ingest publishes to `<prefix>/<node id>` and expects it back; the broker must let the gateway publish and subscribe there.' },
  { name: 'GATEWAY_TEST_HOOKS', kind: 'list', default: '', description: 'Test only, and only with `ENVIRONMENT=test` (ignored with a warning otherwise): `bus` lets messages on `<GATEWAY_WATCHDOG_TOPIC>/_test` wedge a thread or crash a pool thread, `fail-pool-start` makes the store pool fail at start. Used by the watchdog tests.' },
  { name: 'GATEWAY_SHUTDOWN_TIMEOUT_MS', kind: 'int', default: '10000', min: 100, max: 600000, description: 'Deadline for a graceful shutdown before threads are stopped hard.' },
  { name: 'ENVIRONMENT', kind: 'enum', default: 'development', values: ['development', 'test', 'staging', 'production'], description: 'Deployment environment; `production` turns off the test-only routes (`POST /ws/_test/broadcast`).' },
  { name: 'GATEWAY_JWT_SECRET', kind: 'string', default: undefined, description: 'HS256 shared secret (at least 32 bytes). HS256 tokens are refused when unset.' },
  { name: 'GATEWAY_JWT_PUBLIC_KEYS', kind: 'list', default: '', description: 'Public keys, each `ALG:path.pem` or `ALG:kid:path.pem` (ALG one of RS256, ES256, EdDSA): the algorithm is pinned per key.' },
  { name: 'GATEWAY_JWT_JWKS', kind: 'string', default: undefined, description: 'A JWKS file path or https URL; every key must name its `alg`.' },
  { name: 'GATEWAY_JWT_ISSUER', kind: 'string', default: undefined, description: 'Required `iss` of JWTs, when set.' },
  { name: 'GATEWAY_JWT_AUDIENCE', kind: 'string', default: undefined, description: 'Required `aud` of JWTs, when set.' },
  { name: 'GATEWAY_JWT_CLOCK_TOLERANCE_S', kind: 'int', default: '5', min: 0, max: 300, description: 'Clock skew allowed on `exp` and `nbf`.' },
  { name: 'GATEWAY_JWT_ROLES_CLAIM', kind: 'string', default: 'roles', description: 'JWT claim with the roles (array); a string `role` claim is read too.' },
  { name: 'GATEWAY_MAX_TOKEN_BYTES', kind: 'int', default: '8192', min: 256, max: 65536, description: 'Longest token accepted (JWT or PASETO).' },
  { name: 'GATEWAY_ACL', kind: 'string', default: '{"roles":{"admin":{"devices":["*"],"channels":["*"],"groups":["*"],"publish":["*"]}}}', description: 'Role → devices/channels/groups/publish table, as JSON or `@path/to/acl.json`; patterns are names, `*` or `prefix*`.' },
  { name: 'GATEWAY_AUTH_REQUIRED', kind: 'list', default: 'rest', description: 'What requires a JWT besides `/ws/connect`, `/api/v1/ws/secure` and the publish API: `rest` (the collections\' REST routes; writes need a `publish` grant), `channels` (`/api/v1/ws`, `/ws/{channel}`), `stream` (`/api/v1/stream`), or `none`. Channels and devices are checked against the ACL.' },
  { name: 'GATEWAY_TOKEN_CHECKS', kind: 'enum', default: 'inline', values: ['inline', 'pool', 'auto'], description: 'Where tokens are checked: `inline` on the edge thread (measured fastest here, see Authentication), `pool` on the Piscina pool, `auto` JWTs inline and PASETO links on the pool.' },
  { name: 'GATEWAY_POOL_THREADS', kind: 'int', default: '1', min: 1, max: 64, description: 'Threads of the token-check pool (shared by all edge threads).' },
  { name: 'GATEWAY_SHARE_LOCAL_KEY', kind: 'string', default: undefined, description: 'PASERK `k4.local.…` key for share-location links. Unset: a random key per start (links die with a restart; set it for several nodes).' },
  { name: 'GATEWAY_SHARE_PUBLIC_KEY', kind: 'string', default: undefined, description: 'PASERK `k4.public.…` key of a service allowed to mint `v4.public` links.' },
  { name: 'GATEWAY_SHARE_DEFAULT_TTL_S', kind: 'int', default: '3600', min: 10, max: 2592000, description: 'Lifetime of a share link when the request names none.' },
  { name: 'GATEWAY_SHARE_MAX_TTL_S', kind: 'int', default: '86400', min: 10, max: 2592000, description: 'Longest lifetime a share link may have.' },
  { name: 'GATEWAY_PUBLIC_URL', kind: 'string', default: undefined, description: 'Base URL of the links the gateway hands out (share-location viewer and stream, /ws/negotiate, Azure client URLs), e.g. `https://gps.example.com`; default the request\'s scheme (`https://` with GATEWAY_TLS_CERT) and Host, or what a trusted proxy forwarded (GATEWAY_TRUSTED_PROXIES).' },
  { name: 'GATEWAY_ALLOWED_ORIGINS', kind: 'list', default: '', description: 'Browser origins, besides the gateway\'s own, whose pages may open WebSockets, call the REST API with CORS and import `/assets/client/`: exact origins (`https://app.example.com`), subdomain patterns (`https://*.example.com`; without a scheme, http and https), `null` (pages opened from disk; development only) or `*` for any. Other origins get 403 `GW_ERR_ORIGIN_FORBIDDEN`; requests without `Origin` (native clients, devices) are not affected (see docs/guide/security.md).' },
  { name: 'GATEWAY_CORS_CREDENTIALS', kind: 'enum', default: 'false', values: ['false', 'true'], description: '`true` sends `Access-Control-Allow-Credentials: true` to allowed origins (cookies or HTTP auth on cross-origin requests); off by default, since the API takes bearer tokens.' },
  { name: 'GATEWAY_HEARTBEAT_MS', kind: 'int', default: '30000', min: 50, max: 3600000, description: 'Interval of the `/ws/connect` heartbeat (`{"type":"ping"}`), 30 s as in docs/compat/user-hub.md.' },
  { name: 'GATEWAY_EVENTS_TOPIC', kind: 'string', default: 'gateway/events', description: 'MQTT topic prefix of user/role events: `<prefix>/all`, `<prefix>/user/<id>`, `<prefix>/role/<role>`.' },
  { name: 'GATEWAY_REVOCATIONS_TOPIC', kind: 'string', default: 'gateway/revocations', description: 'MQTT topic on which nodes share revoked share links.' },
  { name: 'GATEWAY_CONNECT_RATE_PER_IP', kind: 'int', default: '50', min: 1, max: 1000000, description: 'WebSocket upgrades per second per client IP (token bucket, per edge thread); over it: 429.' },
  { name: 'GATEWAY_CONNECT_BURST_PER_IP', kind: 'int', default: '200', min: 1, max: 1000000, description: 'Burst of upgrades per client IP.' },
  { name: 'GATEWAY_FRAME_RATE', kind: 'int', default: '50', min: 1, max: 1000000, description: 'Client frames per second per connection (token bucket); over it: close 4029.' },
  { name: 'GATEWAY_FRAME_BURST', kind: 'int', default: '100', min: 1, max: 1000000, description: 'Burst of client frames per connection.' },
  { name: 'GATEWAY_DATA_DIR', kind: 'string', default: './data', description: 'Directory of the SQLite store `gateway.sqlite` (WAL): entities, ids, the channel log and its epoch, the outbox, dead letters, equipment, trips, the node id, share-link revocations, last positions; one node. A `history.sqlite` of an older version is taken over at the first start and left unused. With GATEWAY_DATABASE_URL all of it is in PostgreSQL and the node id is random per process. One per node.' },
  { name: 'GATEWAY_CHANNELS', kind: 'string', default: undefined, description: 'Entity collections and channels, as JSON or `@path/to/channels.json` (see docs/guide/channels.md). Unset: the built-in set serving the user hub, the sensor events module and the pet-care app (docs/compat/).' },
  { name: 'GATEWAY_HISTORY_SIZE', kind: 'int', default: '1000', min: 0, max: 1000000, description: 'Events kept per channel for `since` recovery, unless the channel sets `history_size`.' },
  { name: 'GATEWAY_HISTORY_TTL_S', kind: 'int', default: '3600', min: 1, max: 2592000, description: 'Age after which an event leaves the history, unless the channel sets `history_ttl_s`.' },
  { name: 'GATEWAY_CHANNELS_TOPIC', kind: 'string', default: 'gateway/channels', description: 'MQTT topic prefix of channel events: `<prefix>/<channel>`. The outbox relay publishes there, backends may too.' },
  { name: 'GATEWAY_STORE_THREADS', kind: 'int', default: '1', min: 1, max: 16, description: 'Threads of the store pool (store writes and reads, event encoding), shared by all edge threads. On SQLite each runs one task at a time (one writer anyway); on PostgreSQL each runs as many at once as it has connections (GATEWAY_DATABASE_POOL_SIZE).' },
  { name: 'GATEWAY_STORE_QUEUE', kind: 'int', default: '1000', min: 1, max: 1000000, description: 'Store tasks (REST calls, position batches) that may wait for a free store pool thread, per node; past it a call is answered 503 `GW_ERR_OVERLOADED` at once (counted: `gateway_store_overloaded_total`).' },
  { name: 'GATEWAY_DATABASE_URL', kind: 'string', default: undefined, description: 'PostgreSQL for the store, `postgres://user:password@host:5432/database` (or `postgresql://`; libpq parameters such as `?sslmode=require` as pg takes them), shared by every node of a cluster: entities, ids, equipment, trips, the channel log (offsets and epoch), the outbox, revocations and last positions are then the same on every node. Unset: SQLite in GATEWAY_DATA_DIR (one node). Any other scheme, or a URL that does not parse, is a configuration error (exit 2). The password is never logged. At start the gateway waits for the database (GATEWAY_DATABASE_START_WAIT_MS) and migrates it (GATEWAY_DATABASE_MIGRATE); see docs/guide.md#clustering.' },
  { name: 'GATEWAY_DATABASE_POOL_SIZE', kind: 'int', default: '8', min: 3, max: 1000, description: 'PostgreSQL connections per node: 2 for the ingest thread, the rest split evenly over the GATEWAY_STORE_THREADS store pool threads (rounded down; each thread runs that many tasks at once). Must be at least GATEWAY_STORE_THREADS + 2. The start uses one more, closed before the threads start.' },
  { name: 'GATEWAY_DATABASE_START_WAIT_MS', kind: 'int', default: '30000', min: 0, max: 3600000, description: 'How long the start retries (with backoff) a PostgreSQL that cannot be reached; then the process exits 1 with `GW_ERR_STORE_UNAVAILABLE`. A wrong password (SQLSTATE 28P01) or a database that does not exist (3D000) exits 1 at once.' },
  { name: 'GATEWAY_DATABASE_MIGRATE', kind: 'enum', default: 'auto', values: ['auto', 'off'], description: '`auto`: the start applies the pending PostgreSQL migrations under an advisory lock (several nodes may start at once; one applies them). `off`: never (a role without DDL rights); a database behind this build stops the start, naming `npm run migrate`. Either way a database newer than this build refuses the start.' },
  { name: 'GATEWAY_STORE_QUEUE_TIMEOUT_MS', kind: 'int', default: '1000', min: 10, max: 60000, description: 'On PostgreSQL, how long a store task waits for a connection (a free one, or a new one being made) before it is answered 503: `GW_ERR_OVERLOADED` when the pool was busy, `GW_ERR_STORE_UNAVAILABLE` when the database did not accept it.' },
  { name: 'GATEWAY_MAX_BODY_BYTES', kind: 'int', default: '65536', min: 256, max: 1048576, description: 'Largest REST request body; larger ones get 413.' },
  { name: 'GATEWAY_OUTBOX_LEASE_MS', kind: 'int', default: '5000', min: 50, max: 600000, description: 'An outbox row is its writer\'s to publish for this long; a row the broker has not acknowledged by then (its node died, or the publish was lost) is claimed and published again by any node (receivers drop copies by offset).' },
  { name: 'GATEWAY_HEAD_POLL_MS', kind: 'int', default: '1000', min: 0, max: 600000, description: 'How often ingest reads every channel\'s head from the store: a channel ahead of this node on two polls in a row is filled from the log (an event the bus never brought: a bridge cut, a session restart). 0: no poll (gaps are still filled when a later event reveals them).' },
  { name: 'GATEWAY_EVENT_MAX_BUFFER_BYTES', kind: 'int', default: '4194304', min: 1024, max: 268435456, description: 'A channel socket with this much unsent is closed at once with 4000 (it also is after lagging over GATEWAY_WS_MAX_BACKPRESSURE for GATEWAY_SLOW_CONSUMER_TIMEOUT_MS). Events are never skipped.' },
  { name: 'GATEWAY_AZURE_ACCESS_KEY', kind: 'string', default: undefined, description: 'Access key of the self-hosted Azure Web PubSub endpoint: it signs and checks client tokens and REST calls (HS256), and is the `AccessKey` of the connection string you give the SDKs. Unset: a random key per start (tokens die with a restart, and the REST SDK cannot be used).' },
  { name: 'GATEWAY_AZURE_HUBS', kind: 'list', default: 'extraccion', description: 'Hubs the Azure endpoints serve (`/client/hubs/{hub}`, `/api/hubs/{hub}`); `*` serves any valid hub name. Others get 404.' },
  { name: 'GATEWAY_AZURE_TOPIC', kind: 'string', default: 'gateway/azure', description: 'MQTT topic prefix of the Azure traffic between nodes (`<prefix>/<hub>`), and of client events for backends (`<prefix>/<hub>/events/<event>`).' },
  { name: 'GATEWAY_AZURE_SESSION_TTL_S', kind: 'int', default: '60', min: 30, max: 3600, description: 'How long a dropped `json.reliable.webpubsub.azure.v1` connection keeps its groups and unacknowledged messages for the client to resume.' },
  { name: 'AZURE_WEBPUBSUB_CONNECTION_STRING', kind: 'string', default: undefined, description: 'A real Azure Web PubSub service: trip events are also sent there (`@azure/web-pubsub`, retry with backoff). Unset: trips are served by this gateway only.' },
  { name: 'GATEWAY_TRIPS_HUB', kind: 'string', default: 'extraccion', description: 'Hub of the trip coordination (docs/compat/trips.md): `/ws/negotiate` tokens, trip events to groups `excavadoras` and `camiones`.' },
  { name: 'GATEWAY_EQUIPMENT_FILE', kind: 'string', default: undefined, description: 'JSON list of equipment to seed at start (`[{"code":"EXC-001","kind":"excavator","active":true}]`); existing codes are updated.' },
  { name: 'GATEWAY_LOG_LEVEL', kind: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'Log level (pino).' },
];
