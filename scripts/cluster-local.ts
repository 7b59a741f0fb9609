/**
 * `npm run cluster:local`: the topology of deploy/compose/compose.yaml as plain processes on this
 * machine, read from that folder's files, so the compose kit is run and not only parsed (no container
 * engine runs here): PostgreSQL (scripts/local-postgres.ts) with the role and database of postgres.env,
 * the two Mosquittos from their mosquitto-*.conf (logins from a password file made by mosquitto_passwd,
 * the compose folder's acl, the bridge), the gateway services (node dist/src/main.js) with the env
 * files and environment of compose.yaml, and nginx (Debian's nginx-light) from nginx.conf in the
 * foreground. What a container would resolve by name (`mosquitto-a:1883`, `postgres:5432`,
 * `gateway-1:8080`) becomes 127.0.0.1 and the port the process got; every CHANGE_ME becomes a key or
 * password made for this run; the gateways bind to 127.0.0.1 and trust nginx there.
 *
 *   npm run cluster:local                    balancer on http://127.0.0.1:8080
 *   npm run cluster:local -- --port 0        balancer on a free port (every other port is free anyway)
 *   npm run cluster:local -- --json          one JSON line (URL, nodes, keys) instead of the text
 *
 * Ctrl-C (SIGINT) or SIGTERM stops everything: nginx, the gateways (their graceful shutdown), the
 * brokers, PostgreSQL, and removes the temporary directory. `startLocalCluster` does the same for a
 * test (test/cluster/kit.test.ts runs the command itself).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { generateKeys } from 'paseto-ts/v4';
import pg from 'pg';
import { freePort, waitForPort } from '../src/util/ports.js';
import { run, stopProc, waitReady, type Proc } from './local-process.js';
import { dependsOn, type ComposeService, isGateway, isMosquitto, isNginx, isPostgres, mountedFile, readCompose, serviceEnv } from './compose-file.js';
import { startPostgres, type Postgres } from './local-postgres.js';

/** The repository root (this file runs as dist/scripts/cluster-local.js or from scripts/ under a test runner). */
const REPO_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/scripts/') ? '../../' : '../', import.meta.url));
const MAIN = join(REPO_ROOT, 'dist', 'src', 'main.js');
const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';

