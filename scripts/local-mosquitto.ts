/**
 * A Mosquitto config for a local run (tests, benchmarks): mosquitto/mosquitto.conf with its
 * listener moved to `port` on loopback, so every local broker has the same settings as the
 * container's (Nagle off, no persistence).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function localMosquittoConf(repoRoot: string, port: number, options: { logConnections?: boolean } = {}): string {
  const base = readFileSync(join(repoRoot, 'mosquitto', 'mosquitto.conf'), 'utf8');
  if (!/^listener 1883.*$/m.test(base)) throw new Error('mosquitto/mosquitto.conf has no "listener 1883" line to adapt');
  let conf = base.replace(/^listener 1883.*$/m, `listener ${port} 127.0.0.1`);
  // Thousands of benchmark connects would flood the log.
  if (options.logConnections === false) conf = conf.replace(/^connection_messages true$/m, 'connection_messages false');
  return conf;
}
