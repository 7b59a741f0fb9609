/** The validated, frozen configuration passed to every component (and to every thread). */
import type { EventHandlers } from '../features/azure/event-handlers.js';
import type { AclConfig } from '../auth/acl.js';
import type { JwtConfig } from '../auth/jwt-verifier.js';
import type { ShareTokenConfig } from '../auth/share-tokens.js';
import type { ChannelsConfig } from '../features/channels/channel-config.js';
import type { BrokerUser } from '../broker/broker-users.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface MqttConfig {
  /** Unset: the gateway starts its embedded broker and fills this in at start. */
  readonly url: string | undefined;
  readonly topics: readonly string[];
  readonly qos: 0 | 1 | 2;
  readonly clientId: string;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  /** Login on an external broker (GATEWAY_MQTT_USERNAME / _PASSWORD); the URL's own is used otherwise. */
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** PEM contents of GATEWAY_MQTT_CA, _CERT and _KEY. */
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

export interface TelemetryConfig {
  readonly deviceIdField: string;
  readonly deviceIdTopicLevel: number | undefined;
  readonly maxPayloadBytes: number;
  readonly maxDevicesPerConnection: number;
  readonly keepaliveMs: number;
  readonly batchMaxBytes: number;
  /** `device_ids=*&batch=1`: the interval of its batches. */
  readonly streamBatchMs: number;
  /** GATEWAY_POSITIONS_RETENTION_S: last positions kept this long across restarts; 0: not kept. */
  readonly positionsRetentionS: number;
  /** GATEWAY_POSITIONS_FLUSH_MS: the interval of the batched position writes. */
  readonly positionsFlushMs: number;
}

export interface EdgeConfig {
  readonly host: string;
  readonly port: number;
  readonly threads: number;
  /** GATEWAY_INGEST_THREAD: ingest on its own thread, or inside the one edge thread. */
  readonly ingestThread: 'own' | 'edge';
  readonly maxFrameBytes: number;
  readonly maxBadFramesPerMinute: number;
  readonly idleTimeoutS: number;
  readonly maxBackpressure: number;
  readonly slowConsumerTimeoutMs: number;
  /** GATEWAY_TLS_*: the port serves https/wss (uWS SSLApp); undefined: http/ws. */
  readonly tls: TlsConfig | undefined;
  /** GATEWAY_TRUSTED_PROXIES, validated entries (`10.0.0.0/8`, `::1`); edge/client-address.ts reads them. */
  readonly trustedProxies: readonly string[];
}

/** Paths as uWS SSLApp takes them (it reads the files itself); load-config.ts has checked they load and match. */
export interface TlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly passphrase: string | undefined;
  readonly caFile: string | undefined;
}

export interface BrokerConfig {
  readonly host: string;
  readonly port: number;
  /** GATEWAY_BROKER_USERS. */
  readonly users: readonly BrokerUser[];
  /** What clients without a login may do (GATEWAY_BROKER_ANONYMOUS, `auto` resolved). */
  readonly anonymous: 'telemetry' | 'none';
}

export type Environment = 'development' | 'test' | 'staging' | 'production';

export type AuthRequiredOn = 'stream' | 'rest' | 'channels';

export interface AuthConfig {
  /** undefined: no JWT key configured; endpoints that need a token refuse every connection. */
  readonly jwt: JwtConfig | undefined;
  readonly acl: AclConfig;
  /** Endpoints that require a JWT besides /ws/connect. */
  readonly requiredOn: readonly AuthRequiredOn[];
  readonly tokenChecks: 'auto' | 'pool' | 'inline';
  readonly poolThreads: number;
  readonly heartbeatMs: number;
  readonly eventsTopic: string;
}

export interface ShareConfig {
  readonly tokens: ShareTokenConfig;
  readonly defaultTtlS: number;
  /** Base of viewer URLs; undefined: http://localhost:PORT. */
  readonly publicUrl: string | undefined;
  readonly revocationsTopic: string;
  /** True when the key was generated at start (links die with a restart). */
  readonly ephemeralKey: boolean;
}

export interface LimitsConfig {
  readonly connectRatePerIp: number;
  readonly connectBurstPerIp: number;
  readonly frameRate: number;
  readonly frameBurst: number;
  /** GATEWAY_MAX_JSON_DEPTH: the one nesting limit of every JSON decoder (protocol/bounded-json.ts). */
  readonly maxJsonDepth: number;
}

export interface EventsConfig {
  readonly dataDir: string;
  readonly channels: ChannelsConfig;
  readonly topic: string;
  readonly storeThreads: number;
  readonly maxBodyBytes: number;
  /** GATEWAY_OUTBOX_LEASE_MS. */
  readonly outboxLeaseMs: number;
  /** GATEWAY_HEAD_POLL_MS; 0: off. */
  readonly headPollMs: number;
  readonly maxBufferBytes: number;
}

