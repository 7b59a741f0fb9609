/**
 * Trusted proxies and native TLS against the real gateway: X-Forwarded-For / Forwarded read only
 * from a peer in GATEWAY_TRUSTED_PROXIES (seen through the per-IP upgrade limit, which keys on the
 * client address, and through the links the gateway builds), and https/wss with a self-signed
 * certificate made at test time, from `ws`, Node's https, the client SDK and Chromium.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import WebSocket from 'ws';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { StreamClient as SdkStreamClient } from '../../src/client/index.js';
import { authEnv } from '../helpers/auth-env.js';
import { selfSignedCertificate } from '../helpers/certificate.js';
import { launchChromium } from '../helpers/browser.js';
import { startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';
import { EQUIPMENT } from '../helpers/azure.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';
import { keyPairs, mintJwt, type KeyPairs } from '../helpers/tokens.js';

let keys: KeyPairs;
beforeAll(async () => {
  keys = await keyPairs();
});

/** JWT keys (share links) and equipment (/ws/negotiate). */
function env(extra: Record<string, string>): Record<string, string> {
  const dir = tempDataDir();
  writeFileSync(join(dir, 'equipment.json'), JSON.stringify(EQUIPMENT));
  return authEnv(keys, { GATEWAY_DATA_DIR: dir, GATEWAY_EQUIPMENT_FILE: join(dir, 'equipment.json'), ...extra });
}

interface Answer {
  status: number;
  json: any;
}

