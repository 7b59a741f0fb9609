/**
 * The composition root: builds every component in start order and closes them in reverse.
 *
 *   main thread   embedded broker (when MQTT_URL is unset), shared stats, thread supervision,
 *                 the pools, the watchdog (threads/watchdog.ts)
 *   ingest thread MQTT client → decode → encode once per wanted format → batches
 *   edge threads  uWS App each, same port; topics, snapshots, backpressure, HTTP routes
 */
import { MessageChannel } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config/config.js';
import { redactUrl } from './log/logger.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded-broker.js';
import { SharedStats } from './metrics/shared-stats.js';
import { WorkerHandle } from './threads/worker-handle.js';
import { freePort } from './util/ports.js';
import { TokenCheckCore } from './auth/token-checks.js';
import { TokenService } from './pool/token-service.js';
import type { EdgeWorkerData } from './edge/edge-worker.js';
import type { IngestWorkerData } from './ingest/ingest-worker.js';
import { randomBytes } from 'node:crypto';
import { openDatabase, nodeIdentity, type NodeIdentity } from './store/database.js';
import { openPgPool, openStore, storeTarget } from './store/open-store.js';
import { createPgPool } from './store/postgres/pg-pool.js';
import { prepareSchema, waitForDatabase } from './store/postgres/start-database.js';
import { SQLITE_TASKS_IN_FLIGHT, StoreService } from './pool/store-service.js';
import { seedEquipment } from './features/trips/equipment-seed.js';
import { Watchdog } from './threads/watchdog.js';

/**
 * An edge thread's young generation (V8's new space: two semi-spaces and new large objects, a
 * third each), at most: semi-spaces of 4 MB, the size an idle edge reaches at start anyway. A
 * connection storm otherwise doubles them to 8 MB, resident from then on: 8 MB more RSS at 10,000
 * connections, 0.8 KB of the 2.4 KB each cost (docs/guide/performance.md, "Memory").
 */
const EDGE_YOUNG_GENERATION_MB = 12;

export interface Gateway {
  readonly port: number;
  readonly mqttUrl: string;
  readonly brokerPort: number | undefined;
  /**
   * Graceful shutdown: readiness 503, no new upgrades, 1001 to every socket, threads drained, within
   * `deadlineMs` (default GATEWAY_SHUTDOWN_TIMEOUT_MS). Resolves false when an edge thread did not
   * end (it cannot be stopped hard: threads/worker-handle.ts). Idempotent.
   */
  close(deadlineMs?: number): Promise<boolean>;
}

/**
 * uWS only shares a port between threads (SO_REUSEPORT) when each listens on a concrete port;
 * a port-0 listener does not accept siblings. So with several edges, pick the free port first.
 */
async function concretePort(host: string, port: number, threads: number): Promise<number> {
  if (port !== 0 || threads === 1) return port;
  return freePort(host);
}

/**
 * PostgreSQL before any thread opens it: reached within GATEWAY_DATABASE_START_WAIT_MS, then its
 * schema brought to this build's version (or checked, with GATEWAY_DATABASE_MIGRATE=off). Throws
 * GW_ERR_STORE_UNAVAILABLE or GW_ERR_CONFIG_INVALID, whose messages never hold the password.
 */
