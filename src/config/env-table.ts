/**
 * Every environment variable the gateway reads, in one table. The README's configuration table is
 * checked against this list by test/unit/docs-in-step.test.ts, so a new variable must be
 * documented there too.
 */
import { availableParallelism } from 'node:os';

export type EnvKind = 'int' | 'string' | 'list' | 'enum' | 'url';

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
  { name: 'GATEWAY_THREADS', kind: 'int', default: defaultThreads, min: 1, max: 64, description: 'Edge threads serving the port (SO_REUSEPORT); default is cores - 1, at least 1.' },
  { name: 'MQTT_URL', kind: 'url', default: undefined, description: 'External broker (mqtt://, mqtts://, ws://). Unset: start the embedded aedes broker.' },
  { name: 'GATEWAY_BROKER_PORT', kind: 'int', default: '1883', min: 0, max: 65535, description: 'Port of the embedded broker when MQTT_URL is unset; 0 picks a free port.' },
  { name: 'GATEWAY_BROKER_HOST', kind: 'string', default: '0.0.0.0', description: 'Address the embedded broker binds to.' },
  { name: 'GATEWAY_MQTT_TOPICS', kind: 'list', default: 'gps/#', description: 'Comma-separated MQTT topic filters carrying device telemetry.' },
  { name: 'GATEWAY_MQTT_QOS', kind: 'int', default: '0', min: 0, max: 2, description: 'QoS of the telemetry subscriptions.' },
  { name: 'GATEWAY_MQTT_CLIENT_ID', kind: 'string', default: undefined, description: 'MQTT client id; default `gateway-<host>-<pid>`.' },
  { name: 'GATEWAY_MQTT_RECONNECT_MIN_MS', kind: 'int', default: '250', min: 10, max: 600000, description: 'First reconnect delay to the broker (exponential backoff with full jitter).' },
  { name: 'GATEWAY_MQTT_RECONNECT_MAX_MS', kind: 'int', default: '15000', min: 10, max: 3600000, description: 'Cap of the reconnect delay.' },
  { name: 'GATEWAY_DEVICE_ID_FIELD', kind: 'string', default: 'DEVICE_ID', description: 'Payload field holding the device id.' },
  { name: 'GATEWAY_DEVICE_ID_TOPIC_LEVEL', kind: 'int', default: undefined, min: 0, max: 32, description: 'Take the device id from this topic level instead (0-based; `gps/{id}` is 1).' },
  { name: 'GATEWAY_MAX_PAYLOAD_BYTES', kind: 'int', default: '65536', min: 64, max: 16777216, description: 'Largest MQTT telemetry payload accepted; larger ones are counted and dropped.' },
  { name: 'GATEWAY_MAX_DEVICES_PER_CONNECTION', kind: 'int', default: '1000', min: 1, max: 100000, description: 'Most devices one connection may watch.' },
  { name: 'GATEWAY_MAX_FRAME_BYTES', kind: 'int', default: '4096', min: 64, max: 1048576, description: 'Largest client frame; larger ones close with 1009.' },
  { name: 'GATEWAY_MAX_BAD_FRAMES', kind: 'int', default: '20', min: 1, max: 100000, description: 'Bad client frames tolerated per minute before closing with 4501.' },
  { name: 'GATEWAY_KEEPALIVE_MS', kind: 'int', default: '60000', min: 50, max: 3600000, description: 'Interval of the `{"event":"ping"}` keep-alive frame.' },
  { name: 'GATEWAY_IDLE_TIMEOUT_S', kind: 'int', default: '120', min: 0, max: 960, description: 'uWS idle timeout with automatic protocol pings; 0 or 9-960 (other values abort uWS, so they are refused here).' },
  { name: 'GATEWAY_WS_MAX_BACKPRESSURE', kind: 'int', default: '262144', min: 1024, max: 268435456, description: 'Bytes buffered for one socket before it counts as lagging and telemetry is conflated.' },
  { name: 'GATEWAY_SLOW_CONSUMER_TIMEOUT_MS', kind: 'int', default: '30000', min: 100, max: 3600000, description: 'A socket lagging this long without draining is closed with 4000.' },
  { name: 'GATEWAY_BATCH_MAX_BYTES', kind: 'int', default: '65536', min: 1024, max: 16777216, description: 'Ingest flushes a batch of frames to the edges at this size or at the end of the event-loop turn.' },
  { name: 'GATEWAY_SHUTDOWN_TIMEOUT_MS', kind: 'int', default: '10000', min: 100, max: 600000, description: 'Deadline for a graceful shutdown before threads are stopped hard.' },
  { name: 'GATEWAY_LOG_LEVEL', kind: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'Log level (pino).' },
];
