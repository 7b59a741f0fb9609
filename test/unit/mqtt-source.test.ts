/**
 * The ingest thread's MQTT connection against the embedded broker: a message whose handler throws
 * is reported once as poison, and the messages after it keep coming.
 */
import { connectAsync } from 'mqtt';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startEmbeddedBroker } from '../../src/broker/embedded-broker.js';
import { loadConfig } from '../../src/config/load-config.js';
import { MqttSource } from '../../src/ingest/mqtt-source.js';
import { SharedStats } from '../../src/metrics/shared-stats.js';

describe('MqttSource', () => {
  it('regression: a message whose handling throws (RangeError in pack) is skipped and later messages keep flowing', async () => {
    const logger = pino({ level: 'silent' });
    const broker = await startEmbeddedBroker(loadConfig({ GATEWAY_BROKER_PORT: '0' }), SharedStats.create(1), logger);
    onTestFinished(() => broker.close());
    const received: string[] = [];
    const poison: Array<{ topic: string; bytes: number; err: unknown }> = [];
    let subscribed!: () => void;
    const ready = new Promise<void>((resolve) => {
      subscribed = resolve;
    });
    let gotGood!: () => void;
    const good = new Promise<void>((resolve) => {
      gotGood = resolve;
    });
    const source = new MqttSource(broker.url, { ...loadConfig({}).mqtt, clientId: 'poison-test', ...broker.login }, [], logger, {
      message(topic, payload) {
        if (payload.toString() === 'poison') throw new RangeError('Maximum call stack size exceeded');
        received.push(payload.toString());
        if (received.length === 2) gotGood();
      },
      poison: (topic, bytes, err) => poison.push({ topic, bytes, err }),
      stateChange: () => undefined,
      reconnectScheduled: () => undefined,
      subscribed: () => subscribed(),
    });
    source.start();
    onTestFinished(() => source.close());
    await ready;
    const pub = await connectAsync(broker.url);
    onTestFinished(() => pub.endAsync(true));
    await pub.publishAsync('gps/A', 'first');
    await pub.publishAsync('gps/A', 'poison');
    await pub.publishAsync('gps/B', 'after');
    await good;
    expect(received).toEqual(['first', 'after']);
    expect(poison).toEqual([{ topic: 'gps/A', bytes: 6, err: expect.any(RangeError) }]);
  });
});
