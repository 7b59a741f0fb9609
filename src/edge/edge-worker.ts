/**
 * Entry of an edge thread: one uWS App on the shared port (SO_REUSEPORT), serving WebSocket and
 * HTTP routes. It receives every telemetry frame and control message from ingest and publishes
 * them to its own topics; token checks run inline or on its Piscina pool.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import { Acl } from '../auth/acl.js';
import { RevocationList } from '../auth/revocation-list.js';
import { ShareTokens } from '../auth/share-tokens.js';
import { createTokenChecks } from '../auth/token-checks.js';
import type { GatewayConfig } from '../config/config.js';
import { createLogger } from '../log/logger.js';
import { SharedStats } from '../metrics/shared-stats.js';
import type { EdgeToIngest, IngestToEdge } from '../threads/messages.js';
import { installCrashGuard, onCloseRequest, reportToMain } from '../threads/worker-runtime.js';
import { KeyedBuckets } from '../util/token-bucket.js';
import { ClientAddresses } from './client-address.js';
import { ConnectionRegistry } from './connection-registry.js';
import { Keepalive } from '../features/telemetry/edge/keepalive.js';
import { registerOperatorRoutes } from '../features/operations/edge/operator-routes.js';
import { registerDeadLetterRoutes } from '../features/channels/edge/dead-letter-routes.js';
import { sessionEndings } from './session-endings.js';
import { SessionExpiry } from './session-expiry.js';
import { registerShareLocationRoutes } from '../features/share-location/edge/share-location-routes.js';
import { SlowConsumers } from '../features/telemetry/edge/slow-consumers.js';
import { registerStreamRoute } from '../features/telemetry/edge/stream-route.js';
import type { StreamSocket } from '../features/telemetry/edge/stream-socket.js';
import { DeviceTopics } from '../features/telemetry/edge/device-topics.js';
import { UserEvents } from '../features/users/edge/user-events-route.js';
import { registerUserStatsRoutes } from '../features/users/edge/user-stats-routes.js';
import { ChannelBackpressure } from '../features/channels/edge/channel-backpressure.js';
import { registerChannelRoute } from '../features/channels/edge/channel-route.js';
import type { ChannelSocket } from '../features/channels/edge/channel-socket.js';
import { registerChannelStatsRoutes } from '../features/channels/edge/channel-stats-routes.js';
import { registerEntityRoutes } from '../features/channels/edge/entity-routes.js';
import { ChannelHistory } from '../features/channels/edge/channel-history.js';
import { channelTopic, userTopic } from '../features/channels/channel-topics.js';
import { PortClient, reportPortErrors } from '../threads/port-rpc.js';
import { beatIntervalMs } from '../threads/progress.js';
import { spinForever } from '../threads/test-hooks.js';
import { AzureAccessTokens } from '../features/azure/access-tokens.js';
import { AzureSessions } from '../features/azure/edge/azure-sessions.js';
import { registerAzureClientRoute } from '../features/azure/edge/azure-client-route.js';
import { AZURE_REST_PREFIX, registerAzureRestRoutes, sendAzureError } from '../features/azure/edge/azure-rest-routes.js';
import { ERRORS } from '../errors/error-codes.js';
import { sendError } from './http-response.js';
import { guardRequestEncoding } from './request-encoding.js';
import { guardBrowsers } from './browser-guard.js';
import { ownOrigin } from './request-origin.js';
import { OriginPolicy } from '../auth/origin-policy.js';
import { AzureDirectory } from '../features/azure/edge/azure-directory.js';
import { loadPageAssets, registerPageRoutes } from './page-routes.js';
import { registerTripRoutes } from '../features/trips/edge/trip-routes.js';
import type { StoreReply, StoreTask } from '../pool/store-protocol.js';

export interface EdgeWorkerData {
  readonly config: GatewayConfig;
  readonly index: number;
  /** The concrete port to listen on (0 only when this is the only edge). */
  readonly port: number;
  readonly mqttUrl: string;
  readonly stats: SharedArrayBuffer;
  readonly ingestPort: MessagePort;
  /** Port to the main thread's token-check pool; undefined: checks run inline here. */
  readonly poolPort: MessagePort | undefined;
  /** Port to the main thread's store pool (SQLite). */
  readonly storePort: MessagePort;
}

/** Time given to close frames to leave before app.close() cuts what is left. */
const CLOSE_FLUSH_MS = 200;

