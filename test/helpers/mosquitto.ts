/**
 * A real Mosquitto (Debian's package, installed by .ci/run) on a free port, configured from
 * mosquitto/mosquitto.conf with only the listener port changed, or from mosquitto/secure.conf and
 * mosquitto/acl with a password file made by `mosquitto_passwd -b` (and, if asked, a TLS listener
 * with a CA and certificates made by `openssl`). It can be stopped and started again on the same
 * port to test broker restarts. With `bridge`, it also bridges every topic to another broker.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { REPO_ROOT } from './gateway-process.js';
import { freePort, waitForPort } from '../../src/util/ports.js';
import { localMosquittoConf, secureMosquittoConf } from '../../scripts/local-mosquitto.js';

export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  /** With `tls`: the mqtts:// URL and the PEM files made for it. */
  readonly tls?: TlsFiles & { readonly url: string };
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface TlsFiles {
  readonly ca: string;
  /** A client certificate and key signed by `ca` (CN gateway). */
  readonly clientCert: string;
  readonly clientKey: string;
}

export interface MosquittoOptions {
  /** Use mosquitto/secure.conf and mosquitto/acl, with these logins (username → password). */
  readonly users?: Readonly<Record<string, string>>;
  /** Add a TLS listener (secure config only); `requireCertificate` asks clients for a certificate. */
  readonly tls?: { readonly requireCertificate: boolean };
  /** A bridge to another broker (plain config only): see `bridgeConf`. */
  readonly bridge?: BridgeOptions;
}

export interface BridgeOptions {
  /** host:port of the other broker (or of a test's TCP relay in front of it). */
  readonly address: string;
  /** Mosquitto's `cleansession` for the bridge; its default, false, keeps the sessions (QoS 1 queued across a cut). */
  readonly cleanSession?: boolean;
}

/**
 * The bridge section a user would write to join two brokers: every topic both ways at QoS 1
 * (`topic # both 1`, so the gateways' QoS 1 publishes stay QoS 1 across), the connection's
 * `cleansession` as given (Mosquitto's default false unless told), and a 1 s reconnect instead of the
 * default 5-30 s backoff so a test's restored link comes back quickly. Loops are kept out by
 * Mosquitto's `try_private` (on by default): the other end knows the bridge and does not echo.
 */
export function bridgeConf(bridge: BridgeOptions): string {
  return [
    '',
    '# test/helpers/mosquitto.ts: bridge',
    'connection gateway-test-bridge',
    `address ${bridge.address}`,
    'topic # both 1',
    `cleansession ${bridge.cleanSession ?? false}`,
    'restart_timeout 1',
    '',
  ].join('\n');
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate, by openssl. */
export function makeTlsFiles(dir: string): TlsFiles & { readonly serverCert: string; readonly serverKey: string } {
  const f = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=gateway-test-ca']);
  for (const [name, cn, ext] of [
    ['server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ['client', 'gateway', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    run('openssl', ['req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`]);
    run('openssl', [
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      '1',
      '-extfile',
      f(`${name}.ext`),
    ]);
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gw-mosquitto-'));
  const confPath = join(dir, 'mosquitto.conf');
  let tls: Mosquitto['tls'];
  if (options.users) {
    const passwordFile = join(dir, 'passwd');
    writeFileSync(passwordFile, '');
    for (const [user, password] of Object.entries(options.users)) run('mosquitto_passwd', ['-b', passwordFile, user, password]);
    let tlsConf;
    if (options.tls) {
      const files = makeTlsFiles(dir);
      const tlsPort = await freePort();
      tlsConf = { port: tlsPort, cafile: files.ca, certfile: files.serverCert, keyfile: files.serverKey, requireCertificate: options.tls.requireCertificate };
      tls = { ...files, url: `mqtts://127.0.0.1:${tlsPort}` };
    }
    // Mosquitto started as root drops to the `mosquitto` user, which must read these (test-only secrets).
    chmodSync(dir, 0o755);
    for (const name of readdirSync(dir)) chmodSync(join(dir, name), 0o644);
    writeFileSync(confPath, secureMosquittoConf(REPO_ROOT, port, { passwordFile, aclFile: join(REPO_ROOT, 'mosquitto', 'acl'), tls: tlsConf }));
  } else {
    writeFileSync(confPath, localMosquittoConf(REPO_ROOT, port) + (options.bridge ? bridgeConf(options.bridge) : ''));
  }
  let child: ChildProcess | undefined;

  // Mosquitto block-buffers its log when stdout is a pipe, so readiness is "the port accepts".
  const start = async () => {
    const proc = spawn('mosquitto', ['-c', confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let failure: Error | undefined;
    let stderr = '';
    const keep = (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    };
    proc.stdout!.setEncoding('utf8').on('data', keep);
    proc.stderr!.setEncoding('utf8').on('data', keep);
    proc.once('error', (err) => {
      failure = new Error(`cannot run mosquitto (is it installed? .ci/run installs it): ${err.message}`);
    });
    proc.once('exit', (code) => {
      failure ??= new Error(`mosquitto exited with ${code}: ${stderr.slice(-1000)}`);
    });
    await waitForPort(port, 10_000, () => failure);
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  };
  await start();
  onTestFinished(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { url: `mqtt://127.0.0.1:${port}`, port, tls, stop, start };
}
