import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { ENV_TABLE } from '../../src/config/env-table.js';
import { GatewayError } from '../../src/errors/gateway-error.js';

function error(env: Record<string, string>): GatewayError {
  try {
    loadConfig(env);
  } catch (err) {
    return err as GatewayError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('starts with nothing set: embedded broker, port 8080, the reference keep-alive of 60 s', () => {
    const config = loadConfig({});
    expect(config.mqtt.url).toBeUndefined();
    expect(config.edge.port).toBe(8080);
    expect(config.broker.port).toBe(1883);
    expect(config.telemetry.keepaliveMs).toBe(60_000);
    expect(config.telemetry.deviceIdField).toBe('DEVICE_ID');
    expect(config.mqtt.topics).toEqual(['gps/#']);
    expect(config.edge.threads).toBeGreaterThanOrEqual(1);
  });

  it('Azure presence: a topic of its own outside GATEWAY_AZURE_TOPIC, and a TTL over the snapshot period', () => {
    expect(loadConfig({}).azure.presence).toEqual({ topic: 'gateway/azure-presence', snapshotMs: 5000, ttlMs: 15_000 });
    for (const topic of ['gateway/azure', 'gateway/azure/_presence', 'gateway', 'gateway/azure-presence/#', 'p/'])
      expect(error({ GATEWAY_AZURE_PRESENCE_TOPIC: topic }).message).toContain('GATEWAY_AZURE_PRESENCE_TOPIC');
    expect(error({ GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS: '5000', GATEWAY_AZURE_PRESENCE_TTL_MS: '5000' }).message).toContain('GATEWAY_AZURE_PRESENCE_TTL_MS');
    expect(loadConfig({ GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS: '1000', GATEWAY_AZURE_PRESENCE_TTL_MS: '3000' }).azure.presence.ttlMs).toBe(3000);
    expect(loadConfig({ GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS: '0' }).azure.presence.snapshotMs).toBe(0);
    expect(error({ GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS: '100' }).message).toMatch(/GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS must be 0 \(off\) or at least 200/);
  });

  it('is frozen all the way down', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.edge)).toBe(true);
    expect(Object.isFrozen(config.mqtt.topics)).toBe(true);
  });

  it('reads every variable of the table', () => {
    const config = loadConfig({
      PORT: '9000',
      GATEWAY_THREADS: '3',
      MQTT_URL: 'mqtt://user:secret@broker:1883',
      GATEWAY_MQTT_TOPICS: 'a/#, b/+/gps',
      GATEWAY_MQTT_QOS: '1',
      GATEWAY_DEVICE_ID_TOPIC_LEVEL: '1',
      GATEWAY_KEEPALIVE_MS: '500',
      GATEWAY_IDLE_TIMEOUT_S: '0',
    });
    expect(config.edge).toMatchObject({ port: 9000, threads: 3, idleTimeoutS: 0 });
    expect(config.mqtt).toMatchObject({ url: 'mqtt://user:secret@broker:1883', topics: ['a/#', 'b/+/gps'], qos: 1 });
    expect(config.telemetry).toMatchObject({ deviceIdTopicLevel: 1, keepaliveMs: 500 });
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT must be a whole number \(got "eighty"\)/],
    [{ PORT: '70000' }, /PORT must be between 0 and 65535/],
    [{ GATEWAY_THREADS: '0' }, /GATEWAY_THREADS must be between 1 and 64/],
    [{ GATEWAY_THREADS: '2', GATEWAY_INGEST_THREAD: 'edge' }, /GATEWAY_INGEST_THREAD edge needs GATEWAY_THREADS=1/],
    [{ GATEWAY_INGEST_THREAD: 'main' }, /GATEWAY_INGEST_THREAD must be one of own, edge/],
    [{ MQTT_URL: 'not a url' }, /MQTT_URL must be a URL/],
    [{ MQTT_URL: 'http://broker' }, /MQTT_URL must use mqtt:\/\//],
    [{ GATEWAY_LOG_LEVEL: 'loud' }, /GATEWAY_LOG_LEVEL must be one of fatal, error/],
    [{ GATEWAY_IDLE_TIMEOUT_S: '5' }, /GATEWAY_IDLE_TIMEOUT_S must be 0 \(off\) or between 9 and 960/],
    [{ GATEWAY_IDLE_TIMEOUT_S: '961' }, /GATEWAY_IDLE_TIMEOUT_S must be between 0 and 960/],
    [{ GATEWAY_MQTT_TOPICS: ' , ' }, /GATEWAY_MQTT_TOPICS must name at least one item/],
    [{ GATEWAY_MQTT_TOPICS: 'gps/#/x' }, /GATEWAY_MQTT_TOPICS has a filter whose # is not the last level/],
    [
      { GATEWAY_MQTT_RECONNECT_MIN_MS: '5000', GATEWAY_MQTT_RECONNECT_MAX_MS: '1000' },
      /GATEWAY_MQTT_RECONNECT_MAX_MS must not be below GATEWAY_MQTT_RECONNECT_MIN_MS/,
    ],
    [{ GATEWAY_CLUSTER_KEY_ACCEPTED: 'short-key' }, /GATEWAY_CLUSTER_KEY_ACCEPTED must be at least 32 bytes/],
    [{ GATEWAY_CLUSTER_KEY: 'short-key' }, /GATEWAY_CLUSTER_KEY must be at least 32 bytes .*\(got "\[redacted\]"\)/],
    [{ GATEWAY_OPERATOR_TOKEN: 'short-token' }, /GATEWAY_OPERATOR_TOKEN must be at least 16 printable characters .*\(got "\[redacted\]"\)/],
    [{ GATEWAY_OPERATOR_TOKEN: 'a token with spaces in it' }, /GATEWAY_OPERATOR_TOKEN must be at least 16 printable characters/],
  ])('refuses %j with a message naming the variable', (env, message) => {
    const err = error(env as Record<string, string>);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
    expect(err.message).toMatch(message);
  });

  it('takes GATEWAY_CLUSTER_KEY as set, or a random one marked ephemeral', () => {
    const key = 'k'.repeat(32);
    expect(loadConfig({ GATEWAY_CLUSTER_KEY: key }).cluster).toEqual({
      key,
      acceptedKey: undefined,
      ephemeralKey: false,
      heartbeatMs: 2000,
      nodeTtlMs: 10_000,
    });
    expect(loadConfig({ GATEWAY_CLUSTER_KEY: key, GATEWAY_CLUSTER_KEY_ACCEPTED: 'o'.repeat(32) }).cluster.acceptedKey).toBe('o'.repeat(32));
    const random = loadConfig({}).cluster;
    expect(random.ephemeralKey).toBe(true);
    expect(random.key).toMatch(/^[0-9a-f]{64}$/);
    expect(loadConfig({}).cluster.key).not.toBe(random.key);
  });

  it('reads the node heartbeat and TTL, refusing a TTL under three heartbeats', () => {
    expect(loadConfig({ GATEWAY_NODE_HEARTBEAT_MS: '500', GATEWAY_NODE_TTL_MS: '1500' }).cluster).toMatchObject({ heartbeatMs: 500, nodeTtlMs: 1500 });
    expect(() => loadConfig({ GATEWAY_NODE_HEARTBEAT_MS: '1000', GATEWAY_NODE_TTL_MS: '2999' })).toThrow(/GATEWAY_NODE_TTL_MS.*3 × GATEWAY_NODE_HEARTBEAT_MS/);
  });

  it('reads the store: SQLite by default; PostgreSQL with its connections split 2 to ingest, the rest over the store threads', () => {
    const sqlite = loadConfig({}).store;
    expect(sqlite).toMatchObject({ databaseUrl: undefined, poolSize: 8, startWaitMs: 30_000, migrate: 'auto', queue: 1000, queueTimeoutMs: 1000 });
    const pg = loadConfig({ GATEWAY_DATABASE_URL: 'postgresql://gw:pw@db:5432/gw', GATEWAY_STORE_THREADS: '3', GATEWAY_DATABASE_POOL_SIZE: '12' }).store;
    expect(pg).toMatchObject({ databaseUrl: 'postgresql://gw:pw@db:5432/gw', ingestConnections: 2, poolThreadConnections: 3 });
    expect(loadConfig({ GATEWAY_DATABASE_URL: 'postgres://db/gw' }).store.poolThreadConnections).toBe(6);
  });

  it('refuses a database URL of another scheme or that does not parse, and a pool too small for the threads, never showing the password', () => {
    for (const url of ['mysql://gw:s3cret@db/gw', 'postgres://gw:s3cret@db:port/gw', 'not a url s3cret']) {
      const err = error({ GATEWAY_DATABASE_URL: url });
      expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
      expect(err.message).toMatch(/^GATEWAY_DATABASE_URL /);
      expect(err.message).not.toContain('s3cret');
    }
    expect(error({ GATEWAY_DATABASE_URL: 'postgres://db/gw', GATEWAY_STORE_THREADS: '4', GATEWAY_DATABASE_POOL_SIZE: '5' }).message).toMatch(
      /GATEWAY_DATABASE_POOL_SIZE must be at least GATEWAY_STORE_THREADS \+ 2 \(6\)/,
    );
    expect(loadConfig({ GATEWAY_STORE_THREADS: '4', GATEWAY_DATABASE_POOL_SIZE: '5' }).store.poolSize).toBe(5); // SQLite: not used
  });

  it('has unique variable names, each described', () => {
    const names = ENV_TABLE.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    for (const v of ENV_TABLE) expect(v.description.length).toBeGreaterThan(10);
  });
});
