/**
 * Entry of the ingest thread: owns the MQTT connection, decodes each payload once, encodes it once
 * per wanted wire format and hands batches of frames to every edge thread.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import type { GatewayConfig } from '../config/config.js';
import { createLogger } from '../log/logger.js';
import { SharedStats } from '../metrics/shared-stats.js';
import type { EdgeToIngest, IngestToEdge } from '../threads/messages.js';
import { AzurePipeline } from '../features/azure/ingest/azure-pipeline.js';
import { AzureOutbound } from '../features/azure/ingest/azure-outbound.js';
import { AzureHandovers } from '../features/azure/ingest/azure-handovers.js';
import { TripMonitor } from '../features/trips/ingest/trip-monitor.js';
import { installCrashGuard, onCloseRequest, reportToMain } from '../threads/worker-runtime.js';
import { EdgeFanout } from './edge-fanout.js';
import { ControlMessages } from './control-messages.js';
import { MqttSource } from './mqtt-source.js';
import { TelemetryPipeline } from '../features/telemetry/ingest/telemetry-pipeline.js';
import { openDatabase, type NodeIdentity } from '../store/database.js';
import { EventLog } from '../features/channels/store/event-log.js';
import { ChannelPipeline } from '../features/channels/ingest/channel-pipeline.js';
import { OutboxRelay } from '../features/channels/ingest/outbox-relay.js';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import { ProgressProbe } from './progress-probe.js';
import { parseBusHook, spinForever } from '../threads/test-hooks.js';
import { reportPortErrors } from '../threads/port-rpc.js';
import { ControlAuth, TAG_MAX_BYTES } from './control-auth.js';
import { MAX_MESSAGE_BYTES } from '../features/azure/commands.js';

export interface IngestWorkerData {
  readonly config: GatewayConfig;
  readonly identity: NodeIdentity;
  readonly mqttUrl: string;
  /** The embedded broker's login for this gateway; undefined with an external broker (config.mqtt has its login). */
  readonly mqttLogin: { readonly username: string; readonly password: string } | undefined;
  readonly stats: SharedArrayBuffer;
  readonly edgePorts: MessagePort[];
}

const { config, identity, mqttUrl, mqttLogin, stats: statsBuffer, edgePorts } = workerData as IngestWorkerData;
const logger = createLogger(config.logLevel, 'ingest');
installCrashGuard(logger);
const shared = SharedStats.attach(statsBuffer);
const stats = shared.ingestWriter();

const fanout = new EdgeFanout(edgePorts, config.telemetry.batchMaxBytes, () => stats.inc('batches_sent_total'));
const maxJsonDepth = config.limits.maxJsonDepth;
const pipeline = new TelemetryPipeline(config.telemetry, maxJsonDepth, fanout, stats, logger.child({ component: 'pipeline' }));

const control = new ControlMessages((message) => fanout.broadcast(message), () => stats.inc('control_rejected_total'), maxJsonDepth, logger.child({ component: 'control' }));
const revocationsTopic = config.share.revocationsTopic;
const eventsPrefix = `${config.auth.eventsTopic}/`;

const channelsPrefix = `${config.events.topic}/`;
const azurePrefix = `${config.azure.topic}/`;
const azure = new AzurePipeline(config.azure.hubs, maxJsonDepth, (message) => fanout.broadcast(message), stats, logger.child({ component: 'azure' }));

// Every decoder bounds its input, so nothing should throw; if something does, that message alone is lost.
const poisonLog = new RateLimitedLog(logger.child({ component: 'mqtt' }));
// The watchdog's probe comes back on this node's own topic (untagged: a forged probe only shows what a
// real one would, that the broker delivers to this client); test hooks (off unless ENVIRONMENT=test,
// tagged like control messages) on `_test`.
const watchdogPrefix = `${config.health.watchdogTopic}/`;
const probeTopic = `${watchdogPrefix}${identity.nodeId}`;
const hooksOn = config.health.testHooks.includes('bus');
const hookTopic = `${watchdogPrefix}_test`;
const watchdogTopics = hooksOn ? [probeTopic, hookTopic] : [probeTopic];

// Control messages carry an HMAC tag (control-auth.ts), checked before their handler sees a byte;
// telemetry falls through the prefix checks to the pipeline untouched. The bound: the largest a
// handler takes (an Azure command and its payload) plus the tag.
const auth = new ControlAuth(config.cluster.key, MAX_MESSAGE_BYTES + 64 * 1024 + TAG_MAX_BYTES, Date.now, config.cluster.acceptedKey);
const authLog = new RateLimitedLog(logger.child({ component: 'control-auth' }));
/** The body of an authenticated control message, or null (counted and logged without the payload). */
function authenticated(topic: string, payload: Buffer): Buffer | null {
  const body = auth.open(topic, payload);
  if (body === null) {
    stats.inc('control_unauthenticated_total');
    authLog.warn({ topic: topic.slice(0, 200), bytes: payload.byteLength, why: auth.refusal }, 'control message dropped: not authenticated (GATEWAY_CLUSTER_KEY)');
  }
  return body;
}
/** What ingest checks is what it tags: the topics it subscribes as control topics (not the Azure client events for backends). */
function isControlTopic(topic: string): boolean {
  if (topic === revocationsTopic || topic.startsWith(eventsPrefix) || topic === hookTopic) return true;
  if (topic.startsWith(channelsPrefix)) return topic.indexOf('/', channelsPrefix.length) < 0;
  if (topic.startsWith(azurePrefix)) return topic.indexOf('/', azurePrefix.length) < 0;
  return false;
}
function publishControl(topic: string, payload: string | Uint8Array, qos: 0 | 1): void {
  source.publish(topic, isControlTopic(topic) ? auth.sign(topic, payload) : payload, qos);
}