export interface LocalClusterOptions {
  /** The balancer's port; 0 picks a free one. Default 8080. */
  readonly port?: number;
  /** Edge threads per gateway (GATEWAY_THREADS). Default 1: three nodes share this machine. */
  readonly threads?: number;
  /** Extra environment for every gateway (over the compose files'). */
  readonly env?: Readonly<Record<string, string>>;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

export interface LocalNode {
  readonly name: string;
  readonly http: string;
  readonly port: number;
  readonly pid: number;
  readonly broker: string;
}

export interface LocalCluster {
  /** The balancer: http://127.0.0.1:<port>. */
  readonly url: string;
  readonly nodes: readonly LocalNode[];
  readonly brokers: readonly { readonly name: string; readonly url: string; readonly port: number; readonly pid: number }[];
  readonly databaseUrl: string;
  readonly nginxPid: number;
  /** What replaced the CHANGE_ME placeholders, by variable (throwaway, for this run only). */
  readonly secrets: Readonly<Record<string, string>>;
  /** The temporary directory: configs, password file, data directories and every process's log. */
  readonly dir: string;
  /** Stops everything (nginx, gateways, brokers, PostgreSQL) and removes `dir`. Harmless twice. */
  stop(): Promise<void>;
}

const secret = () => randomBytes(32).toString('hex');

/** A child process whose output goes to a log file; resolves `exited` with its code. */
/** Resolves once a message published on one broker reaches a subscriber on the other, both ways. */
async function waitBridged(urls: readonly [string, string], login: { username: string; password: string }, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const clients: MqttClient[] = [];
  try {
    for (const [from, to] of [urls, [urls[1], urls[0]]] as const) {
      // Under gateway/: the topics the gateway login may read and write (acl).
      const topic = `gateway/cluster-local/bridge-probe/${randomUUID()}`;
      const sub = await connectAsync(to, { ...login, reconnectPeriod: 100 });
      const pub = await connectAsync(from, { ...login, reconnectPeriod: 100 });
      clients.push(sub, pub);
      let crossed = false;
      const arrived = new Promise<void>((resolve) =>
        sub.on('message', (t) => {
          if (t === topic) {
            crossed = true;
            resolve();
          }
        }),
      );
      await sub.subscribeAsync(topic, { qos: 1 });
      while (!crossed) {
        if (Date.now() > deadline) throw new Error(`the Mosquitto bridge did not pass a message from ${from} to ${to} within ${timeoutMs} ms`);
        pub.publish(topic, 'probe', { qos: 1 });
        await Promise.race([arrived, new Promise((r) => setTimeout(r, 250))]);
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
  }
}

function must(text: string, pattern: RegExp, replacement: string | ((...m: string[]) => string), file: string): string {
  if (!pattern.test(text)) throw new Error(`${file} has no ${pattern.source} to adapt`);
  return text.replace(pattern, replacement as never);
}

export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const log = options.log ?? (() => {});
  const compose = readCompose();
  const names = Object.keys(compose.services);
  const pick = (test: (s: ComposeService) => boolean) => names.filter((n) => test(compose.services[n]));
  const [postgresName] = pick(isPostgres);
  const brokerNames = pick(isMosquitto);
  const gatewayNames = pick(isGateway);
  const [nginxName] = pick(isNginx);
  if (!postgresName || brokerNames.length === 0 || gatewayNames.length === 0 || !nginxName) {
    throw new Error('compose.yaml must have a postgres, a mosquitto, gateway and nginx services');
  }
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: npm run build first`);

  const dir = mkdtempSync(join(tmpdir(), 'gw-cluster-local-'));
  // Mosquitto and nginx started as root drop to their own users, which must read the configs.
  chmodSync(dir, 0o755);
  const procs: Proc[] = [];
  let postgres: Postgres | undefined;
  let stopped = false;
  const local = new Map<string, number>(); // compose service → the local port standing in for it
  const localize = (text: string) => text.replace(/\b([a-z][a-z0-9-]*):(\d+)\b/g, (m, host: string) => (local.has(host) ? `127.0.0.1:${local.get(host)}` : m));

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Front to back: the balancer, then the gateways (graceful: they drain), the brokers, the database.
    const order = [nginxName, ...gatewayNames, ...brokerNames];
    for (const group of order.map((n) => procs.filter((p) => (p as Proc & { service?: string }).service === n))) {
      await Promise.all(group.map((p) => stopProc(p)));
    }
    await Promise.all(procs.map((p) => stopProc(p)));
    await postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const track = (service: string, p: Proc) => {
    procs.push(Object.assign(p, { service }));
    return p;
  };

  try {
    const secrets: Record<string, string> = {};

    // PostgreSQL: the role and database of postgres.env, on a throwaway server.
    const pgEnv = serviceEnv(compose.services[postgresName]);
    postgres = await startPostgres();
    const pgPassword = secret();
    secrets.POSTGRES_PASSWORD = pgPassword;
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE "${pgEnv.POSTGRES_USER}" LOGIN PASSWORD '${pgPassword}'`);
      await admin.query(`CREATE DATABASE "${pgEnv.POSTGRES_DB}" OWNER "${pgEnv.POSTGRES_USER}"`);
    } finally {
      await admin.end();
    }
    local.set(postgresName, postgres.port);
    log(`postgres      ${postgres.url.replace(/\/[^/]*$/, `/${pgEnv.POSTGRES_DB}`)} (role ${pgEnv.POSTGRES_USER})`);

    // The gateways' env (every node the same keys): CHANGE_ME → a key or password for this run.
    const gatewayEnv = gatewayNames.map((n) => serviceEnv(compose.services[n]));
    const mqttUser = gatewayEnv[0].GATEWAY_MQTT_USERNAME ?? 'gateway';
    const made: Record<string, string> = {
      GATEWAY_JWT_SECRET: secret(),
      GATEWAY_CLUSTER_KEY: secret(),
      GATEWAY_SHARE_LOCAL_KEY: generateKeys('local'),
      GATEWAY_AZURE_ACCESS_KEY: secret(),
      GATEWAY_MQTT_PASSWORD: secret(),
      GATEWAY_OPERATOR_TOKEN: secret(),
    };
    const bridgePassword = secret();

