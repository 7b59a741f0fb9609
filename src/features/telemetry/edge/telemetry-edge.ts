/**
 * Telemetry on an edge thread: the stream routes (/api/v1/stream and the share-location stream),
 * the device topics ingest's frames are published to, the keep-alive and the slow-consumer scan.
 */
import type { EdgeFeature } from '../../../edge/edge-feature.js';
import { ConnectionRegistry } from '../../../edge/connection-registry.js';
import { readFrameBatch } from '../../../threads/frame-batch.js';
import type { TelemetryToEdge } from '../messages.js';
import { DeviceTopics } from './device-topics.js';
import { Keepalive } from './keepalive.js';
import { SlowConsumers } from './slow-consumers.js';
import { registerStreamRoute } from './stream-route.js';
import type { StreamSocket } from './stream-socket.js';

export const telemetry: EdgeFeature<TelemetryToEdge> = {
  name: 'telemetry',
  register(context) {
    const { app, config, stats, logger } = context;
    const devices = new DeviceTopics(app, context.ingestPort, stats, config.telemetry.streamBatchMs);
    const keepalive = new Keepalive(app, config.telemetry.keepaliveMs, stats);
    const connections = new ConnectionRegistry<StreamSocket>();
    const slow = new SlowConsumers(config.edge, connections, devices, stats, logger.child({ component: 'slow-consumers' }));
    const { expiry, checks, acl, ipBuckets, clients } = context;
    const streamDeps = {
      config,
      devices,
      slow,
      connections,
      keepalive,
      expiry,
      checks,
      acl,
      ipBuckets,
      clients,
      stats,
      logger: logger.child({ component: 'stream' }),
    };
    registerStreamRoute(app, 'open', streamDeps);
    registerStreamRoute(app, 'share', streamDeps);
    const onMessage = (message: TelemetryToEdge) => devices.onIngestMessage(message);
    return {
      handlers: {
        device: onMessage,
        // The hot path: one message per batch of frames, read straight into the device topics.
        frames: (message) => readFrameBatch(message.buffer, message.length, devices),
        fill: onMessage,
        'fill-all': onMessage,
      },
      close: (reason) => {
        keepalive.stop();
        devices.stop();
        connections.closeAll(reason);
        slow.stop();
      },
    };
  },
};
