/**
 * Entry of an edge thread: one uWS App on the shared port (SO_REUSEPORT), serving WebSocket and
 * HTTP routes. It receives every telemetry frame and control message from ingest and publishes
 * them to its own topics; token checks run inline or on its Piscina pool.
 *
 * The root: it reads workerData, builds what every feature shares (the guarded App, token checks,
 * ACL, stats, the ports: edge-feature.ts's EdgeContext) and hands it to each feature's edge part,
 * in the explicit list below (route order).
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import { Acl } from '../auth/acl.js';
import { OriginPolicy } from '../auth/origin-policy.js';
import { RevocationList } from '../auth/revocation-list.js';
import { createTokenChecks } from '../auth/token-checks.js';
import type { GatewayConfig } from '../config/config.js';
import { ERRORS } from '../errors/error-codes.js';
import { azureEdge } from '../features/azure/edge/azure-edge.js';
import { AZURE_REST_PREFIX, sendAzureError } from '../features/azure/edge/azure-rest-routes.js';
import { channelsEdge } from '../features/channels/edge/channels-edge.js';
import { cluster } from '../features/cluster/edge/cluster-edge.js';
import { operations } from '../features/operations/edge/operations-edge.js';
import { shareLocation } from '../features/share-location/edge/share-location-edge.js';
import { telemetry } from '../features/telemetry/edge/telemetry-edge.js';
import { trips } from '../features/trips/edge/trips-edge.js';
import { users } from '../features/users/edge/users-edge.js';
import { createLogger } from '../log/logger.js';
import { SharedStats } from '../metrics/shared-stats.js';
import type { StoreReply, StoreTask } from '../pool/store-protocol.js';
import type { EdgeToIngest, FeatureToEdge, IngestToEdge } from '../threads/messages.js';
import { PortClient, reportPortErrors } from '../threads/port-rpc.js';
import { unreachable } from '../threads/dispatch.js';
import { beatIntervalMs } from '../threads/progress.js';
import { spinForever } from '../threads/test-hooks.js';
import { installCrashGuard, onCloseRequest, reportToMain } from '../threads/worker-runtime.js';
import { KeyedBuckets } from '../util/token-bucket.js';
import { guardBrowsers } from './browser-guard.js';
import { ClientAddresses } from './client-address.js';
import { startEdge, type EdgeContext } from './edge-feature.js';
import { sendError } from './http-response.js';
import { pages } from './page-routes.js';
import { guardRequestEncoding } from './request-encoding.js';
import { ownOrigin } from './request-origin.js';
import { sessionEndings } from './session-endings.js';
import { SessionExpiry } from './session-expiry.js';
import { operatorGuard } from './operator-auth.js';
import { CLOSE } from '../errors/close-codes.js';
import type { IngestWorkerData } from '../ingest/ingest-thread.js';

export interface EdgeWorkerData {
  readonly config: GatewayConfig;
  readonly index: number;
  /** This node's id (the registry's, features/cluster/). */
  readonly nodeId: string;
  /** The concrete port to listen on (0 only when this is the only edge). */
  readonly port: number;
  readonly mqttUrl: string;
  readonly stats: SharedArrayBuffer;
  readonly ingestPort: MessagePort;
  /** Port to the main thread's token-check pool; undefined: checks run inline here. */
  readonly poolPort: MessagePort | undefined;
  /** Port to the main thread's store pool (SQLite). */
  readonly storePort: MessagePort;
  /** GATEWAY_INGEST_THREAD=edge: ingest's data; it runs in this thread, its ready gates this edge's, its close follows this edge's. */
  readonly ingest?: IngestWorkerData;
}

/** Time given to close frames to leave before app.close() cuts what is left. */
const CLOSE_FLUSH_MS = 200;

const { config, index, nodeId, port, mqttUrl, stats: statsBuffer, ingestPort, poolPort, storePort, ingest: ingestData } = workerData as EdgeWorkerData;
const logger = createLogger(config.logLevel, `edge-${index}`);
installCrashGuard(logger);