const { config, index, port, mqttUrl, stats: statsBuffer, ingestPort, poolPort, storePort } = workerData as EdgeWorkerData;
const logger = createLogger(config.logLevel, `edge-${index}`);
installCrashGuard(logger);
const shared = SharedStats.attach(statsBuffer);
const stats = shared.edgeWriter(index);
// The watchdog's heartbeat (threads/progress.ts): written from this thread's own event loop.
shared.setEdgeBeat(index, Date.now());
const heartbeat = setInterval(() => shared.setEdgeBeat(index, Date.now()), beatIntervalMs(config.health.watchdogMs));
heartbeat.unref();
reportPortErrors(ingestPort, logger, 'ingest');
reportPortErrors(storePort, logger, 'store pool');
if (poolPort) reportPortErrors(poolPort, logger, 'token-check pool');
const toIngest = (message: EdgeToIngest) => ingestPort.postMessage(message);

const revocations = new RevocationList();
const checks = await createTokenChecks({ jwt: config.auth.jwt, share: config.share.tokens }, config.auth.tokenChecks, poolPort, revocations);
const acl = new Acl(config.auth.acl);
const ipBuckets = new KeyedBuckets(config.limits.connectRatePerIp, config.limits.connectBurstPerIp);
const clients = new ClientAddresses(config.edge.trustedProxies, config.edge.tls !== undefined);
/** The request's own origin, with native TLS and trusted proxies (same-origin checks, the pages' CSP). */
const requestOrigin = ownOrigin(clients);
const bucketSweep = setInterval(() => {
  ipBuckets.sweep();
  revocations.purge();
}, 10_000);
bucketSweep.unref();

(uWS as unknown as { _cfg(flag: string): void })._cfg('silent'); // no "uWebSockets: 20" header on responses
/** uWS SSLApp (https/wss) when GATEWAY_TLS_CERT and GATEWAY_TLS_KEY are set (load-config.ts has loaded them once), else App. */
function createApp(): uWS.TemplatedApp {
  const tls = config.edge.tls;
  if (tls === undefined) return uWS.App();
  try {
    return uWS.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile, passphrase: tls.passphrase, ca_file_name: tls.caFile });
  } catch (err) {
    throw new Error(`edge ${index}: uWS could not load GATEWAY_TLS_CERT ${tls.certFile} / GATEWAY_TLS_KEY ${tls.keyFile}${tls.caFile === undefined ? '' : ` / GATEWAY_TLS_CA ${tls.caFile}`} (${(err as Error).message})`);
  }
}
/**
 * A request or upgrade the route guards refuse before any route sees it: counted, and answered in
 * the format of the route family it was for (the Azure data plane has its own error body).
 */
