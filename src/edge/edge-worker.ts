/**
 * Entry of an edge thread: one uWS App on the shared port (SO_REUSEPORT), serving WebSocket and
 * HTTP routes. It receives every telemetry frame from ingest and publishes it to its own topics.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import type { GatewayConfig } from '../config/config.js';
import { createLogger } from '../log/logger.js';
import { SharedStats } from '../metrics/shared-stats.js';
import type { IngestToEdge } from '../threads/messages.js';
import { installCrashGuard, onCloseRequest, reportToMain } from '../threads/worker-runtime.js';
import { ConnectionRegistry } from './connection-registry.js';
import { registerOperatorRoutes } from './operator-routes.js';
import { SlowConsumers } from './slow-consumers.js';
import { registerStreamRoute } from './stream-route.js';
import { TelemetryHub } from './telemetry-hub.js';
import type { StreamSocket } from './stream-socket.js';

export interface EdgeWorkerData {
  readonly config: GatewayConfig;
  readonly index: number;
  /** The concrete port to listen on (0 only when this is the only edge). */
  readonly port: number;
  readonly mqttUrl: string;
  readonly stats: SharedArrayBuffer;
  readonly ingestPort: MessagePort;
}

/** Time given to close frames to leave before app.close() cuts what is left. */
const CLOSE_FLUSH_MS = 200;

const { config, index, port, mqttUrl, stats: statsBuffer, ingestPort } = workerData as EdgeWorkerData;
const logger = createLogger(config.logLevel, `edge-${index}`);
installCrashGuard(logger);
const shared = SharedStats.attach(statsBuffer);
const stats = shared.edgeWriter(index);

(uWS as unknown as { _cfg(flag: string): void })._cfg('silent'); // no "uWebSockets: 20" header on responses
const app = uWS.App();
const hub = new TelemetryHub(app, ingestPort, stats);
const connections = new ConnectionRegistry<StreamSocket>(app, config.telemetry.keepaliveMs, stats);
const slow = new SlowConsumers(config.edge, connections, hub, stats, logger.child({ component: 'slow-consumers' }));
registerStreamRoute(app, { config, hub, slow, connections, stats, logger: logger.child({ component: 'stream' }) });
registerOperatorRoutes(app, shared, mqttUrl, logger);

ingestPort.on('message', (message: IngestToEdge) => hub.onIngestMessage(message));

app.listen(config.edge.host, port, (token) => {
  if (!token) {
    reportToMain({ t: 'failed', message: `edge ${index} could not listen on ${config.edge.host}:${port}` });
    return;
  }
  const listenSocket = token;
  reportToMain({ t: 'ready', port: uWS.us_socket_local_port(listenSocket) });

  onCloseRequest(logger, async () => {
    uWS.us_listen_socket_close(listenSocket);
    connections.closeAll('server shutting down');
    slow.stop();
    await new Promise((resolve) => setTimeout(resolve, CLOSE_FLUSH_MS));
    app.close();
    ingestPort.close();
  });
});
