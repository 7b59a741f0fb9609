/**
 * Ingest: owns the MQTT connection, decodes each payload once, encodes it once
 * per wanted wire format and hands batches of frames to every edge thread.
 *
 * Runs on a thread of its own (ingest-worker.ts, the default) or inside the one edge thread
 * (GATEWAY_INGEST_THREAD=edge, edge-worker.ts): the same code, told where to report.
 *
 * The root: from its data it builds what every feature shares (the fan-out to the edges, the
 * store's database, the bus: ingest-feature.ts's IngestContext), hands it to each feature's ingest
 * part in the explicit list below, and routes the bus's topics and the edges' messages to them.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/config.js';
import { azureIngest } from '../features/azure/ingest/azure-ingest.js';
import { MAX_MESSAGE_BYTES } from '../features/azure/commands.js';
import { clusterIngest } from '../features/cluster/ingest/cluster-ingest.js';
import { channelsIngest } from '../features/channels/ingest/channels-ingest.js';
import { shareLocation } from '../features/share-location/ingest/share-location-ingest.js';
import { telemetry } from '../features/telemetry/ingest/telemetry-ingest.js';
import { tripsIngest } from '../features/trips/ingest/trips-ingest.js';
import { users } from '../features/users/ingest/users-ingest.js';
import { createLogger } from '../log/logger.js';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import { SharedStats } from '../metrics/shared-stats.js';
import type { NodeIdentity } from '../store/database.js';
import { openStore, storeTarget } from '../store/open-store.js';
import type { EdgeToIngest, FeatureToIngest } from '../threads/messages.js';
import type { StoreReply, StoreTask } from '../pool/store-protocol.js';
import { PortClient, reportPortErrors } from '../threads/port-rpc.js';
import { parseBusHook, spinForever } from '../threads/test-hooks.js';
import { installCrashGuard } from '../threads/worker-runtime.js';
import type { WorkerToMain } from '../threads/messages.js';
import { ControlAuth, TAG_MAX_BYTES } from './control-auth.js';
import { ControlMessages } from './control-messages.js';
import { EdgeFanout } from './edge-fanout.js';
import { startIngest, type ControlTopic, type FromEdge, type IngestContext } from './ingest-feature.js';
import { MqttSource } from './mqtt-source.js';
import { ProgressProbe } from './progress-probe.js';

export interface IngestWorkerData {
  readonly config: GatewayConfig;
  readonly identity: NodeIdentity;
  readonly mqttUrl: string;
  /** The embedded broker's login for this gateway; undefined with an external broker (config.mqtt has its login). */
  readonly mqttLogin: { readonly username: string; readonly password: string } | undefined;
  readonly stats: SharedArrayBuffer;
  readonly edgePorts: MessagePort[];
  /** To the store pool (its tasks from ingest: the batches of last positions). */
  readonly storePort: MessagePort;
}

/** Where this ingest reports: the main thread (its own thread), or the edge thread it runs in. */
export interface IngestControl {
  /** Its own thread: install the crash guard (inside an edge, the edge's is already there). */
  readonly ownThread: boolean;
  /** `ready` once every feature has loaded its state, or `failed`. */
  report(message: WorkerToMain): void;
  /** Registers the close routine, run once when the supervisor asks. */
  onClose(logger: Logger, close: () => Promise<void>): void;
}