function refuseBeforeRoute(res: uWS.HttpResponse, req: uWS.HttpRequest, upgrade: boolean, metric: 'encoding_refusals_total' | 'origin_refusals_total',
  code: 'GW_ERR_ENCODING_INVALID' | 'GW_ERR_ORIGIN_FORBIDDEN', message: string): void {
  stats.inc(metric);
  if (upgrade) stats.inc('upgrades_rejected_total');
  if (req.getUrl().startsWith(AZURE_REST_PREFIX)) {
    stats.inc('azure_rest_errors_total');
    sendAzureError(res, ERRORS[code].status, code, message, req.getMethod() === 'head');
  } else {
    sendError(res, code, message);
  }
}
// Every route checks the request's Origin first (browser-guard.ts), then its percent-encoding and UTF-8 (request-encoding.ts).
const app = guardBrowsers(guardRequestEncoding(createApp(), (res, req, message, upgrade) => {
  refuseBeforeRoute(res, req, upgrade, 'encoding_refusals_total', 'GW_ERR_ENCODING_INVALID', message);
}), {
  policy: new OriginPolicy(config.browsers.allowedOrigins, config.share.publicUrl === undefined ? [] : [new URL(config.share.publicUrl).origin]),
  credentials: config.browsers.corsCredentials,
  ownOrigin: requestOrigin,
  refuse: (res, req, origin, upgrade) => {
    const message = `Origin ${JSON.stringify(origin.slice(0, 200))} may not use this gateway (GATEWAY_ALLOWED_ORIGINS)`;
    refuseBeforeRoute(res, req, upgrade, 'origin_refusals_total', 'GW_ERR_ORIGIN_FORBIDDEN', message);
  },
});
const devices = new DeviceTopics(app, ingestPort, stats, config.telemetry.streamBatchMs);
const keepalive = new Keepalive(app, config.telemetry.keepaliveMs, stats);
const connections = new ConnectionRegistry<StreamSocket>();
const slow = new SlowConsumers(config.edge, connections, devices, stats, logger.child({ component: 'slow-consumers' }));
const expiry = new SessionExpiry(sessionEndings(stats));
const streamDeps = { config, devices, slow, connections, keepalive, expiry, checks, acl, ipBuckets, clients, stats, logger: logger.child({ component: 'stream' }) };
registerStreamRoute(app, 'open', streamDeps);
registerStreamRoute(app, 'share', streamDeps);
// Azure Web PubSub connections (their routes come below); a hub-bound channel's events reach them.
const azure = new AzureSessions({
  app,
  sessionTtlMs: config.azure.sessionTtlS * 1000, maxBufferBytes: config.events.maxBufferBytes, stats,
  presence: (hubName, change) => toIngest({ t: 'azure-presence', hub: hubName, change }), logger: logger.child({ component: 'azure' }),
});
// Channels: registered before /ws/connect's neighbours so that the static /ws/* routes keep priority.
const events = new ChannelHistory(app, config.events.channels.channels, stats, (event) => azure.deliverChannelEvent(event));
const channelSockets = new ConnectionRegistry<ChannelSocket>();
const channelBackpressure = new ChannelBackpressure(config.edge, config.events.maxBufferBytes, channelSockets, stats, logger.child({ component: 'channels' }));
const channelDeps = { config, history: events, sockets: channelSockets, expiry, checks, acl, ipBuckets, clients, stats, logger: logger.child({ component: 'channels' }) };
registerChannelRoute(app, 0, channelDeps);
registerChannelRoute(app, 0, channelDeps, true); // /api/v1/ws/secure
registerChannelRoute(app, 1, channelDeps);
const store = new PortClient<StoreTask, StoreReply>(storePort);
const nudgeRelay = () => toIngest({ t: 'outbox' });
registerEntityRoutes(app, { config, store, checks, acl, stats, logger: logger.child({ component: 'rest' }), nudgeRelay, hasChannel: (c) => events.has(c) });
registerChannelStatsRoutes(app, { config, history: events, shared, store, nudgeRelay, logger });

const users = new UserEvents(app, {
  config, checks, expiry, ipBuckets, clients, stats, logger: logger.child({ component: 'users' }), isClosing: () => connections.closing,
  // /ws/connect users also get the channel events their roles may see, and their own notifications.
  channelTopics: (principal, format) => [
    ...events.channelNames.filter((c) => acl.allows(principal, 'channels', c)).map((c) => channelTopic(2, format, c)),
    userTopic(2, format, '', principal.userId),
  ],
});
users.register();
const publish = (topic: string, payload: string | Uint8Array) => toIngest({ t: 'publish', topic, payload, qos: 1 });

// Azure Web PubSub, self-hosted: the client endpoint, the REST data plane, and trips' delivery.
/**
 * The base of URLs handed to clients: GATEWAY_PUBLIC_URL, else the scheme and host the request came
 * to (forwarded by a trusted proxy, client-address.ts). Read synchronously in the handler.
 */
let boundPort = port; // the port it listens on, once it does (PORT=0 picks one)
const publicBase = (res: uWS.HttpResponse, req: uWS.HttpRequest) => {
  if (config.share.publicUrl !== undefined) return config.share.publicUrl;
  const { scheme, host } = clients.origin(res, req);
  return /^[A-Za-z0-9.:[\]-]{1,255}$/.test(host) ? `${scheme}://${host}` : `${scheme}://localhost:${boundPort}`;
};
const azureTokens = new AzureAccessTokens(config.azure.accessKey);
const directory = new AzureDirectory(ingestPort);
registerAzureClientRoute(app, {
  config, sessions: azure, directory, tokens: azureTokens, ipBuckets, clients, stats, logger: logger.child({ component: 'azure' }), isClosing: () => connections.closing, publish,
});
registerTripRoutes(app, {
  config, store, checks, acl, stats, logger: logger.child({ component: 'trips' }), nudgeRelay,
  tokens: azureTokens, shared, baseUrl: publicBase,
});
registerAzureRestRoutes(app, {
  config, tokens: azureTokens, stats, logger: logger.child({ component: 'azure-rest' }), publish,
  query: (hubName, q) => directory.ask(hubName, q), baseUrl: publicBase,
});
registerShareLocationRoutes(app, {
  config, checks, acl, logger: logger.child({ component: 'share' }), baseUrl: publicBase,
  shares: new ShareTokens(config.share.tokens, revocations),
  publishRevocation: (jti, expiresAt) => publish(config.share.revocationsTopic, JSON.stringify({ jti, expires_at: new Date(expiresAt).toISOString() })),
});
registerUserStatsRoutes(app, { config, users, shared, stats, publish, logger });
registerPageRoutes(app, loadPageAssets(), requestOrigin);
registerDeadLetterRoutes(app, { config, store, checks, acl, stats, logger: logger.child({ component: 'outbox' }), nudgeRelay });
registerOperatorRoutes(app, { stats: shared, mqttUrl, logger, edgeStats: stats, watchdogMs: config.health.watchdogMs, tokenPool: poolPort !== undefined }); // last: it ends with the catch-all 404