async function startDatabase(config: GatewayConfig, url: string, logger: Logger): Promise<void> {
  const { startWaitMs, migrate } = config.store;
  // Each attempt's connection is bounded too, so a server that never answers cannot outlast the wait by much.
  const connectionTimeoutMs = Math.min(5_000, Math.max(250, startWaitMs));
  const waitPool = openPgPool(
    { url, connections: 1, connectionTimeoutMs, node: 'start', applicationName: 'uws-gateway start', leaseMs: config.events.outboxLeaseMs },
    logger,
  );
  try {
    await waitForDatabase(waitPool, url, {
      waitMs: startWaitMs,
      onRetry: (attempt, error, nextInMs) => logger.warn({ attempt, error, nextInMs, databaseUrl: redactUrl(url) }, 'PostgreSQL not reachable yet; retrying'),
    });
  } finally {
    await waitPool.end();
  }
  // A migration has no statement timeout (an index on a big table takes long); its lock wait has its own bound.
  const migratePool = createPgPool(url, {
    max: 1,
    statementTimeoutMs: 0,
    applicationName: 'uws-gateway migrate',
    onIdleError: (err) => logger.warn({ error: err.message }, 'the migration connection failed while idle'),
  });
  try {
    const report = await prepareSchema(migratePool, migrate);
    logger.info({ before: report.before, after: report.after, applied: report.applied, migrate }, 'store schema ready');
  } finally {
    await migratePool.end();
  }
}