/** A request with exactly these headers (fetch cannot set Host); `ca` for https. */
function request(url: string, headers: Record<string, string>, options: { method?: string; body?: string; ca?: string } = {}): Promise<Answer> {
  const target = new URL(url);
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(target, { method: options.method ?? 'GET', headers, ca: options.ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, json: body === '' ? null : JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const negotiate = (gw: GatewayProcess, headers: Record<string, string> = {}, ca?: string) =>
  request(`${gw.http}/ws/negotiate?user_id=EXC-001`, { host: `127.0.0.1:${gw.port}`, ...headers }, { ca });

async function shareLink(gw: GatewayProcess, headers: Record<string, string>): Promise<Answer> {
  const jwt = await mintJwt('alice', { roles: ['admin'] }, { keys });
  return request(
    `${gw.http}/api/v1/public/share-location/init`,
    {
      host: `127.0.0.1:${gw.port}`,
      'content-type': 'application/json',
      authorization: `Bearer ${jwt}`,
      ...headers,
    },
    { method: 'POST', body: JSON.stringify({ device_id: 'SIM-1' }) },
  );
}

/** Upgrades to /api/v1/stream with these headers: 'open' or the refusal's status. */
async function upgrade(gw: GatewayProcess, headers: Record<string, string>): Promise<'open' | number> {
  return connectStream(gw.ws, '?device_ids=P1', { headers }).then(
    (c) => {
      c.ws.close();
      return 'open' as const;
    },
    (err: { status?: number }) => err.status ?? -1,
  );
}

const LOW_LIMIT = { GATEWAY_CONNECT_RATE_PER_IP: '1', GATEWAY_CONNECT_BURST_PER_IP: '2' };

describe('GATEWAY_TRUSTED_PROXIES', () => {
  it('from a trusted proxy: each forwarded client has its own per-IP limit, and the links use the forwarded scheme and host', async () => {
    const gw = await startGateway({ env: env({ ...LOW_LIMIT, GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1, ::1' }) });
    expect(gw.logs.find((l) => l.msg === 'gateway listening')).toMatchObject({ serving: 'http/ws', trustedProxies: ['10.0.0.0/8', '127.0.0.1', '::1'] });
    // Six clients behind the one proxy address: none is throttled by the others (burst 2 each).
    for (let i = 1; i <= 6; i++) expect(await upgrade(gw, { 'x-forwarded-for': `203.0.113.${i}` })).toBe('open');
    // One client is limited on its own: the 3rd upgrade within the second is refused, even with a
    // forged left-hand entry or an inner proxy (10.x) appended after it.
    expect(await upgrade(gw, { 'x-forwarded-for': '198.51.100.7' })).toBe('open');
    expect(await upgrade(gw, { 'x-forwarded-for': '6.6.6.6, 198.51.100.7' })).toBe('open');
    expect(await upgrade(gw, { 'x-forwarded-for': '7.7.7.7, 198.51.100.7, 10.1.2.3' })).toBe(429);
    // Forwarded (RFC 7239) when there is no X-Forwarded-For, IPv6 included.
    expect(await upgrade(gw, { forwarded: 'for="[2001:db8::9]:5000";proto=https' })).toBe('open');
    expect(await upgrade(gw, { forwarded: 'for="[2001:db8::9]"' })).toBe('open');
    expect(await upgrade(gw, { forwarded: 'for=5.5.5.5, for="[2001:db8::9]"' })).toBe(429);
    expect(await upgrade(gw, { forwarded: 'for=192.0.2.77' })).toBe('open');

    // Links: the scheme and host the client used at the proxy.
    const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gps.example.test' };
    expect((await negotiate(gw, forwarded)).json.url).toMatch(/^wss:\/\/gps\.example\.test\/client\/hubs\/[^/?]+\?access_token=/);
    expect((await negotiate(gw, { forwarded: 'for=192.0.2.1;proto=https;host="fleet.example.test:8443"' })).json.url).toMatch(
      /^wss:\/\/fleet\.example\.test:8443\/client\/hubs\//,
    );
    expect((await negotiate(gw)).json.url).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:${gw.port}/client/hubs/`));
    const share = await shareLink(gw, forwarded);
    expect(share.status).toBe(200);
    expect(share.json.viewer_url).toMatch(/^https:\/\/gps\.example\.test\/share-location\?token=/);
    expect(share.json.stream_url).toMatch(/^wss:\/\/gps\.example\.test\/api\/v1\/public\/share-location\/stream\?token=/);
    // A host that is not a host name is not put in a link.
    expect((await negotiate(gw, { 'x-forwarded-host': 'evil.test/phish?' })).json.url).toMatch(new RegExp(`^ws://localhost:${gw.port}/`));
  });

  it('regression: a forged X-Forwarded-For from a peer that is not a trusted proxy is ignored (every upgrade counts against the peer address)', async () => {
    const gw = await startGateway({ env: env({ ...LOW_LIMIT, GATEWAY_TRUSTED_PROXIES: '10.9.9.9' }) });
    expect(await upgrade(gw, { 'x-forwarded-for': '203.0.113.1' })).toBe('open');
    expect(await upgrade(gw, { 'x-forwarded-for': '203.0.113.2' })).toBe('open');
    expect(await upgrade(gw, { 'x-forwarded-for': '203.0.113.3' })).toBe(429);
    expect(await upgrade(gw, { forwarded: 'for=203.0.113.4' })).toBe(429);
    // And its X-Forwarded-Proto/Host do not make links.
    const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example.test', forwarded: 'proto=https;host=evil.example.test' };
    expect((await negotiate(gw, forwarded)).json.url).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:${gw.port}/client/hubs/`));
    const share = await shareLink(gw, forwarded);
    expect(share.json.viewer_url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${gw.port}/share-location\\?token=`));
  });

  it('regression: with no GATEWAY_TRUSTED_PROXIES, forwarding headers are ignored', async () => {
    const gw = await startGateway({ env: env(LOW_LIMIT) });
    expect(await upgrade(gw, { 'x-forwarded-for': '203.0.113.1' })).toBe('open');
    expect(await upgrade(gw, { 'x-forwarded-for': '203.0.113.2' })).toBe('open');
    expect(await upgrade(gw, { 'x-forwarded-for': '203.0.113.3' })).toBe(429);
    expect((await negotiate(gw, { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example.test' })).json.url).toMatch(/^ws:\/\/127\.0\.0\.1:/);
  });
});

/** A self-signed certificate for localhost and 127.0.0.1, made now in a temp dir. */
const testCertificate = () => selfSignedCertificate();

describe('native TLS (GATEWAY_TLS_CERT, GATEWAY_TLS_KEY)', () => {
  it('serves https and wss: Node https and ws with the CA, the client SDK, links with https/wss; plain http is not served', async () => {
    const tls = testCertificate();
    const gw = await startGateway({ env: env({ GATEWAY_TLS_CERT: tls.cert, GATEWAY_TLS_KEY: tls.key }) });
    expect(gw.logs.find((l) => l.msg === 'gateway listening')).toMatchObject({ serving: 'https/wss' });
    expect(gw.http).toBe(`https://127.0.0.1:${gw.port}`);

    const stats = await request(`${gw.http}/api/v1/stream/stats`, {}, { ca: tls.pem });
    expect(stats.status).toBe(200);
    expect(stats.json).toHaveProperty('total_messages_processed');
    // Without the CA the certificate is refused, as it should be.
    await expect(request(`${gw.http}/api/v1/stream/stats`, {})).rejects.toThrow(/self[- ]signed/i);
    // Plain http to the TLS port gets no HTTP answer.
    await expect(request(`http://127.0.0.1:${gw.port}/api/v1/stream/stats`, {})).rejects.toThrow();
    // Links built by the gateway say https/wss.
    expect((await negotiate(gw, {}, tls.pem)).json.url).toMatch(new RegExp(`^wss://127\\.0\\.0\\.1:${gw.port}/client/hubs/`));

    const pub = await connectPublisher(gw.mqttUrl);
    const raw = await connectStream(gw.ws, '?device_ids=TLS-1', { ca: tls.pem });
    await raw.next((f) => f.event === 'subscribed');
    await pub.position('TLS-1', { SPEED: 41 });
    expect((await raw.next(isMessage('TLS-1'))).data.data.SPEED).toBe(41);

    // The SDK takes a WebSocket constructor: one that trusts the test CA.
    const ca = tls.pem;
    class TrustingSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { ca });
      }
    }
    const positions: any[] = [];
    const sdk = new SdkStreamClient({ url: gw.http, deviceIds: ['TLS-1'], format: 'msgpack', WebSocket: TrustingSocket as never });
    onTestFinished(() => sdk.stop());
    sdk.on('position', (p) => positions.push(p));
    await sdk.start();
    await pub.position('TLS-1', { SPEED: 42 });
    await expect.poll(() => positions.some((p) => p.deviceId === 'TLS-1' && p.data.SPEED === 42), { timeout: 10_000 }).toBe(true);
  });

  it('the dashboard loads over https in Chromium and receives positions over wss', async () => {
    const tls = testCertificate();
    const gw = await startGateway({ env: { GATEWAY_TLS_CERT: tls.cert, GATEWAY_TLS_KEY: tls.key } });
    const browser = await launchChromium();
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(`${gw.http}/`);
    const pub = await connectPublisher(gw.mqttUrl);
    await expect.poll(() => page.locator('#state').innerText(), { timeout: 10_000 }).toBe('stream: open');
    await pub.position('TLS-WEB', { LAT: -33.4, LON: -70.6, SPEED: 7 });
    await expect.poll(() => page.locator('tr[data-device="TLS-WEB"]').count(), { timeout: 10_000 }).toBe(1);
    expect(sockets.length).toBeGreaterThan(0);
    expect(sockets.every((u) => u.startsWith(`wss://127.0.0.1:${gw.port}/`))).toBe(true);
  });

  it('serves with an encrypted key and GATEWAY_TLS_PASSPHRASE', async () => {
    const tls = testCertificate();
    const encrypted = `${tls.key}.enc`;
    execFileSync('openssl', ['pkey', '-in', tls.key, '-aes256', '-passout', 'pass:open sesame', '-out', encrypted], { stdio: 'ignore' });
    const gw = await startGateway({
      env: { GATEWAY_TLS_CERT: tls.cert, GATEWAY_TLS_KEY: encrypted, GATEWAY_TLS_PASSPHRASE: 'open sesame' },
      waitForMqtt: false,
    });
    expect((await request(`${gw.http}/api/v1/stream/stats`, {}, { ca: tls.pem })).status).toBe(200);
  });

  it('regression: a bad GATEWAY_TLS_KEY path stops the start with a message naming the variable', async () => {
    const tls = testCertificate();
    await expect(startGateway({ env: { GATEWAY_TLS_CERT: tls.cert, GATEWAY_TLS_KEY: '/nonexistent/key.pem' } })).rejects.toThrow(
      /GATEWAY_TLS_KEY names a file that cannot be read \(ENOENT\)/,
    );
  });
});
