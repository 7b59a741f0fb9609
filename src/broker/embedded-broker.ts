/**
 * The embedded MQTT broker (aedes) that `npm start` runs when MQTT_URL is unset, so devices can
 * publish to port 1883 with nothing else installed. In production point MQTT_URL at Mosquitto,
 * EMQX or HiveMQ instead; the gateway's path is the same either way.
 */
import { createServer, type Server, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from 'pino';
import type { BrokerConfig } from '../config/config.js';

export interface EmbeddedBroker {
  readonly port: number;
  /** URL the gateway's own MQTT client uses (loopback). */
  readonly url: string;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(config: BrokerConfig, logger: Logger): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer((socket) => {
    // Nagle on broker sockets costs tens of ms per message (notes/latency.md).
    socket.setNoDelay(true);
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: config.host, port }, 'embedded MQTT broker listening');
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Connected clients keep the server open; aedes.close ended them, but be explicit.
        server.unref();
      });
    },
  };
}
