/**
 * Entry of the ingest thread: owns the MQTT connection, decodes each payload once, encodes it once
 * per wanted wire format and hands batches of frames to every edge thread.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import type { GatewayConfig } from '../config/config.js';
import { createLogger } from '../log/logger.js';
import { SharedStats } from '../metrics/shared-stats.js';
import type { EdgeToIngest } from '../threads/messages.js';
import { installCrashGuard, onCloseRequest, reportToMain } from '../threads/worker-runtime.js';
import { EdgeFanout } from './edge-fanout.js';
import { ControlMessages } from './control-messages.js';
import { MqttSource } from './mqtt-source.js';
import { TelemetryPipeline } from './telemetry-pipeline.js';

export interface IngestWorkerData {
  readonly config: GatewayConfig;
  readonly mqttUrl: string;
  readonly stats: SharedArrayBuffer;
  readonly edgePorts: MessagePort[];
}

const { config, mqttUrl, stats: statsBuffer, edgePorts } = workerData as IngestWorkerData;
const logger = createLogger(config.logLevel, 'ingest');
installCrashGuard(logger);
const stats = SharedStats.attach(statsBuffer).ingestWriter();

const fanout = new EdgeFanout(edgePorts, config.telemetry.batchMaxBytes, () => stats.inc('batches_sent_total'));
const pipeline = new TelemetryPipeline(config.telemetry, fanout, stats, logger.child({ component: 'pipeline' }));

const control = new ControlMessages((message) => fanout.broadcast(message), () => stats.inc('control_rejected_total'), logger.child({ component: 'control' }));
const revocationsTopic = config.share.revocationsTopic;
const eventsPrefix = `${config.auth.eventsTopic}/`;

const source = new MqttSource(mqttUrl, config.mqtt, [revocationsTopic, `${eventsPrefix}#`], logger.child({ component: 'mqtt' }), {
  message: (topic, payload) => {
    if (topic === revocationsTopic) control.revocation(payload);
    else if (topic.startsWith(eventsPrefix)) control.event(topic.slice(eventsPrefix.length), payload);
    else pipeline.handle(topic, payload);
  },
  stateChange: (connected) => stats.set('mqtt_connected', connected ? 1 : 0),
  reconnectScheduled: () => stats.inc('mqtt_reconnects_total'),
});
source.start();

for (const port of edgePorts) {
  port.on('message', (message: EdgeToIngest) => {
    if (message.t === 'interest') pipeline.interest(port, message.id, message.format, message.delta);
    else if (message.t === 'publish') source.publish(message.topic, message.payload, message.qos);
  });
}

const ticker = setInterval(() => pipeline.tick(), 1000);

onCloseRequest(logger, async () => {
  clearInterval(ticker);
  await source.close();
  stats.set('mqtt_connected', 0);
  fanout.flush();
  for (const port of edgePorts) port.close();
});

reportToMain({ t: 'ready' });