/**
 * The store's backend and bounds (GATEWAY_DATABASE_*, GATEWAY_STORE_QUEUE*). On PostgreSQL the
 * node's GATEWAY_DATABASE_POOL_SIZE connections are split: `ingestConnections` for the ingest
 * thread, `poolThreadConnections` for each store pool thread (which runs that many tasks at once).
 */
export interface StoreConfig {
  /** GATEWAY_DATABASE_URL (postgres:// or postgresql://); undefined: SQLite in GATEWAY_DATA_DIR. Never log it unredacted. */
  readonly databaseUrl: string | undefined;
  readonly poolSize: number;
  readonly poolThreadConnections: number;
  readonly ingestConnections: number;
  readonly startWaitMs: number;
  readonly migrate: 'auto' | 'off';
  /** GATEWAY_STORE_QUEUE: Piscina's maxQueue for the store pool (both backends). */
  readonly queue: number;
  /** GATEWAY_STORE_QUEUE_TIMEOUT_MS: pg's connectionTimeoutMillis on the pool threads. */
  readonly queueTimeoutMs: number;
}

export interface AzureConfig {
  readonly accessKey: string;
  /** True when the key was generated at start. */
  readonly ephemeralKey: boolean;
  /** Hubs served; null: any valid hub name. */
  readonly hubs: readonly string[] | null;
  readonly topic: string;
  readonly sessionTtlS: number;
  /** Cluster presence (GATEWAY_AZURE_PRESENCE_*): the topic, the snapshot period and the TTL of a silent node's connections. */
  readonly presence: { readonly topic: string; readonly snapshotMs: number; readonly ttlMs: number };
  /** A real service's connection string: trip events are also sent there. */
  readonly outbound: string | undefined;
  /** The bounds of the user-group relations (addUserToGroup): per user of a hub, and in all. */
  readonly userGroups: { readonly perUser: number; readonly max: number };
  /** Upstream event handlers per hub (GATEWAY_AZURE_EVENT_HANDLERS); empty: none. */
  readonly eventHandlers: EventHandlers;
  readonly eventHandlerTimeoutMs: number;
  /** Upstream events waiting or in flight per edge thread. */
  readonly eventQueue: number;
  /** The WebHook-Request-Origin sent to event handlers. */
  readonly webhookOrigin: string;
}

export interface TripsConfig {
  readonly hub: string;
  /** The channel trip events go through (outbox, history, recovery). */
  readonly channel: string;
  readonly equipmentFile: string | undefined;
}

export type TestHook = 'bus' | 'fail-pool-start';

export interface HealthConfig {
  /** No progress for this long: unready and unhealthy; for twice this long: exit 70. */
  readonly watchdogMs: number;
  /** Prefix of the MQTT probe topic (`<prefix>/<node id>`). */
  readonly watchdogTopic: string;
  /** Test-only hooks; always empty unless ENVIRONMENT=test. */
  readonly testHooks: readonly TestHook[];
  /** Hooks named in GATEWAY_TEST_HOOKS but ignored because ENVIRONMENT is not `test` (logged at start). */
  readonly ignoredTestHooks: readonly string[];
}

export interface BrowsersConfig {
  /** GATEWAY_ALLOWED_ORIGINS, validated and lower-cased (auth/origin-policy.ts); the request's own origin is always allowed too. */
  readonly allowedOrigins: readonly string[];
  /** GATEWAY_CORS_CREDENTIALS. */
  readonly corsCredentials: boolean;
}

export interface ClusterConfig {
  /** GATEWAY_CLUSTER_KEY: the HMAC key of the control messages on the bus (ingest/control-auth.ts). */
  readonly key: string;
  /** GATEWAY_CLUSTER_KEY_ACCEPTED: tags made with it pass too (key rotation); never used to tag. */
  readonly acceptedKey: string | undefined;
  /** The key is a random one of this start (GATEWAY_CLUSTER_KEY unset). */
  readonly ephemeralKey: boolean;
  /** GATEWAY_NODE_HEARTBEAT_MS: how often a node writes its row in the node registry (features/cluster/). */
  readonly heartbeatMs: number;
  /** GATEWAY_NODE_TTL_MS: a node is live while its heartbeat is younger than this. */
  readonly nodeTtlMs: number;
}

/** GATEWAY_OPERATOR_TOKEN (edge/operator-auth.ts). */
export interface OperatorConfig {
  /** The bearer token the operator routes (/api/v1/cluster, /metrics, the dead letters) require; undefined: they are open. */
  readonly token: string | undefined;
}

export interface GatewayConfig {
  readonly browsers: BrowsersConfig;
  readonly operator: OperatorConfig;
  readonly cluster: ClusterConfig;
  readonly azure: AzureConfig;
  readonly trips: TripsConfig;
  readonly events: EventsConfig;
  readonly store: StoreConfig;
  readonly environment: Environment;
  readonly auth: AuthConfig;
  readonly share: ShareConfig;
  readonly limits: LimitsConfig;
  readonly edge: EdgeConfig;
  readonly mqtt: MqttConfig;
  readonly broker: BrokerConfig;
  readonly telemetry: TelemetryConfig;
  readonly health: HealthConfig;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: LogLevel;
}