export function runIngest(data: IngestWorkerData, supervisor: IngestControl): void {
  const { config, identity, mqttUrl, mqttLogin, stats: statsBuffer, edgePorts, storePort } = data;
  const logger = createLogger(config.logLevel, 'ingest');
  if (supervisor.ownThread) installCrashGuard(logger);
  const shared = SharedStats.attach(statsBuffer);
  const stats = shared.ingestWriter();

  const fanout = new EdgeFanout(edgePorts, config.telemetry.batchMaxBytes, () => stats.inc('batches_sent_total'));
  const maxJsonDepth = config.limits.maxJsonDepth;
  const controlMessages = new ControlMessages(
    (message) => fanout.broadcast(message),
    () => stats.inc('control_rejected_total'),
    maxJsonDepth,
    logger.child({ component: 'control' }),
  );
  const store = openStore(storeTarget(config, 'ingest', identity.nodeId), logger.child({ component: 'store' }));
  reportPortErrors(storePort, logger, 'store');
  const storePool = new PortClient<StoreTask, StoreReply>(storePort);
  const context: IngestContext = {
    config,
    identity,
    stats,
    logger,
    fanout,
    edgePorts,
    store,
    storePool,
    controlMessages,
    bus: { subscribed: () => source.subscribed, publish: (topic, payload, qos, done) => publishControl(topic, payload, qos, done) },
  };

  /*
   * The features. Their control topics are matched in list order (they overlap only if misconfigured:
   * channels, then Azure, then revocations, then events, as always); telemetry takes the rest.
   * Azure is made before the list: channels send this node's events of hub-bound channels to its
   * outbound service, and trips' monitor counts the users connected to the trips hub; the cluster's
   * heartbeat lists that monitor's equipment, and the monitor unions the other nodes' lists.
   */
  const azure = azureIngest(context);
  let ownEquipment: () => readonly string[] = () => [];
  const cluster = clusterIngest({ shared, ownEquipment: () => ownEquipment() });
  const ingest = startIngest(context, [
    telemetry,
    channelsIngest({ toAzure: azure.outbound }),
    azure,
    shareLocation,
    users,
    tripsIngest({
      connectedUsers: (hub) => azure.connectedUsers(hub),
      otherNodesEquipment: () => cluster.otherEquipment(),
      ownEquipment: (read) => (ownEquipment = read),
    }),
    cluster,
  ]);

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
      authLog.warn(
        { topic: topic.slice(0, 200), bytes: payload.byteLength, why: auth.refusal },
        'control message dropped: not authenticated (GATEWAY_CLUSTER_KEY)',
      );
    }
    return body;
  }
  const control = ingest.control;
  const controlPrefixes = control.map((c) => `${c.topic}/`);
  /** The control topic an incoming message is for (prefix match, as subscribed), or -1: telemetry. */
  function controlIndex(topic: string): number {
    for (let i = 0; i < control.length; i++) {
      if (control[i].subtopics === 'none' ? topic === control[i].topic : topic.startsWith(controlPrefixes[i])) return i;
    }
    return -1;
  }
  /** What ingest checks is what it tags: the topics it subscribes as control topics (not the Azure client events for backends). */
  function isControlTopic(topic: string): boolean {
    if (topic === hookTopic) return true;
    return control.some((c, i) => {
      if (c.subtopics === 'none') return topic === c.topic;
      if (!topic.startsWith(controlPrefixes[i])) return false;
      return c.subtopics === 'any' || topic.indexOf('/', controlPrefixes[i].length) < 0;
    });
  }
  function publishControl(topic: string, payload: string | Uint8Array, qos: 0 | 1, done?: (err?: Error) => void): void {
    source.publish(topic, isControlTopic(topic) ? auth.sign(topic, payload) : payload, qos, done);
  }
  const filterOf = (c: ControlTopic) => (c.subtopics === 'none' ? c.topic : `${c.topic}/${c.subtopics === 'one' ? '+' : '#'}`);

  const source = new MqttSource(
    mqttUrl,
    mqttLogin ? { ...config.mqtt, ...mqttLogin, ca: undefined, cert: undefined, key: undefined } : config.mqtt,
    [...control.map(filterOf), ...watchdogTopics],
    logger.child({ component: 'mqtt' }),
    {
      message: (topic, payload) => {
        if (topic.startsWith(watchdogPrefix)) {
          onWatchdogTopic(topic, payload);
          return;
        }
        const c = controlIndex(topic);
        if (c < 0) ingest.dataTopics(topic, payload);
        else {
          const body = authenticated(topic, payload);
          if (body !== null) control[c].handle(control[c].subtopics === 'none' ? '' : topic.slice(controlPrefixes[c].length), body);
        }
      },
      poison: (topic, bytes, err) => {
        stats.inc('ingest_poison_messages_total');
        const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        poisonLog.warn({ topic: topic.slice(0, 200), bytes, error: error.slice(0, 200) }, 'bus message skipped: its handling threw');
      },
      stateChange: (connected) => stats.set('mqtt_connected', connected ? 1 : 0),
      reconnectScheduled: () => stats.inc('mqtt_reconnects_total'),
      subscribed: () => ingest.subscribed(),
    },
  );

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

  const { handlers } = ingest;
  for (const [edge, port] of edgePorts.entries()) {
    reportPortErrors(port, logger, `edge-${edge}`);
    const from: FromEdge = { index: edge, port };
    port.on('message', (message: EdgeToIngest) => {
      if (message.t === 'publish') publishControl(message.topic, message.payload, message.qos);
      else (handlers[message.t] as (message: FeatureToIngest, from: FromEdge) => void)(message, from);
    });
  }

  supervisor.onClose(logger, async () => {
    probe.stop();
    ingest.stop();
    await source.close();
    await ingest.close();
    storePool.close();
    await store.close();
    stats.set('mqtt_connected', 0);
    fanout.flush();
    for (const port of edgePorts) port.close();
  });

  // Ready once every feature has loaded what it needs from the store; a failure ends the start.
  ingest.ready().then(
    () => supervisor.report({ t: 'ready' }),
    (err: unknown) =>
      supervisor.report({ t: 'failed', message: `ingest could not load its state from the store: ${err instanceof Error ? err.message : String(err)}` }),
  );
}
