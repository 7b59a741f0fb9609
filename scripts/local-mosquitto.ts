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

interface SecureMosquittoFiles {
  readonly passwordFile: string;
  readonly aclFile: string;
  /** A TLS listener on loopback, with files made by the caller. */
  readonly tls?: { readonly port: number; readonly cafile: string; readonly certfile: string; readonly keyfile: string; readonly requireCertificate: boolean };
}

/**
 * mosquitto/secure.conf for a local run: its plain listener moved to `port` on loopback, the
 * password file and ACL at the given paths, and optionally a TLS listener.
 */
export function secureMosquittoConf(repoRoot: string, port: number, files: SecureMosquittoFiles): string {
  const base = readFileSync(join(repoRoot, 'mosquitto', 'secure.conf'), 'utf8');
  for (const line of [/^listener 1883$/m, /^password_file .*$/m, /^acl_file .*$/m]) {
    if (!line.test(base)) throw new Error(`mosquitto/secure.conf has no ${line.source} line to adapt`);
  }
  let conf = base
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^password_file .*$/m, `password_file ${files.passwordFile}`)
    .replace(/^acl_file .*$/m, `acl_file ${files.aclFile}`);
  const tls = files.tls;
  if (tls) {
    conf += `\nlistener ${tls.port} 127.0.0.1\ncafile ${tls.cafile}\ncertfile ${tls.certfile}\nkeyfile ${tls.keyfile}\nrequire_certificate ${tls.requireCertificate}\n`;
  }
  return conf;
}