/** Ingest inside this thread (GATEWAY_INGEST_THREAD=edge): a message crosses no thread (docs/design/tail-latency.md). */
async function startInlineIngest(data: IngestWorkerData): Promise<{ ready: Promise<void>; close: () => Promise<void> }> {
  const { runIngest } = await import('../ingest/ingest-thread.js');
  let close: (() => Promise<void>) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    runIngest(data, {
      ownThread: false,
      report: (message) => {
        if (message.t === 'ready') resolve();
        else if (message.t === 'failed') reject(new Error(message.message));
      },
      onClose: (_logger, routine) => (close = routine),
    });
  });
  ready.catch(() => undefined); // observed when this edge reports
  return { ready, close: async () => close?.() };
}
const inlineIngest = ingestData === undefined ? undefined : await startInlineIngest(ingestData);
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
    throw new Error(
      `edge ${index}: uWS could not load GATEWAY_TLS_CERT ${tls.certFile} / GATEWAY_TLS_KEY ${tls.keyFile}${tls.caFile === undefined ? '' : ` / GATEWAY_TLS_CA ${tls.caFile}`} (${(err as Error).message})`,
    );
  }
}
/**
 * A request or upgrade the route guards refuse before any route sees it: counted, and answered in
 * the format of the route family it was for (the Azure data plane has its own error body).
 */