    // The brokers: a password file for the gateway and bridge logins, each conf with its listener on a free port.
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, '');
    execFileSync('mosquitto_passwd', ['-b', passwd, mqttUser, made.GATEWAY_MQTT_PASSWORD], { stdio: 'pipe' });
    execFileSync('mosquitto_passwd', ['-b', passwd, 'bridge', bridgePassword], { stdio: 'pipe' });
    chmodSync(passwd, 0o644);
    for (const n of brokerNames) local.set(n, await freePort());
    const ordered = [...brokerNames].sort((a, b) => Number(dependsOn(compose.services[a]).includes(b)) - Number(dependsOn(compose.services[b]).includes(a)));
    const brokers: { name: string; url: string; port: number; pid: number }[] = [];
    for (const n of ordered) {
      const file = mountedFile(compose.services[n], '/mosquitto/config/mosquitto.conf');
      const acl = mountedFile(compose.services[n], '/mosquitto/config/acl');
      let conf = readFileSync(file, 'utf8');
      conf = must(conf, /^listener 1883$/m, `listener ${local.get(n)} 127.0.0.1`, file);
      conf = must(conf, /^password_file .*$/m, `password_file ${passwd}`, file);
      conf = must(conf, /^acl_file .*$/m, `acl_file ${acl}`, file);
      conf = conf.replace(/^remote_password CHANGE_ME$/m, `remote_password ${bridgePassword}`);
      conf = conf.replace(/^address (.*)$/m, (_, address: string) => `address ${localize(address)}`);
      if (conf.includes('CHANGE_ME')) throw new Error(`${file}: a CHANGE_ME this script does not know how to fill`);
      const confPath = join(dir, `${n}.conf`);
      writeFileSync(confPath, conf);
      chmodSync(confPath, 0o644);
      const p = track(n, run('mosquitto', ['-c', confPath], join(dir, `${n}.log`)));
      await waitForPort(local.get(n)!, 10_000, p.failure);
      brokers.push({ name: n, url: `mqtt://127.0.0.1:${local.get(n)}`, port: local.get(n)!, pid: p.child.pid! });
      log(`${n.padEnd(13)} mqtt://127.0.0.1:${local.get(n)} (log ${p.log})`);
    }
    const login = { username: mqttUser, password: made.GATEWAY_MQTT_PASSWORD };
    if (brokers.length === 2) await waitBridged([brokers[0].url, brokers[1].url], login);

    // The gateways, all at once (the first to take the advisory lock migrates the database).
    const nodes = await Promise.all(
      gatewayNames.map(async (n, i): Promise<LocalNode> => {
        const env: Record<string, string> = {};
        for (const [k, v] of Object.entries(gatewayEnv[i])) {
          let value = localize(v);
          if (k === 'GATEWAY_DATABASE_URL') value = value.replace('CHANGE_ME', pgPassword);
          else if (value === 'CHANGE_ME') {
            if (!(k in made)) throw new Error(`compose: ${k}=CHANGE_ME, which this script does not know how to fill`);
            value = made[k];
          }
          env[k] = value;
        }
        for (const k of Object.keys(made)) if (k in env) secrets[k] = env[k];
        const dataDir = join(dir, `${n}-data`);
        mkdirSync(dataDir);
        Object.assign(env, {
          PATH: process.env.PATH ?? '',
          PORT: '0',
          GATEWAY_HOST: '127.0.0.1',
          GATEWAY_DATA_DIR: dataDir,
          GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
          GATEWAY_THREADS: String(options.threads ?? 1),
          ...options.env,
        });
        const p = track(n, run(process.execPath, [MAIN], join(dir, `${n}.log`), env));
        // The port from the `gateway listening` line (PORT=0), read from the log file as it grows.
        const port = await new Promise<number>((resolve, reject) => {
          let pending = '';
          const timer = setTimeout(() => reject(new Error(`${n} did not listen within 30 s (log ${p.log})`)), 30_000);
          const onData = (chunk: Buffer) => {
            pending += chunk.toString('utf8');
            for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
              const line = pending.slice(0, nl);
              pending = pending.slice(nl + 1);
              try {
                const parsed = JSON.parse(line) as { msg?: string; port?: number };
                if (parsed.msg === 'gateway listening' && typeof parsed.port === 'number') {
                  clearTimeout(timer);
                  p.child.stdout!.off('data', onData);
                  resolve(parsed.port);
                }
              } catch {
                // not a JSON line
              }
            }
          };
          p.child.stdout!.on('data', onData);
          void p.exited.then(() => {
            clearTimeout(timer);
            reject(p.failure() ?? new Error(`${n} exited before it listened (log ${p.log})`));
          });
        });
        local.set(n, port);
        const http = `http://127.0.0.1:${port}`;
        await waitReady(`${http}/readyz`, 30_000, p.failure);
        log(`${n.padEnd(13)} ${http} ready, on ${env.MQTT_URL} (log ${p.log})`);
        return { name: n, http, port, pid: p.child.pid!, broker: env.MQTT_URL };
      }),
    );

    // nginx: nginx.conf with the listen port, the upstreams and the file paths replaced.
    const nginxFile = mountedFile(compose.services[nginxName], '/etc/nginx/nginx.conf');
    const port = options.port === undefined ? 8080 : options.port === 0 ? await freePort() : options.port;
    let conf = readFileSync(nginxFile, 'utf8');
    conf = must(conf, /^(\s*)listen 8080;$/m, (_, indent: string) => `${indent}listen 127.0.0.1:${port};`, nginxFile);
    conf = must(conf, /^pid .*$/m, `pid ${dir}/nginx.pid;`, nginxFile);
    conf = must(conf, /^error_log .*$/m, `error_log ${dir}/nginx-error.log warn;`, nginxFile);
    conf = must(
      conf,
      /^http \{$/m,
      `http {\n${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${dir}/nginx-${t};`).join('\n')}`,
      nginxFile,
    );
    conf = conf.replace(/^(\s*server )(\S+)/gm, (m, head: string, address: string) => (address.includes(':') ? `${head}${localize(address)}` : m));
    for (const n of gatewayNames) if (!conf.includes(`127.0.0.1:${local.get(n)} `)) throw new Error(`${nginxFile}: no upstream server for ${n}`);
    const nginxConf = join(dir, 'nginx.conf');
    writeFileSync(nginxConf, conf);
    const args = ['-p', dir, '-e', `${dir}/nginx-error.log`, '-c', nginxConf];
    if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing (apt-get install nginx-light; .ci/run does)`);
    execFileSync(NGINX, ['-t', '-q', ...args], { stdio: 'pipe' });
    // compose.yaml's command: `nginx -g 'daemon off;'`, in the foreground.
    const command = compose.services[nginxName].command ?? ['nginx', '-g', 'daemon off;'];
    const nginx = track(nginxName, run(NGINX, [...args, ...command.slice(1)], join(dir, 'nginx.log')));
    await waitForPort(port, 10_000, nginx.failure);
    const url = `http://127.0.0.1:${port}`;
    log(`${nginxName.padEnd(13)} ${url} (round robin over ${nodes.length} nodes)`);

    return {
      url,
      nodes,
      brokers,
      databaseUrl: localize(gatewayEnv[0].GATEWAY_DATABASE_URL ?? '').replace('CHANGE_ME', '***'),
      nginxPid: nginx.child.pid!,
      secrets,
      dir,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      threads: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(`Usage: npm run cluster:local -- [--port 8080] [--threads 1] [--json]

Runs deploy/compose/compose.yaml's topology as local processes: PostgreSQL, two bridged Mosquittos,
three gateway nodes and nginx in front (round robin). --port 0: a free port for the balancer.
Ctrl-C stops everything.`);
    return;
  }
  const json = values.json;
  let cluster: LocalCluster | undefined;
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    if (!json) console.log('stopping…');
    void (cluster?.stop() ?? Promise.resolve()).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  cluster = await startLocalCluster({ port: Number(values.port), threads: Number(values.threads), log: json ? undefined : (l) => console.log(l) });
  if (stopping) {
    await cluster.stop();
    return;
  }
  if (json) {
    console.log(
      JSON.stringify({
        url: cluster.url,
        nodes: cluster.nodes,
        brokers: cluster.brokers,
        databaseUrl: cluster.databaseUrl,
        nginxPid: cluster.nginxPid,
        secrets: cluster.secrets,
        dir: cluster.dir,
      }),
    );
  } else {
    console.log(`\nbalancer: ${cluster.url}   (e.g. ${cluster.url.replace('http', 'ws')}/api/v1/ws?channel=sensors)`);
    console.log(`keys for this run only: GATEWAY_JWT_SECRET=${cluster.secrets.GATEWAY_JWT_SECRET} (npm run token -- --sub me --role admin)`);
    const operator = cluster.secrets.GATEWAY_OPERATOR_TOKEN;
    console.log(
      operator === undefined
        ? `the nodes: curl ${cluster.url}/api/v1/cluster   (GATEWAY_OPERATOR_TOKEN unset: the operator routes are open)`
        : `the nodes: curl -H 'Authorization: Bearer ${operator}' ${cluster.url}/api/v1/cluster   (GATEWAY_OPERATOR_TOKEN; /metrics and the dead letters too)`,
    );
    console.log('Ctrl-C stops everything.');
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli().catch((err: unknown) => {
    console.error(`cluster-local: ${(err as Error).message}`);
    process.exit(1);
  });
}
