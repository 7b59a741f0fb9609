/**
 * Entry point: load and validate the configuration, start the gateway, and shut it down
 * gracefully on SIGTERM/SIGINT (a second signal exits at once).
 */
import { loadConfig } from './config/load-config.js';
import { GatewayError } from './errors/gateway-error.js';
import { createLogger } from './log/logger.js';
import { startGateway } from './gateway.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof GatewayError) {
      createLogger('error', 'main').fatal({ code: err.code }, `Invalid configuration: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel, 'main');
  if (config.mqtt.url === undefined) logger.info('MQTT_URL is not set: starting the embedded MQTT broker');

  let stopping = false;
  const gateway = await startGateway(config, logger, (reason) => {
    if (stopping) return;
    logger.fatal({ reason }, 'gateway cannot continue');
    process.exit(1);
  });

  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'signal received');
    gateway.close().then(() => process.exit(0), (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  createLogger('error', 'main').fatal({ err }, 'gateway failed to start');
  process.exit(1);
});