export async function startGateway(config: GatewayConfig, logger: Logger, onFatal: (reason: string) => void): Promise<Gateway> {
  const stats = SharedStats.create(config.edge.threads);
  stats.setGlobal('started_at_ms', Date.now());
  stats.setGlobal('edge_threads', config.edge.threads);
  if (config.health.ignoredTestHooks.length > 0) {
    logger.warn(
      { hooks: config.health.ignoredTestHooks, environment: config.environment },
      'GATEWAY_TEST_HOOKS is ignored: test hooks work only with ENVIRONMENT=test',
    );
  }
  if (config.health.testHooks.length > 0) logger.warn({ hooks: config.health.testHooks }, 'test hooks are on (GATEWAY_TEST_HOOKS): never in production');

  let broker: EmbeddedBroker | undefined;
  if (config.mqtt.url === undefined) {
    broker = await startEmbeddedBroker(config, stats, logger.child({ component: 'broker' }));
  }
  const mqttUrl = config.mqtt.url ?? broker!.url;

  // What has started, closed in reverse if a later step fails.
  const started: { close(): Promise<unknown> }[] = [];
  if (broker) started.push(broker);
  const unwind = async () => {
    for (const part of started.reverse()) {
      await part.close().catch((err: unknown) => logger.error({ err }, 'could not close a part of the failed start'));
    }
  };

  try {
    // The store. SQLite: the files are created (or migrated) here, so a data directory that cannot
    // hold them stops the start. PostgreSQL: reached within GATEWAY_DATABASE_START_WAIT_MS and
    // migrated here, before any thread opens it (store/postgres/start-database.ts).
    const databaseUrl = config.store.databaseUrl;
    // On PostgreSQL the node id only names this process's leases and logs (no state of this node is
    // kept under it), so it is random per start; on SQLite it is kept in gateway.sqlite, created (or
    // upgraded) here, so a data directory that cannot hold it stops the start.
    let nodeId: string;
    if (databaseUrl === undefined) {
      const storeDb = openDatabase(config.events.dataDir, 'store');
      nodeId = nodeIdentity(storeDb).nodeId;
      storeDb.close();
    } else {
      nodeId = randomBytes(6).toString('hex');
      await startDatabase(config, databaseUrl, logger.child({ component: 'store' }));
    }
    const startStore = openStore(storeTarget(config, 'start', nodeId), logger.child({ component: 'store' }));
    let identity: NodeIdentity;
    try {
      identity = { nodeId, epoch: await startStore.log.epoch() };
      if (config.trips.equipmentFile !== undefined) {
        const seeded = await seedEquipment(startStore, config.trips.equipmentFile);
        logger.info({ file: config.trips.equipmentFile, equipment: seeded }, 'equipment registered from GATEWAY_EQUIPMENT_FILE');
      }
    } finally {
      await startStore.close();
    }

    // Called for a thread that ends after it was ready; the watchdog calls onFatal itself.
    const onUnexpectedExit = (name: string, code: number) => onFatal(`${name} thread exited unexpectedly with code ${code}`);
    const channels = Array.from({ length: config.edge.threads }, () => new MessageChannel());
    const ingestStore = new MessageChannel(); // served once the store pool exists; ingest's tasks wait in the port till then
    const ingestData: IngestWorkerData = {
      config,
      identity,
      mqttUrl,
      mqttLogin: broker?.login,
      stats: stats.buffer,
      edgePorts: channels.map((c) => c.port1),
      storePort: ingestStore.port2,
    };
    // GATEWAY_INGEST_THREAD=edge: no thread of its own; the one edge runs it (its data and ports go there).
    const ingestTransfer = [...channels.map((c) => c.port1), ingestStore.port2];
    const inlineIngest = config.edge.ingestThread === 'edge';
    const ingest = inlineIngest
      ? undefined
      : new WorkerHandle('ingest', new URL('./ingest/ingest-worker.js', import.meta.url), ingestData, ingestTransfer, logger, onUnexpectedExit);
    if (ingest) started.push({ close: () => ingest.close(config.shutdownTimeoutMs) });

    // Token checks: the pool lives here, a sibling of the edges (never inside one: see pool/token-service.ts).
    const checkConfig = { jwt: config.auth.jwt, share: config.share.tokens };
    await TokenCheckCore.create(checkConfig); // an unusable key stops the start here, with its message
    const poolChannels = config.auth.tokenChecks !== 'inline' ? channels.map(() => new MessageChannel()) : undefined;
    const tokenService = poolChannels
      ? new TokenService(
          checkConfig,
          config.auth.poolThreads,
          poolChannels.map((c) => c.port1),
          logger.child({ component: 'token-pool' }),
        )
      : undefined;
    if (tokenService) started.push(tokenService);

    // The store pool (store writes and reads off the edges), one port per edge and one for ingest.
    const storeChannels = channels.map(() => new MessageChannel());
    const poolDatabase = storeTarget(config, 'store-pool', identity.nodeId).database;
    const storeService = new StoreService(
      {
        dataDir: config.events.dataDir,
        database: poolDatabase,
        logLevel: config.logLevel,
        collections: config.events.channels.collections,
        maxJsonDepth: config.limits.maxJsonDepth,
        testHooks: config.health.testHooks,
      },
      config.events.storeThreads,
      [...storeChannels.map((c) => c.port1), ingestStore.port1],
      logger.child({ component: 'store-pool' }),
      // SQLite: tasks pipelined to the thread (run one after the other: each is synchronous); PostgreSQL: one per connection of the thread.
      { queue: config.store.queue, concurrency: poolDatabase?.connections ?? SQLITE_TASKS_IN_FLIGHT, stats },
    );
    started.push(storeService);
    // A pool thread that cannot start fails the start here, logged, instead of as an unhandled 'error' event later.
    await Promise.all([tokenService?.ready(), storeService.ready()]);

    const port = await concretePort(config.edge.host, config.edge.port, config.edge.threads);
    const edges = channels.map((channel, index) => {
      const poolPort = poolChannels?.[index].port2;
      const storePort = storeChannels[index].port2;
      const data: EdgeWorkerData = {
        config,
        index,
        nodeId: identity.nodeId,
        port,
        mqttUrl: redactUrl(mqttUrl),
        stats: stats.buffer,
        ingestPort: channel.port2,
        poolPort,
        storePort,
        ...(inlineIngest && index === 0 ? { ingest: ingestData } : {}),
      };
      const transfer = [
        ...(poolPort ? [channel.port2, storePort, poolPort] : [channel.port2, storePort]),
        ...(inlineIngest && index === 0 ? ingestTransfer : []),
      ];
      return new WorkerHandle(`edge-${index}`, new URL('./edge/edge-worker.js', import.meta.url), data, transfer, logger, onUnexpectedExit, {
        unstoppable: true,
        resourceLimits: { maxYoungGenerationSizeMb: EDGE_YOUNG_GENERATION_MB },
      });
    });
    started.push({ close: () => Promise.all(edges.map((edge) => edge.close(config.shutdownTimeoutMs))) });

    await ingest?.ready();
    const ready = await Promise.all(edges.map((edge) => edge.ready()));
    const listening = ready[0].port!;

    const watchdog = new Watchdog(
      stats,
      config.health,
      { token: tokenService?.pool, store: storeService.pool },
      logger.child({ component: 'watchdog' }),
      onFatal,
    );
    watchdog.start();

    logger.info(
      {
        port: listening,
        host: config.edge.host,
        serving: config.edge.tls === undefined ? 'http/ws' : 'https/wss',
        trustedProxies: config.edge.trustedProxies,
        threads: config.edge.threads,
        mqttUrl: redactUrl(mqttUrl),
        broker: broker ? `embedded aedes on port ${broker.port}` : 'external',
        topics: config.mqtt.topics,
        jwt: config.auth.jwt ? 'configured' : 'not configured (endpoints that need a token refuse all)',
        tokenChecks: config.auth.tokenChecks,
        authRequiredOn: ['/ws/connect', ...config.auth.requiredOn.map((r) => (r === 'stream' ? '/api/v1/stream' : r))],
        environment: config.environment,
        dataDir: config.events.dataDir,
        store: databaseUrl === undefined ? 'sqlite' : 'postgres',
        ...(databaseUrl === undefined ? {} : { databaseUrl: redactUrl(databaseUrl) }),
        node: identity.nodeId,
        epoch: identity.epoch,
        channels: config.events.channels.channels.map((c) => c.name),
        azureHubs: config.azure.hubs ?? '*',
        azureOutbound: config.azure.outbound !== undefined,
        watchdogMs: config.health.watchdogMs,
        browserOrigins: ['own', ...config.browsers.allowedOrigins], // pages that may connect and get CORS (browser-guard.ts)
        corsCredentials: config.browsers.corsCredentials,
      },
      'gateway listening',
    );
    if (config.browsers.allowedOrigins.includes('*')) {
      logger.warn("GATEWAY_ALLOWED_ORIGINS has *: a page on any site may open WebSockets and call the API from its visitors' browsers");
    }
    if (config.azure.ephemeralKey) {
      logger.warn(
        'GATEWAY_AZURE_ACCESS_KEY is not set: Azure Web PubSub tokens use a random key that dies with a restart, and the REST SDK cannot be pointed at this gateway',
      );
    }
    if (config.cluster.ephemeralKey) {
      logger.warn(
        'GATEWAY_CLUSTER_KEY is not set: control messages on the bus are tagged with a random key of this start, so this node drops those of other nodes and backends; set the same key on every node and backend',
      );
    }
    if (config.operator.token === undefined) {
      logger.warn(
        'GATEWAY_OPERATOR_TOKEN is not set: the operator routes (/api/v1/cluster, /metrics, /api/v1/outbox/dead-letters) are open to anyone who reaches the port; set it, or keep them off the public network',
      );
    }
    if (config.share.ephemeralKey) {
      logger.warn('GATEWAY_SHARE_LOCAL_KEY is not set: share links use a random key and stop working when the gateway restarts');
    }

    let closing: Promise<boolean> | undefined;
    return {
      port: listening,
      mqttUrl,
      brokerPort: broker?.port,
      close(deadlineMs = config.shutdownTimeoutMs) {
        closing ??= (async () => {
          const begun = Date.now();
          const left = () => Math.max(100, deadlineMs - (Date.now() - begun));
          watchdog.stop();
          stats.setGlobal('shutting_down', 1);
          logger.info('gateway shutting down');
          const edgesEnded = await Promise.all(edges.map((edge) => edge.close(left())));
          await ingest?.close(left()); // GATEWAY_INGEST_THREAD=edge: closed by its edge, above
          await tokenService?.close();
          await storeService.close();
          await broker?.close();
          const stuck = edges.filter((_, i) => !edgesEnded[i]).map((edge) => edge.name);
          logger.info({ ms: Date.now() - begun, stuck }, 'gateway closed');
          return stuck.length === 0;
        })();
        return closing;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
