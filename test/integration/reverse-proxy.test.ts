/**
 * The nginx and Caddy blocks of docs/guide/security.md, run for real (Debian's nginx-light and caddy; .ci/run
 * installs them) in front of a real gateway, with only their ports, addresses and certificate paths
 * replaced: TLS at the proxy, WebSocket upgrades through it, the links built from what it forwards,
 * and the per-IP limit keyed on the address the proxy saw (a client's own X-Forwarded-For does not
 * change it). Test clients look like distinct hosts by connecting from 127.0.0.5 and 127.0.0.6.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, watch, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { EQUIPMENT } from '../helpers/azure.js';
import { selfSignedCertificate } from '../helpers/certificate.js';
import { freeFixedPort, REPO_ROOT, startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';

const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
const CADDY = process.env.CADDY_PATH ?? '/usr/bin/caddy';

const GUIDE = 'docs/guide/security.md';

function guideBlock(lang: string): string {
  const guide = readFileSync(`${REPO_ROOT}${GUIDE}`, 'utf8');
  const block = new RegExp(`\`\`\`${lang}\n([\\s\\S]*?)\`\`\``).exec(guide);
  if (!block) throw new Error(`${GUIDE} has no \`\`\`${lang} block`);
  return block[1];
}

/** Starts nginx with `http` as its http block; resolves once it listens (it writes its pid file after binding). */
async function startNginx(dir: string, http: string): Promise<void> {
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      'worker_processes 1;',
      'daemon off;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events { worker_connections 256; }',
      'http {',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`),
      http,
      '}',
    ].join('\n'),
  );
  if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing (apt-get install nginx-light; .ci/run does)`);
  // The configuration as nginx reads it: `nginx -t` must pass.
  execFileSync(NGINX, ['-t', '-q', '-p', dir, '-e', `${dir}/error.log`, '-c', conf], { stdio: 'pipe' });
  const pidFile = join(dir, 'nginx.pid');
  const started = new Promise<void>((resolve) => {
    const watcher = watch(dir, () => {
      if (existsSync(pidFile)) {
        watcher.close();
        resolve();
      }
    });
    onTestFinished(() => watcher.close());
  });
  const child = spawn(NGINX, ['-p', dir, '-e', `${dir}/error.log`, '-c', conf], { stdio: 'ignore' });
  onTestFinished(() => {
    child.kill('SIGTERM');
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`nginx exited (${code}): ${readFileSync(`${dir}/error.log`, 'utf8').slice(-1000)}`))),
  );
  await Promise.race([started, exited]);
}

function get(url: string, ca: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(body) }));
      })
      .on('error', reject);
  });
}

/** Caddy with `site` as its Caddyfile's site block; resolves once it serves. */
async function startCaddy(dir: string, site: string): Promise<void> {
  if (!existsSync(CADDY)) throw new Error(`${CADDY} is missing (apt-get install caddy; .ci/run does)`);
  const file = join(dir, 'Caddyfile');
  writeFileSync(file, `{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system ${dir}/caddy\n}\n\n${site}`);
  const env = { PATH: process.env.PATH ?? '', HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
  execFileSync(CADDY, ['validate', '--adapter', 'caddyfile', '--config', file], { stdio: 'pipe', env });
  const child = spawn(CADDY, ['run', '--adapter', 'caddyfile', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env });
  onTestFinished(() => {
    child.kill('SIGTERM');
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      log += chunk;
      if (log.includes('serving initial configuration')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`caddy exited (${code}): ${log.slice(-1000)}`)));
  });
}

interface Setup {
  dir: string;
  cert: string;
  key: string;
  ca: string;
  gw: GatewayProcess;
  port: number;
}

async function setup(): Promise<Setup> {
  const { dir, cert, key, pem } = selfSignedCertificate('gateway-proxy-');
  const data = tempDataDir();
  writeFileSync(join(data, 'equipment.json'), JSON.stringify(EQUIPMENT));
  const gw = await startGateway({
    env: {
      GATEWAY_DATA_DIR: data,
      GATEWAY_EQUIPMENT_FILE: join(data, 'equipment.json'),
      GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
      GATEWAY_CONNECT_RATE_PER_IP: '1',
      GATEWAY_CONNECT_BURST_PER_IP: '2',
    },
  });
  return { dir, cert, key, ca: pem, gw, port: await freeFixedPort() };
}

/** What both proxies must give: https and wss through them, links on their host, per-client limits. */
async function checkThroughProxy({ ca, gw, port }: Setup): Promise<void> {
  const base = `https://127.0.0.1:${port}`;
  const negotiated = await get(`${base}/ws/negotiate?user_id=EXC-001`, ca);
  expect(negotiated.status).toBe(200);
  expect(negotiated.json.url).toMatch(new RegExp(`^wss://127\\.0\\.0\\.1:${port}/client/hubs/`));

  const pub = await connectPublisher(gw.mqttUrl);
  const viewer = await connectStream(`wss://127.0.0.1:${port}`, '?device_ids=PRX-1', { ca, localAddress: '127.0.0.5' });
  await viewer.next((f) => f.event === 'subscribed');
  await pub.position('PRX-1', { SPEED: 77 });
  expect((await viewer.next(isMessage('PRX-1'))).data.data.SPEED).toBe(77);

  // 127.0.0.5 has used one upgrade of its burst of 2; forged X-Forwarded-For values do not give it more.
  const upgrade = (from: string, xff?: string) =>
    connectStream(`wss://127.0.0.1:${port}`, '?device_ids=PRX-1', { ca, localAddress: from, headers: xff ? { 'x-forwarded-for': xff } : {} }).then(
      (c) => {
        c.ws.close();
        return 'open' as const;
      },
      (err: { status?: number }) => err.status ?? -1,
    );
  expect(await upgrade('127.0.0.5', '203.0.113.1')).toBe('open');
  expect(await upgrade('127.0.0.5', '203.0.113.2')).toBe(429);
  // Another client behind the same proxy has its own limit.
  expect(await upgrade('127.0.0.6')).toBe('open');
}

describe('behind a reverse proxy (the blocks of docs/guide/security.md)', () => {
  it('nginx: wss and https through it, links say wss://<nginx host>, the per-IP limit keys on the address nginx saw', async () => {
    const s = await setup();
    const block = guideBlock('nginx')
      .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${s.gw.port};`)
      .replace('listen 443 ssl;', `listen 127.0.0.1:${s.port} ssl;`)
      .replace('/etc/ssl/gps.example.com/fullchain.pem', s.cert)
      .replace('/etc/ssl/gps.example.com/privkey.pem', s.key);
    expect(block).toContain(`listen 127.0.0.1:${s.port} ssl;`);
    await startNginx(s.dir, block);
    await checkThroughProxy(s);
  });

  it('Caddy: the same through its reverse_proxy', async () => {
    const s = await setup();
    const site = guideBlock('caddyfile')
      .replace('gps.example.com {', `https://127.0.0.1:${s.port} {\n\ttls ${s.cert} ${s.key}`)
      .replace('reverse_proxy 127.0.0.1:8080', `reverse_proxy 127.0.0.1:${s.gw.port}`);
    expect(site).toContain(`reverse_proxy 127.0.0.1:${s.gw.port}`);
    await startCaddy(s.dir, site);
    await checkThroughProxy(s);
  });
});