function refuseBeforeRoute(
  res: uWS.HttpResponse,
  req: uWS.HttpRequest,
  upgrade: boolean,
  metric: 'encoding_refusals_total' | 'origin_refusals_total',
  code: 'GW_ERR_ENCODING_INVALID' | 'GW_ERR_ORIGIN_FORBIDDEN',
  message: string,
): void {
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
const app = guardBrowsers(
  guardRequestEncoding(createApp(), (res, req, message, upgrade) => {
    refuseBeforeRoute(res, req, upgrade, 'encoding_refusals_total', 'GW_ERR_ENCODING_INVALID', message);
  }),
  {
    policy: new OriginPolicy(config.browsers.allowedOrigins, config.share.publicUrl === undefined ? [] : [new URL(config.share.publicUrl).origin]),
    credentials: config.browsers.corsCredentials,
    ownOrigin: requestOrigin,
    refuse: (res, req, origin, upgrade) => {
      const message = `Origin ${JSON.stringify(origin.slice(0, 200))} may not use this gateway (GATEWAY_ALLOWED_ORIGINS)`;
      refuseBeforeRoute(res, req, upgrade, 'origin_refusals_total', 'GW_ERR_ORIGIN_FORBIDDEN', message);
    },
  },
);
const store = new PortClient<StoreTask, StoreReply>(storePort);
let boundPort = port; // the port it listens on, once it does (PORT=0 picks one)
let closing = false;
const context: EdgeContext = {
  config,
  index,
  nodeId,
  mqttUrl,
  app,
  stats,
  shared,
  logger,
  checks,
  tokenPool: poolPort !== undefined,
  revocations,
  acl,
  ipBuckets,
  clients,
  requestOrigin,
  expiry: new SessionExpiry(sessionEndings(stats)),
  operatorGuard: operatorGuard(config.operator.token, () => stats.inc('auth_failures_total')),
  store,
  ingestPort,
  toIngest,
  publish: (topic, payload) => toIngest({ t: 'publish', topic, payload, qos: 1 }),
  nudgeRelay: (events) => toIngest(events === undefined ? { t: 'outbox' } : { t: 'outbox', events }),
  publicBase: (res, req) => {
    if (config.share.publicUrl !== undefined) return config.share.publicUrl;
    const { scheme, host } = clients.origin(res, req);
    return /^[A-Za-z0-9.:[\]-]{1,255}$/.test(host) ? `${scheme}://${host}` : `${scheme}://localhost:${boundPort}`;
  },
  isClosing: () => closing,
};

/*
 * The features, in the order their routes are registered (a feature registers its own in its own
 * order). uWS tries a static path segment before a `:param` and a `:param` before `*`, and between
 * two patterns of the same kind it keeps registration order. Hence:
 *   - channels before users and trips: the channel routes (/ws/:channel, the entity routes'
 *     /api/v1/<collection>/:id) come before the static /ws/connect, /ws/stats, /ws/negotiate and
 *     trips' /api/v1/equipment/:code, as they always have;
 *   - operations last: it ends with the catch-all `any /*` (404), after every other route.
 * Azure's connections are made before the list: channels hand them the live events of channels
 * bound to an Azure hub (the trips channel).
 */
const azure = azureEdge(context);
const edge = startEdge(context, [
  telemetry,
  shareLocation,
  channelsEdge({ toAzure: (event) => azure.sessions.deliverChannelEvent(event) }),
  users,
  azure,
  trips,
  cluster,
  pages,
  operations,
]);

const { handlers } = edge;
ingestPort.on('message', (message: IngestToEdge) => {
  if (message.t === 'test-hook') {
    if (config.health.testHooks.includes('bus') && message.edge === index) testHook(message.hook);
  } else {
    (handlers[message.t] as (message: FeatureToEdge) => void)(message);
  }
});

function testHook(hook: 'wedge-edge' | 'crash-store-pool' | 'break-store-pool'): void {
  logger.warn({ hook }, 'test hook');
  switch (hook) {
    case 'wedge-edge':
      return spinForever();
    case 'crash-store-pool':
    case 'break-store-pool':
      break;
    default:
      unreachable(hook);
  }
  store.call({ op: 'test-crash', replacementsFail: hook === 'break-store-pool' }).then(
    (reply) => logger.warn({ reply }, 'test hook: the store pool answered'),
    (err: unknown) => logger.error({ err }, 'test hook failed'),
  );
}

/**
 * Several edge threads share the port through SO_REUSEPORT. A single one listens exclusively: with
 * SO_REUSEPORT a second gateway process started by mistake on the same port (or two bound to port 0)
 * would silently split the connections between them.
 */
const listenOptions = config.edge.threads === 1 ? uWS.LIBUS_LISTEN_EXCLUSIVE_PORT : 0;
// eslint-disable-next-line @typescript-eslint/unbound-method -- called as listen.call(app, …) below: the typings lack the options overload
const listen = app.listen as unknown as (host: string, port: number, options: number, cb: (token: uWS.us_listen_socket | false) => void) => void;
/** Closes every socket, timer and port of this thread, so it ends by itself (worker-runtime.ts). */
async function closeEdge(listenSocket: uWS.us_listen_socket | null): Promise<void> {
  if (listenSocket !== null) uWS.us_listen_socket_close(listenSocket);
  clearInterval(heartbeat);
  closing = true;
  edge.close(CLOSE.GOING_AWAY.reason);
  context.expiry.stop();
  if (listenSocket !== null) await new Promise((resolve) => setTimeout(resolve, CLOSE_FLUSH_MS));
  app.close();
  ingestPort.close();
  store.close();
  await checks.close();
}

listen.call(app, config.edge.host, port, listenOptions, (token) => {
  if (!token) {
    reportToMain({ t: 'failed', message: `edge ${index} could not listen on ${config.edge.host}:${port}` });
    onCloseRequest(logger, async () => {
      await closeEdge(null);
      await inlineIngest?.close();
    }); // main closes every thread, then exits
    return;
  }
  const listening = uWS.us_socket_local_port(token);
  boundPort = listening;
  onCloseRequest(logger, async () => {
    await closeEdge(token);
    await inlineIngest?.close();
  });
  if (inlineIngest === undefined) reportToMain({ t: 'ready', port: listening });
  else
    inlineIngest.ready.then(
      () => reportToMain({ t: 'ready', port: listening }),
      (err: Error) => reportToMain({ t: 'failed', message: err.message }),
    );
});
