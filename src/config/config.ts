/** The validated, frozen configuration passed to every component (and to every thread). */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface MqttConfig {
  /** Unset: the gateway starts its embedded broker and fills this in at start. */
  readonly url: string | undefined;
  readonly topics: readonly string[];
  readonly qos: 0 | 1 | 2;
  readonly clientId: string;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
}

export interface TelemetryConfig {
  readonly deviceIdField: string;
  readonly deviceIdTopicLevel: number | undefined;
  readonly maxPayloadBytes: number;
  readonly maxDevicesPerConnection: number;
  readonly keepaliveMs: number;
  readonly batchMaxBytes: number;
}

export interface EdgeConfig {
  readonly host: string;
  readonly port: number;
  readonly threads: number;
  readonly maxFrameBytes: number;
  readonly maxBadFramesPerMinute: number;
  readonly idleTimeoutS: number;
  readonly maxBackpressure: number;
  readonly slowConsumerTimeoutMs: number;
}

export interface BrokerConfig {
  readonly host: string;
  readonly port: number;
}

export interface GatewayConfig {
  readonly edge: EdgeConfig;
  readonly mqtt: MqttConfig;
  readonly broker: BrokerConfig;
  readonly telemetry: TelemetryConfig;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: LogLevel;
}
