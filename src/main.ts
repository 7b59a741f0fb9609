/**
 * Entry point: load and validate the configuration, start the gateway, and shut it down
 * gracefully on SIGTERM/SIGINT (a second signal exits at once).
 *
 * Exit codes: 0 after a graceful shutdown; 1 when the start (or the shutdown) failed; 2 for an
 * invalid configuration; 70 when a thread died or stopped making progress (the watchdog), for the
 * supervisor to restart the process. An edge thread that is stuck cannot be stopped without
 * aborting the process (uWS: threads/worker-handle.ts), so then the process kills itself with
 * SIGKILL instead (status 137), after logging why.
 */
import { loadConfig } from './config/load-config.js';
import { GatewayError } from './errors/gateway-error.js';
import { createLogger, type Logger } from './log/logger.js';
import { startGateway, type Gateway } from './gateway.js';

/** EX_SOFTWARE (sysexits.h): the gateway cannot go on; restart it. */
const EXIT_FATAL = 70;

function killSelf(logger: Logger, why: string): void {
  logger.fatal({ signal: 'SIGKILL' }, `${why}: an edge thread is stuck, and stopping it would abort the process; killing the process`);
  process.kill(process.pid, 'SIGKILL');
}

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

  let gateway: Gateway | undefined;
  let stopping = false;
  let fatal: string | undefined;

  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'signal received');
    if (gateway) closeAndExit(gateway);
  };
  const closeAndExit = (g: Gateway) => {
    g.close().then(
      (ended) => (ended ? process.exit(0) : killSelf(logger, 'shutdown')),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // Before the start: a signal during it must not kill the process with half its threads up.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const giveUp = (g: Gateway, reason: string) => {
    // The stalled thread is not waited for long: the watchdog already gave it twice its bound.
    const deadline = Math.min(config.shutdownTimeoutMs, config.health.watchdogMs);
    g.close(deadline).then(
      (ended) => {
        if (!ended) killSelf(logger, reason);
        else process.exit(EXIT_FATAL);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown after a fatal error failed');
        process.exit(EXIT_FATAL);
      },
    );
  };
  const onFatal = (reason: string) => {
    if (stopping || fatal !== undefined) return;
    fatal = reason;
    logger.fatal({ reason, exitCode: EXIT_FATAL }, 'gateway cannot continue');
    if (gateway) giveUp(gateway, reason);
  };

  gateway = await startGateway(config, logger, onFatal);
  if (fatal !== undefined) giveUp(gateway, fatal);
  else if (stopping) closeAndExit(gateway);
}

main().catch((err: unknown) => {
  createLogger('error', 'main').fatal({ err }, 'gateway failed to start');
  process.exit(1);
});