ingestPort.on('message', (message: IngestToEdge) => {
  switch (message.t) {
    case 'revoked':
      revocations.revoke(message.jti, message.expiresAt);
      expiry.revoke(message.jti);
      break;
    case 'event':
      users.deliver(message.target, message.json, message.msgpack);
      break;
    case 'azure':
      azure.apply(message.hub, message.command, message.message);
      break;
    case 'azure-answer':
      directory.answered(message.id, message.value);
      break;
    case 'azure-handover-start':
      azure.expectHandover(message.id, message.hub);
      break;
    case 'azure-handover':
      directory.answered(message.id, azure.adopt(message.id, message.session)); // adopted now, in order with the commands
      break;
    case 'azure-handover-ask':
      toIngest({ t: 'azure-handover-state', id: message.id, session: azure.handOver(message.hub, message.connectionId, message.reconnectionToken) });
      break;
    case 'channels-init':
    case 'channel-events':
      events.onIngestMessage(message);
      break;
    case 'test-hook':
      if (config.health.testHooks.includes('bus') && message.edge === index) testHook(message.hook);
      break;
    default:
      devices.onIngestMessage(message);
  }
});

function testHook(hook: 'wedge-edge' | 'crash-store-pool' | 'break-store-pool'): void {
  logger.warn({ hook }, 'test hook');
  if (hook === 'wedge-edge') spinForever();
  store.call({ op: 'test-crash', replacementsFail: hook === 'break-store-pool' })
    .then((reply) => logger.warn({ reply }, 'test hook: the store pool answered'), (err: unknown) => logger.error({ err }, 'test hook failed'));
}

/**
 * Several edge threads share the port through SO_REUSEPORT. A single one listens exclusively: with
 * SO_REUSEPORT a second gateway process started by mistake on the same port (or two bound to port 0)
 * would silently split the connections between them.
 */
const listenOptions = config.edge.threads === 1 ? uWS.LIBUS_LISTEN_EXCLUSIVE_PORT : 0;
const listen = app.listen as unknown as (host: string, port: number, options: number, cb: (token: uWS.us_listen_socket | false) => void) => void;
/** Closes every socket, timer and port of this thread, so it ends by itself (worker-runtime.ts). */
async function closeEdge(listenSocket: uWS.us_listen_socket | null): Promise<void> {
  if (listenSocket !== null) uWS.us_listen_socket_close(listenSocket);
  clearInterval(heartbeat);
  keepalive.stop();
  devices.stop();
  connections.closeAll('server shutting down');
  users.closeAll('server shutting down');
  channelSockets.closeAll('server shutting down');
  azure.closeAll('server shutting down');
  channelBackpressure.stop();
  slow.stop();
  expiry.stop();
  if (listenSocket !== null) await new Promise((resolve) => setTimeout(resolve, CLOSE_FLUSH_MS));
  app.close();
  ingestPort.close();
  store.close();
  await checks.close();
}

listen.call(app, config.edge.host, port, listenOptions, (token) => {
  if (!token) {
    reportToMain({ t: 'failed', message: `edge ${index} could not listen on ${config.edge.host}:${port}` });
    onCloseRequest(logger, () => closeEdge(null)); // main closes every thread, then exits
    return;
  }
  boundPort = uWS.us_socket_local_port(token);
  reportToMain({ t: 'ready', port: boundPort });
  onCloseRequest(logger, () => closeEdge(token));
});
