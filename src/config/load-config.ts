/**
 * Reads the environment once, validates every variable against ENV_TABLE and returns a frozen
 * config. Every error names the variable, so a bad deployment stops with a message an operator
 * can act on.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { generateKeys } from 'paseto-ts/v4';
import { Acl, type AclConfig } from '../auth/acl.js';
import { ASYMMETRIC_ALGS, type AsymmetricAlg, type JwtConfig, type PemKey } from '../auth/jwt-verifier.js';
import { parseOriginEntry } from '../auth/origin-policy.js';
import type {
  AuthConfig,
  AuthRequiredOn,
  AzureConfig,
  BrowsersConfig,
  ClusterConfig,
  OperatorConfig,
  Environment,
  EventsConfig,
  GatewayConfig,
  HealthConfig,
  LogLevel,
  ShareConfig,
  TestHook,
  TripsConfig,
} from './config.js';
import { HUB_NAME } from '../features/azure/commands.js';
import { parseConnectionString } from '../features/azure/connection-string.js';
import { parseEventHandlers, type EventHandlers } from '../features/azure/event-handlers.js';
import { TRIPS_CHANNEL } from '../features/channels/channel-config.js';
import { DEFAULT_CHANNELS, parseChannelsConfig } from '../features/channels/channel-config.js';
import { GatewayError } from '../errors/gateway-error.js';
import { invalid, readFile, readInt, readList, readString, spec, type Env, type IntReader, type StrReader } from './env-readers.js';
import { loadBroker, loadMqttLogin, loadTls, loadTrustedProxies } from './load-transport.js';
import { loadStore } from './load-store.js';

function deepFreeze<T extends object>(o: T): T {
  for (const value of Object.values(o)) {
    if (value !== null && typeof value === 'object') deepFreeze(value as object);
  }
  return Object.freeze(o);
}

export function loadConfig(env: Env = process.env): GatewayConfig {
  const int = (name: string) => readInt(env, spec(name));
  const str = (name: string) => readString(env, spec(name));

  const reconnectMinMs = int('GATEWAY_MQTT_RECONNECT_MIN_MS')!;
  const reconnectMaxMs = int('GATEWAY_MQTT_RECONNECT_MAX_MS')!;
  if (reconnectMaxMs < reconnectMinMs) {
    invalid(spec('GATEWAY_MQTT_RECONNECT_MAX_MS'), 'must not be below GATEWAY_MQTT_RECONNECT_MIN_MS', String(reconnectMaxMs));
  }
  const ingestThread = str('GATEWAY_INGEST_THREAD') as 'own' | 'edge';
  if (ingestThread === 'edge' && int('GATEWAY_THREADS')! !== 1) {
    invalid(spec('GATEWAY_INGEST_THREAD'), 'edge needs GATEWAY_THREADS=1 (ingest runs inside the one edge thread)', ingestThread);
  }
  const idleTimeoutS = int('GATEWAY_IDLE_TIMEOUT_S')!;
  if (idleTimeoutS !== 0 && idleTimeoutS < 9) {
    // uWS aborts the whole process on 1..8 (docs/notes/uws.md): refuse it here instead.
    invalid(spec('GATEWAY_IDLE_TIMEOUT_S'), 'must be 0 (off) or between 9 and 960', String(idleTimeoutS));
  }
  for (const topic of readList(env, spec('GATEWAY_MQTT_TOPICS'))) {
    const bad = topic.includes('#') && (topic.indexOf('#') !== topic.length - 1 || (topic.length > 1 && topic.at(-2) !== '/'));
    if (bad) invalid(spec('GATEWAY_MQTT_TOPICS'), 'has a filter whose # is not the last level', topic);
  }

  const trips = loadTrips(str);
  const config: GatewayConfig = {
    environment: str('ENVIRONMENT') as Environment,
    azure: loadAzure(env, int, str, trips),
    trips,
    events: loadEvents(int, str, trips),
    store: loadStore(int, str),
    auth: loadAuth(env, int, str),
    share: loadShare(env, int, str),
    browsers: loadBrowsers(env, str),
    cluster: loadCluster(int, str),
    operator: loadOperator(str),
    limits: {
      connectRatePerIp: int('GATEWAY_CONNECT_RATE_PER_IP')!,
      connectBurstPerIp: int('GATEWAY_CONNECT_BURST_PER_IP')!,
      frameRate: int('GATEWAY_FRAME_RATE')!,
      frameBurst: int('GATEWAY_FRAME_BURST')!,
      maxJsonDepth: int('GATEWAY_MAX_JSON_DEPTH')!,
    },
    edge: {
      host: str('GATEWAY_HOST')!,
      port: int('PORT')!,
      threads: int('GATEWAY_THREADS')!,
      ingestThread,
      maxFrameBytes: int('GATEWAY_MAX_FRAME_BYTES')!,
      maxBadFramesPerMinute: int('GATEWAY_MAX_BAD_FRAMES')!,
      idleTimeoutS,
      maxBackpressure: int('GATEWAY_WS_MAX_BACKPRESSURE')!,
      slowConsumerTimeoutMs: int('GATEWAY_SLOW_CONSUMER_TIMEOUT_MS')!,
      tls: loadTls(str),
      trustedProxies: loadTrustedProxies(env),
    },
    mqtt: {
      url: str('MQTT_URL'),
      topics: readList(env, spec('GATEWAY_MQTT_TOPICS')),
      qos: int('GATEWAY_MQTT_QOS') as 0 | 1 | 2,
      clientId: str('GATEWAY_MQTT_CLIENT_ID') ?? `gateway-${hostname()}-${process.pid}`,
      reconnectMinMs,
      reconnectMaxMs,
      ...loadMqttLogin(str),
    },
    broker: loadBroker(int, str),
    telemetry: {
      deviceIdField: str('GATEWAY_DEVICE_ID_FIELD')!,
      deviceIdTopicLevel: int('GATEWAY_DEVICE_ID_TOPIC_LEVEL'),
      maxPayloadBytes: int('GATEWAY_MAX_PAYLOAD_BYTES')!,
      maxDevicesPerConnection: int('GATEWAY_MAX_DEVICES_PER_CONNECTION')!,
      keepaliveMs: int('GATEWAY_KEEPALIVE_MS')!,
      batchMaxBytes: int('GATEWAY_BATCH_MAX_BYTES')!,
      streamBatchMs: int('GATEWAY_STREAM_BATCH_MS')!,
      positionsRetentionS: int('GATEWAY_POSITIONS_RETENTION_S')!,
      positionsFlushMs: int('GATEWAY_POSITIONS_FLUSH_MS')!,
    },
    health: loadHealth(env, int, str),
    shutdownTimeoutMs: int('GATEWAY_SHUTDOWN_TIMEOUT_MS')!,
    logLevel: str('GATEWAY_LOG_LEVEL') as LogLevel,
  };
  return deepFreeze(config);
}

const TEST_HOOKS: readonly TestHook[] = ['bus', 'fail-pool-start'];

function loadHealth(env: Env, int: IntReader, str: StrReader): HealthConfig {
  const hooksVar = spec('GATEWAY_TEST_HOOKS');
  const hooks = readList(env, hooksVar, true);
  for (const hook of hooks) {
    if (!TEST_HOOKS.includes(hook as TestHook)) invalid(hooksVar, `names an unknown hook (known: ${TEST_HOOKS.join(', ')})`, hook);
  }
  const topic = str('GATEWAY_WATCHDOG_TOPIC')!;
  if (/[#+]/.test(topic) || topic.endsWith('/')) invalid(spec('GATEWAY_WATCHDOG_TOPIC'), 'must be a topic without wildcards or a trailing /', topic);
  const honoured = str('ENVIRONMENT') === 'test';
  return {
    watchdogMs: int('GATEWAY_WATCHDOG_MS')!,
    watchdogTopic: topic,
    testHooks: honoured ? (hooks as TestHook[]) : [],
    ignoredTestHooks: honoured ? [] : hooks,
  };
}

function loadJwt(env: Env, int: IntReader, str: StrReader): JwtConfig | undefined {
  const secret = str('GATEWAY_JWT_SECRET');
  if (secret !== undefined && Buffer.byteLength(secret) < 32) invalid(spec('GATEWAY_JWT_SECRET'), 'must be at least 32 bytes', '[redacted]');
  const keysVar = spec('GATEWAY_JWT_PUBLIC_KEYS');
  const publicKeys: PemKey[] = readList(env, keysVar, true).map((item) => {
    const parts = item.split(':');
    const alg = parts[0] as AsymmetricAlg;
    if (!ASYMMETRIC_ALGS.includes(alg) || parts.length < 2 || parts.length > 3)
      invalid(keysVar, `entries must be ALG:path or ALG:kid:path with ALG one of ${ASYMMETRIC_ALGS.join(', ')}`, item);
    const path = parts.at(-1)!;
    return { alg, kid: parts.length === 3 ? parts[1] : undefined, pem: readFile(keysVar, path) };
  });
  const jwksVar = spec('GATEWAY_JWT_JWKS');
  const jwksSource = str('GATEWAY_JWT_JWKS');
  let jwks: JwtConfig['jwks'];
  let jwksUrl: string | undefined;
  if (jwksSource !== undefined) {
    if (/^https?:\/\//.test(jwksSource)) {
      jwksUrl = jwksSource;
    } else {
      try {
        jwks = JSON.parse(readFile(jwksVar, jwksSource)) as JwtConfig['jwks'];
      } catch (err) {
        invalid(jwksVar, `is not a JWKS document (${(err as Error).message})`, jwksSource);
      }
      if (!Array.isArray(jwks?.keys)) invalid(jwksVar, 'must hold a {"keys":[...]} document', jwksSource);
    }
  }
  if (secret === undefined && publicKeys.length === 0 && jwks === undefined && jwksUrl === undefined) return undefined;
  return {
    secret,
    publicKeys,
    jwks,
    jwksUrl,
    issuer: str('GATEWAY_JWT_ISSUER'),
    audience: str('GATEWAY_JWT_AUDIENCE'),
    clockToleranceS: int('GATEWAY_JWT_CLOCK_TOLERANCE_S')!,
    rolesClaim: str('GATEWAY_JWT_ROLES_CLAIM')!,
    maxTokenBytes: int('GATEWAY_MAX_TOKEN_BYTES')!,
  };
}

function loadAuth(env: Env, int: IntReader, str: StrReader): AuthConfig {
  const aclVar = spec('GATEWAY_ACL');
  const aclText = str('GATEWAY_ACL')!;
  let acl: AclConfig;
  try {
    const json = aclText.startsWith('@') ? readFile(aclVar, aclText.slice(1)) : aclText;
    acl = Acl.parse(json).config;
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    invalid(aclVar, (err as Error).message, aclText.slice(0, 60));
  }
  const requiredVar = spec('GATEWAY_AUTH_REQUIRED');
  const required = readList(env, requiredVar).filter((r) => r !== 'none');
  for (const r of required) if (!['stream', 'rest', 'channels'].includes(r)) invalid(requiredVar, 'must list among: rest, channels, stream (or none)', r);
  return {
    jwt: loadJwt(env, int, str),
    acl,
    requiredOn: required as AuthRequiredOn[],
    tokenChecks: str('GATEWAY_TOKEN_CHECKS') as 'auto' | 'pool' | 'inline',
    poolThreads: int('GATEWAY_POOL_THREADS')!,
    heartbeatMs: int('GATEWAY_HEARTBEAT_MS')!,
    eventsTopic: str('GATEWAY_EVENTS_TOPIC')!,
  };
}

function loadTrips(str: StrReader): TripsConfig {
  const hub = str('GATEWAY_TRIPS_HUB')!;
  if (!HUB_NAME.test(hub)) invalid(spec('GATEWAY_TRIPS_HUB'), 'must be a hub name (a letter, then up to 127 letters, digits or _`,.[])', hub);
  return { hub, channel: TRIPS_CHANNEL, equipmentFile: str('GATEWAY_EQUIPMENT_FILE') };
}

function loadAzure(env: Env, int: IntReader, str: StrReader, trips: TripsConfig): AzureConfig {
  const key = str('GATEWAY_AZURE_ACCESS_KEY');
  if (key !== undefined && Buffer.byteLength(key) < 32) invalid(spec('GATEWAY_AZURE_ACCESS_KEY'), 'must be at least 32 bytes', '[redacted]');
  const hubsVar = spec('GATEWAY_AZURE_HUBS');
  const listed = readList(env, hubsVar);
  for (const hub of listed)
    if (hub !== '*' && !HUB_NAME.test(hub)) invalid(hubsVar, 'must list hub names (a letter, then up to 127 letters, digits or _`,.[]) or *', hub);
  const hubs = listed.includes('*') ? null : [...new Set([...listed, trips.hub])];
  const topic = str('GATEWAY_AZURE_TOPIC')!;
  if (/[#+]/.test(topic) || topic.endsWith('/')) invalid(spec('GATEWAY_AZURE_TOPIC'), 'must be a topic prefix without wildcards or a trailing /', topic);
  const presenceTopic = str('GATEWAY_AZURE_PRESENCE_TOPIC')!;
  if (/[#+]/.test(presenceTopic) || presenceTopic.endsWith('/') || presenceTopic === '')
    invalid(spec('GATEWAY_AZURE_PRESENCE_TOPIC'), 'must be a topic without wildcards or a trailing /', presenceTopic);
  if (presenceTopic === topic || presenceTopic.startsWith(`${topic}/`) || topic.startsWith(`${presenceTopic}/`))
    invalid(spec('GATEWAY_AZURE_PRESENCE_TOPIC'), 'must not overlap GATEWAY_AZURE_TOPIC (its `<prefix>/+` subscriptions)', presenceTopic);
  const snapshotMs = int('GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS')!;
  if (snapshotMs !== 0 && snapshotMs < 200) invalid(spec('GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS'), 'must be 0 (off) or at least 200', String(snapshotMs));
  const ttlMs = int('GATEWAY_AZURE_PRESENCE_TTL_MS')!;
  if (ttlMs <= snapshotMs) invalid(spec('GATEWAY_AZURE_PRESENCE_TTL_MS'), 'must be over GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS', String(ttlMs));
  const outbound = str('AZURE_WEBPUBSUB_CONNECTION_STRING');
  if (outbound !== undefined) {
    try {
      parseConnectionString(outbound);
    } catch (err) {
      invalid(spec('AZURE_WEBPUBSUB_CONNECTION_STRING'), (err as Error).message, '[redacted]');
    }
  }
  return {
    accessKey: key ?? randomBytes(32).toString('base64url'),
    ephemeralKey: key === undefined,
    hubs,
    topic,
    sessionTtlS: int('GATEWAY_AZURE_SESSION_TTL_S')!,
    presence: { topic: presenceTopic, snapshotMs, ttlMs },
    outbound,
    userGroups: { perUser: int('GATEWAY_AZURE_USER_GROUPS_PER_USER')!, max: int('GATEWAY_AZURE_USER_GROUPS_MAX')! },
    eventHandlers: loadEventHandlers(str, (hub) => hubs === null || hubs.includes(hub)),
    eventHandlerTimeoutMs: int('GATEWAY_AZURE_EVENT_HANDLER_TIMEOUT_MS')!,
    eventQueue: int('GATEWAY_AZURE_EVENT_QUEUE')!,
    webhookOrigin: webhookOrigin(str),
  };
}

function loadEventHandlers(str: StrReader, served: (hub: string) => boolean): EventHandlers {
  const v = spec('GATEWAY_AZURE_EVENT_HANDLERS');
  const text = str('GATEWAY_AZURE_EVENT_HANDLERS');
  if (text === undefined) return {};
  const json = text.startsWith('@') ? readFile(v, text.slice(1)) : text;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    invalid(v, `is not valid JSON: ${(err as Error).message}`, text.slice(0, 60));
  }
  try {
    return parseEventHandlers(value, served);
  } catch (err) {
    invalid(v, (err as Error).message, text.slice(0, 60));
  }
}

function webhookOrigin(str: StrReader): string {
  const given = str('GATEWAY_AZURE_WEBHOOK_ORIGIN');
  if (given !== undefined) {
    if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(given)) invalid(spec('GATEWAY_AZURE_WEBHOOK_ORIGIN'), 'must be a host name, with an optional :port', given);
    return given.toLowerCase();
  }
  const publicUrl = str('GATEWAY_PUBLIC_URL');
  if (publicUrl !== undefined && /^https?:\/\/[^/]+/.test(publicUrl)) return new URL(publicUrl).host.toLowerCase();
  return hostname().toLowerCase();
}

function loadEvents(int: IntReader, str: StrReader, trips: TripsConfig): EventsConfig {
  const channelsVar = spec('GATEWAY_CHANNELS');
  const text = str('GATEWAY_CHANNELS');
  const defaults = { historySize: int('GATEWAY_HISTORY_SIZE')!, historyTtlS: int('GATEWAY_HISTORY_TTL_S')! };
  let channels;
  try {
    let value: unknown = DEFAULT_CHANNELS;
    if (text !== undefined) {
      const json = text.startsWith('@') ? readFile(channelsVar, text.slice(1)) : text;
      try {
        value = JSON.parse(json);
      } catch (err) {
        throw new Error(`is not valid JSON: ${(err as Error).message}`);
      }
    }
    channels = parseChannelsConfig(value, defaults, trips.hub);
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    invalid(channelsVar, (err as Error).message, (text ?? '').slice(0, 60));
  }
  const topic = str('GATEWAY_CHANNELS_TOPIC')!;
  if (/[#+]/.test(topic) || topic.endsWith('/')) invalid(spec('GATEWAY_CHANNELS_TOPIC'), 'must be a topic prefix without wildcards or a trailing /', topic);
  return {
    dataDir: str('GATEWAY_DATA_DIR')!,
    channels,
    topic,
    storeThreads: int('GATEWAY_STORE_THREADS')!,
    maxBodyBytes: int('GATEWAY_MAX_BODY_BYTES')!,
    outboxLeaseMs: int('GATEWAY_OUTBOX_LEASE_MS')!,
    headPollMs: int('GATEWAY_HEAD_POLL_MS')!,
    maxBufferBytes: int('GATEWAY_EVENT_MAX_BUFFER_BYTES')!,
  };
}

function loadBrowsers(env: Env, str: StrReader): BrowsersConfig {
  const originsVar = spec('GATEWAY_ALLOWED_ORIGINS');
  const allowedOrigins = readList(env, originsVar, true).map((entry) => {
    const parsed = parseOriginEntry(entry);
    if ('invalid' in parsed) invalid(originsVar, `has an entry that ${parsed.invalid}`, entry);
    return entry.toLowerCase();
  });
  return { allowedOrigins, corsCredentials: str('GATEWAY_CORS_CREDENTIALS') === 'true' };
}

function loadOperator(str: StrReader): OperatorConfig {
  const token = str('GATEWAY_OPERATOR_TOKEN');
  if (token !== undefined && (Buffer.byteLength(token) < 16 || !/^[\x21-\x7e]+$/.test(token)))
    invalid(spec('GATEWAY_OPERATOR_TOKEN'), 'must be at least 16 printable characters without spaces (e.g. openssl rand -hex 32)', '[redacted]');
  return { token };
}

function loadCluster(int: IntReader, str: StrReader): ClusterConfig {
  const key = str('GATEWAY_CLUSTER_KEY');
  if (key !== undefined && Buffer.byteLength(key) < 32)
    invalid(spec('GATEWAY_CLUSTER_KEY'), 'must be at least 32 bytes (e.g. openssl rand -hex 32)', '[redacted]');
  const acceptedKey = str('GATEWAY_CLUSTER_KEY_ACCEPTED');
  if (acceptedKey !== undefined && Buffer.byteLength(acceptedKey) < 32)
    invalid(spec('GATEWAY_CLUSTER_KEY_ACCEPTED'), 'must be at least 32 bytes', '[redacted]');
  const heartbeatMs = int('GATEWAY_NODE_HEARTBEAT_MS')!;
  const nodeTtlMs = int('GATEWAY_NODE_TTL_MS')!;
  // Two missed heartbeats must not end a node: a store call of one beat may take up to a beat.
  if (nodeTtlMs < 3 * heartbeatMs) invalid(spec('GATEWAY_NODE_TTL_MS'), 'must be at least 3 × GATEWAY_NODE_HEARTBEAT_MS', String(nodeTtlMs));
  return { key: key ?? randomBytes(32).toString('hex'), acceptedKey, ephemeralKey: key === undefined, heartbeatMs, nodeTtlMs };
}

function loadShare(env: Env, int: IntReader, str: StrReader): ShareConfig {
  const localVar = spec('GATEWAY_SHARE_LOCAL_KEY');
  const configured = str('GATEWAY_SHARE_LOCAL_KEY');
  if (configured !== undefined && !/^k4\.local\.[A-Za-z0-9_-]{43}$/.test(configured))
    invalid(localVar, 'must be a PASERK k4.local key (k4.local. + 43 base64url characters)', '[redacted]');
  const publicKey = str('GATEWAY_SHARE_PUBLIC_KEY');
  if (publicKey !== undefined && !/^k4\.public\.[A-Za-z0-9_-]{43}$/.test(publicKey))
    invalid(spec('GATEWAY_SHARE_PUBLIC_KEY'), 'must be a PASERK k4.public key', publicKey.slice(0, 12));
  const maxTtlS = int('GATEWAY_SHARE_MAX_TTL_S')!;
  const defaultTtlS = int('GATEWAY_SHARE_DEFAULT_TTL_S')!;
  if (defaultTtlS > maxTtlS) invalid(spec('GATEWAY_SHARE_DEFAULT_TTL_S'), 'must not exceed GATEWAY_SHARE_MAX_TTL_S', String(defaultTtlS));
  const publicUrl = str('GATEWAY_PUBLIC_URL');
  if (publicUrl !== undefined && !/^https?:\/\/[^/]+/.test(publicUrl)) invalid(spec('GATEWAY_PUBLIC_URL'), 'must be an http(s) URL', publicUrl);
  return {
    tokens: { localKey: configured ?? generateKeys('local'), publicKey, maxTtlS, maxTokenBytes: int('GATEWAY_MAX_TOKEN_BYTES')! },
    defaultTtlS,
    publicUrl: publicUrl?.replace(/\/+$/, ''),
    revocationsTopic: str('GATEWAY_REVOCATIONS_TOPIC')!,
    ephemeralKey: configured === undefined,
  };
}
