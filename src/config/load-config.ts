/**
 * Reads the environment once, validates every variable against ENV_TABLE and returns a frozen
 * config. Every error names the variable, so a bad deployment stops with a message an operator
 * can act on.
 */
import { hostname } from 'node:os';
import { ENV_TABLE, type EnvVar } from './env-table.js';
import type { GatewayConfig, LogLevel } from './config.js';
import { GatewayError } from '../errors/gateway-error.js';

type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, v: EnvVar): string | undefined {
  const value = env[v.name];
  return value === undefined || value.trim() === '' ? v.default : value.trim();
}

function invalid(v: EnvVar, why: string, got: string): never {
  throw new GatewayError('GW_ERR_CONFIG_INVALID', `${v.name} ${why} (got ${JSON.stringify(got)})`);
}

function readInt(env: Env, v: EnvVar): number | undefined {
  const text = raw(env, v);
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text)) invalid(v, 'must be a whole number', text);
  const n = Number(text);
  if ((v.min !== undefined && n < v.min) || (v.max !== undefined && n > v.max)) {
    invalid(v, `must be between ${v.min} and ${v.max}`, text);
  }
  return n;
}

function readString(env: Env, v: EnvVar): string | undefined {
  const text = raw(env, v);
  if (text === undefined) return undefined;
  if (v.kind === 'enum' && !v.values!.includes(text)) invalid(v, `must be one of ${v.values!.join(', ')}`, text);
  if (v.kind === 'url') {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      invalid(v, 'must be a URL such as mqtt://broker:1883', text);
    }
    if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'].includes(url.protocol)) {
      invalid(v, 'must use mqtt://, mqtts://, tcp://, ssl://, ws:// or wss://', text);
    }
  }
  return text;
}

function readList(env: Env, v: EnvVar): string[] {
  const text = raw(env, v) ?? '';
  const items = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) invalid(v, 'must name at least one item', text);
  return items;
}

const byName = new Map(ENV_TABLE.map((v) => [v.name, v]));
function spec(name: string): EnvVar {
  const v = byName.get(name);
  if (!v) throw new Error(`config: ${name} is not in ENV_TABLE`);
  return v;
}

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
  const idleTimeoutS = int('GATEWAY_IDLE_TIMEOUT_S')!;
  if (idleTimeoutS !== 0 && idleTimeoutS < 9) {
    // uWS aborts the whole process on 1..8 (notes/uws.md): refuse it here instead.
    invalid(spec('GATEWAY_IDLE_TIMEOUT_S'), 'must be 0 (off) or between 9 and 960', String(idleTimeoutS));
  }
  for (const topic of readList(env, spec('GATEWAY_MQTT_TOPICS'))) {
    const bad = topic.includes('#') && (topic.indexOf('#') !== topic.length - 1 || (topic.length > 1 && topic.at(-2) !== '/'));
    if (bad) invalid(spec('GATEWAY_MQTT_TOPICS'), 'has a filter whose # is not the last level', topic);
  }

  const config: GatewayConfig = {
    edge: {
      host: str('GATEWAY_HOST')!,
      port: int('PORT')!,
      threads: int('GATEWAY_THREADS')!,
      maxFrameBytes: int('GATEWAY_MAX_FRAME_BYTES')!,
      maxBadFramesPerMinute: int('GATEWAY_MAX_BAD_FRAMES')!,
      idleTimeoutS,
      maxBackpressure: int('GATEWAY_WS_MAX_BACKPRESSURE')!,
      slowConsumerTimeoutMs: int('GATEWAY_SLOW_CONSUMER_TIMEOUT_MS')!,
    },
    mqtt: {
      url: str('MQTT_URL'),
      topics: readList(env, spec('GATEWAY_MQTT_TOPICS')),
      qos: int('GATEWAY_MQTT_QOS') as 0 | 1 | 2,
      clientId: str('GATEWAY_MQTT_CLIENT_ID') ?? `gateway-${hostname()}-${process.pid}`,
      reconnectMinMs,
      reconnectMaxMs,
    },
    broker: {
      host: str('GATEWAY_BROKER_HOST')!,
      port: int('GATEWAY_BROKER_PORT')!,
    },
    telemetry: {
      deviceIdField: str('GATEWAY_DEVICE_ID_FIELD')!,
      deviceIdTopicLevel: int('GATEWAY_DEVICE_ID_TOPIC_LEVEL'),
      maxPayloadBytes: int('GATEWAY_MAX_PAYLOAD_BYTES')!,
      maxDevicesPerConnection: int('GATEWAY_MAX_DEVICES_PER_CONNECTION')!,
      keepaliveMs: int('GATEWAY_KEEPALIVE_MS')!,
      batchMaxBytes: int('GATEWAY_BATCH_MAX_BYTES')!,
    },
    shutdownTimeoutMs: int('GATEWAY_SHUTDOWN_TIMEOUT_MS')!,
    logLevel: str('GATEWAY_LOG_LEVEL') as LogLevel,
  };
  return deepFreeze(config);
}
