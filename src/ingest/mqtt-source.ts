/**
 * The ingest thread's MQTT connection (mqtt.js). It owns reconnects itself: mqtt.js's fixed
 * reconnectPeriod is turned off and replaced by exponential backoff with jitter, and the topic
 * filters are subscribed again on every (re)connect, so a broker restart resumes the stream.
 */
import { connect, type MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { MqttConfig } from '../config/config.js';
import { redactUrl } from '../log/logger.js';
import { Backoff } from '../util/backoff.js';

const noLog = (): void => undefined;

function safeUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

const enum SourceState {
  Connecting,
  Connected,
  Waiting,
  Closed,
}

interface SourceEvents {
  message(topic: string, payload: Buffer): void;
  /**
   * `message` threw for this one (a poison message): it is skipped and the stream goes on. An
   * exception must not reach mqtt.js: thrown inside its packet handling, it stops the client from
   * reading anything more from the connection.
   */
  poison(topic: string, bytes: number, err: unknown): void;
  stateChange(connected: boolean): void;
  reconnectScheduled(): void;
  /** The subscriptions of this connection were acknowledged (after every (re)connect). */
  subscribed?(): void;
}

export class MqttSource {
  private client: MqttClient | undefined;
  private state = SourceState.Connecting;
  private readonly backoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private subscribedNow = false;

  constructor(
    private readonly url: string,
    private readonly config: MqttConfig,
    /** Topic filters besides the telemetry ones (revocations, events). */
    private readonly extraTopics: readonly string[],
    private readonly logger: Logger,
    private readonly events: SourceEvents,
  ) {
    this.backoff = new Backoff(config.reconnectMinMs, config.reconnectMaxMs);
  }

  start(): void {
    this.logger.info(
      {
        url: redactUrl(this.url),
        topics: this.config.topics,
        username: this.config.username ?? (decodeURIComponent(safeUrl(this.url)?.username ?? '') || undefined),
        tls: /^(mqtts|ssl|wss):/.test(this.url)
          ? { ca: this.config.ca !== undefined ? 'GATEWAY_MQTT_CA' : 'system CAs', clientCertificate: this.config.cert !== undefined }
          : false,
      },
      'mqtt connecting',
    );
    const client = connect(this.url, {
      clientId: this.config.clientId,
      clean: true,
      reconnectPeriod: 0,
      resubscribe: false,
      connectTimeout: 10_000,
      keepalive: 30,
      // A login in the URL (mqtt://user:pass@host) is used unless these are set.
      ...(this.config.username !== undefined ? { username: this.config.username } : {}),
      ...(this.config.password !== undefined ? { password: this.config.password } : {}),
      ...(this.config.ca !== undefined ? { ca: this.config.ca } : {}),
      ...(this.config.cert !== undefined ? { cert: this.config.cert, key: this.config.key } : {}),
      rejectUnauthorized: true,
      // mqtt-packet otherwise builds a cache of 65,536 two-byte Buffers (one per packet id) at the
      // first packet it writes: 6.6 MB of this thread's heap, to save an allocation per packet the
      // gateway sends (a few per second: subscriptions, PUBACKs, the outbox). It receives the rest.
      writeCache: false,
      // mqtt.js calls its debug logger several times per packet, each call building a rest-args array even
      // when disabled: 3.5 % of the ingest thread at 10,000 msg/s (docs/design/tail-latency.md). Logged by us instead.
      log: noLog,
    });
    this.client = client;
    client.on('connect', () => {
      // Nagle on this socket costs tens of ms per message (docs/notes/latency.md).
      const stream = client.stream as unknown as Partial<Socket>;
      stream.setNoDelay?.(true);
      this.state = SourceState.Connected;
      this.backoff.reset();
      const filters = Object.fromEntries([
        ...this.config.topics.map((t) => [t, { qos: this.config.qos }] as const),
        ...this.extraTopics.map((t) => [t, { qos: 1 as const }] as const),
      ]);
      client.subscribe(filters, (err) => {
        if (err) {
          this.logger.error({ err }, 'mqtt subscribe failed');
          return;
        }
        this.subscribedNow = true;
        this.logger.info({ topics: this.config.topics, control: this.extraTopics }, 'mqtt subscribed');
        this.events.subscribed?.();
      });
      this.events.stateChange(true);
    });
    client.on('message', (topic, payload) => {
      try {
        this.events.message(topic, payload);
      } catch (err) {
        this.events.poison(topic, payload.length, err);
      }
    });
    client.on('error', (err) => this.logger.warn({ err: err.message }, 'mqtt error'));
    client.on('close', () => this.onClose());
  }

  private onClose(): void {
    if (this.state === SourceState.Closed || this.state === SourceState.Waiting) return;
    this.subscribedNow = false;
    const wasConnected = this.state === SourceState.Connected;
    this.state = SourceState.Waiting;
    if (wasConnected) this.events.stateChange(false);
    const delay = this.backoff.next();
    this.logger.warn({ delayMs: delay, attempt: this.backoff.attempts }, 'mqtt disconnected; reconnecting');
    this.events.reconnectScheduled();
    this.retryTimer = setTimeout(() => {
      if (this.state !== SourceState.Waiting) return;
      this.state = SourceState.Connecting;
      this.client?.reconnect();
    }, delay);
  }

  /** Publishes (mqtt.js queues it while disconnected); `done` once it was sent (QoS 0) or acknowledged (QoS 1), or failed. */
  publish(topic: string, payload: string | Uint8Array, qos: 0 | 1, done?: (err?: Error) => void): void {
    const body = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    if (this.client === undefined) return done?.(new Error('no MQTT client'));
    this.client.publish(topic, body, { qos }, (err) => {
      if (err) this.logger.warn({ topic, err: err.message }, 'mqtt publish failed');
      done?.(err ?? undefined);
    });
  }

  /** Test hook `stall-mqtt` (threads/test-hooks.ts): the client stays connected and delivers nothing more. */
  stallForTest(): void {
    this.client?.removeAllListeners('message');
  }

  get connected(): boolean {
    return this.state === SourceState.Connected;
  }

  /** Connected and subscribed: what this node publishes now also comes back to it. */
  get subscribed(): boolean {
    return this.subscribedNow && this.state === SourceState.Connected;
  }

  async close(): Promise<void> {
    this.state = SourceState.Closed;
    clearTimeout(this.retryTimer);
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }
}