const source = new MqttSource(mqttUrl, mqttLogin ? { ...config.mqtt, ...mqttLogin, ca: undefined, cert: undefined, key: undefined } : config.mqtt, [revocationsTopic, `${eventsPrefix}#`, `${channelsPrefix}+`, `${azurePrefix}+`, ...watchdogTopics], logger.child({ component: 'mqtt' }), {
  message: (topic, payload) => {
    let body: Buffer | null;
    if (topic.startsWith(watchdogPrefix)) onWatchdogTopic(topic, payload);
    else if (topic.startsWith(channelsPrefix)) {
      if ((body = authenticated(topic, payload)) !== null) channels.handle(topic.slice(channelsPrefix.length), body);
    } else if (topic.startsWith(azurePrefix)) {
      if ((body = authenticated(topic, payload)) !== null) azure.handle(topic.slice(azurePrefix.length), body);
    } else if (topic === revocationsTopic) {
      if ((body = authenticated(topic, payload)) !== null) control.revocation(body);
    } else if (topic.startsWith(eventsPrefix)) {
      if ((body = authenticated(topic, payload)) !== null) control.event(topic.slice(eventsPrefix.length), body);
    } else pipeline.handle(topic, payload);
  },
  poison: (topic, bytes, err) => {
    stats.inc('ingest_poison_messages_total');
    const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    poisonLog.warn({ topic: topic.slice(0, 200), bytes, error: error.slice(0, 200) }, 'bus message skipped: its handling threw');
  },
  stateChange: (connected) => stats.set('mqtt_connected', connected ? 1 : 0),
  reconnectScheduled: () => stats.inc('mqtt_reconnects_total'),
  subscribed: () => relay.rewind('(re)subscribed to the broker'),
});

// Channel events: the outbox relay publishes what the store wrote; the pipeline takes what comes back.
const storeDb = openDatabase(config.events.dataDir, 'store');
const historyDb = openDatabase(config.events.dataDir, 'history');
const eventLog = new EventLog(historyDb, storeDb);
const relay = new OutboxRelay(eventLog, identity.nodeId, config.events.topic, {
  get connected() {
    return source.subscribed;
  },
  publish: (topic, payload) => publishControl(topic, payload, 1),
}, config.events.outboxRetryMs, stats, logger.child({ component: 'outbox' }));
const outbound = config.azure.outbound === undefined ? null : new AzureOutbound(config.azure.outbound, stats, logger.child({ component: 'azure-outbound' }));
const channels = new ChannelPipeline(config.events.channels, eventLog, identity.epoch, identity.nodeId, relay, maxJsonDepth,
  (message) => fanout.broadcast(message), stats, logger.child({ component: 'channels' }),
  outbound === null ? null : (hub, groups, data) => outbound.send(hub, groups, data));
const tripMonitor = new TripMonitor(storeDb, () => azure.query(config.trips.hub, { kind: 'users' }) as string[], stats);
fanout.broadcast(channels.initMessage());
const probe = new ProgressProbe(shared, source, probeTopic, config.health.watchdogMs);
probe.start();
source.start();

/** Another node's probe (when GATEWAY_MQTT_TOPICS or a broker bridge overlaps) is ignored. */
function onWatchdogTopic(topic: string, payload: Buffer): void {
  if (topic === probeTopic) probe.seen();
  else if (hooksOn && topic === hookTopic) {
    const body = authenticated(topic, payload);
    if (body !== null) testHook(body);
  }
}

function testHook(payload: Buffer): void {
  const hook = parseBusHook(payload);
  if (hook === null) {
    logger.warn({ bytes: payload.length }, 'test hook message not understood');
    return;
  }
  logger.warn(hook, 'test hook');
  if (hook.hook === 'wedge-ingest') spinForever();
  else if (hook.hook === 'exit-ingest') process.exit(3);
  else if (hook.hook === 'stall-mqtt') source.stallForTest();
  else fanout.broadcast({ t: 'test-hook', hook: hook.hook, edge: hook.edge });
}

const handovers = new AzureHandovers((edge, message) => fanout.sendTo(edgePorts[edge], message));

for (const [edge, port] of edgePorts.entries()) {
  reportPortErrors(port, logger, `edge-${edge}`);
  port.on('message', (message: EdgeToIngest) => {
    if (message.t === 'interest') pipeline.interest(port, message.id, message.format, message.delta);
    else if (message.t === 'publish') publishControl(message.topic, message.payload, message.qos);
    else if (message.t === 'outbox') relay.nudge();
    else if (message.t === 'azure-presence') {
      azure.presence(message.hub, message.change);
      if (message.change.op === 'open') handovers.opened(message.change.id, edge);
      else if (message.change.op === 'close') handovers.closed(message.change.id, edge);
    } else if (message.t === 'azure-query') port.postMessage({ t: 'azure-answer', id: message.id, value: azure.query(message.hub, message.query) } satisfies IngestToEdge);
    else if (message.t === 'azure-handover-ask') handovers.ask(edge, message.id, message.hub, message.connectionId, message.reconnectionToken);
    else if (message.t === 'azure-handover-state') handovers.answered(message.id, message.session);
  });
}

const ticker = setInterval(() => pipeline.tick(), 1000);

onCloseRequest(logger, async () => {
  clearInterval(ticker);
  probe.stop();
  relay.stop();
  channels.stop();
  tripMonitor.stop();
  outbound?.stop();
  await source.close();
  historyDb.close();
  storeDb.close();
  stats.set('mqtt_connected', 0);
  fanout.flush();
  for (const port of edgePorts) port.close();
});

reportToMain({ t: 'ready' });
