/**
 * Browser origins (issue 14): WebSocket upgrades from a page on an origin that is neither the
 * gateway's own nor in GATEWAY_ALLOWED_ORIGINS are refused with 403 GW_ERR_ORIGIN_FORBIDDEN on
 * every WebSocket route (before, any site's page could read the fleet's positions); requests
 * without Origin are not affected. CORS on HTTP: preflights answered (they answered 404), CORS
 * headers for allowed origins only, cross-origin writes from other origins refused.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { channelEnv, connectChannel } from '../helpers/channels.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { connectStream } from '../helpers/stream-client.js';

/** Every WebSocket route, with a query that gets past the origin check. */
const WS_ROUTES = [
  '/api/v1/stream?device_ids=A',
  '/api/v1/public/share-location/stream?token=x',
  '/api/v1/ws?channel=sensors',
  '/api/v1/ws/secure?channel=sensors',
  '/ws/pets',
  '/ws/connect',
  '/client/hubs/extraccion?access_token=x',
  '/client?hub=extraccion',
];

/** An upgrade's outcome: 'open' (then closed), or the refusal's status and body. */
function tryUpgrade(url: string, origin: string | undefined): Promise<{ status: number; body?: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [], origin === undefined ? {} : { origin });
    ws.once('open', () => {
      ws.terminate();
      resolve({ status: 101 });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body === '' ? undefined : JSON.parse(body) }));
    });
    ws.once('error', reject);
  });
}

const FORBIDDEN = { status: 403, body: { error: { code: 'GW_ERR_ORIGIN_FORBIDDEN', message: expect.stringContaining('may not use this gateway') } } };

async function refusals(gw: GatewayProcess, origin: string | undefined): Promise<Array<{ route: string; status: number; code?: string }>> {
  const out = [];
  for (const route of WS_ROUTES) {
    const r = await tryUpgrade(`${gw.ws}${route}`, origin);
    out.push({ route, status: r.status, code: r.body?.error?.code });
  }
  return out;
}

describe('browser origins on WebSocket upgrades', () => {
  it("regression: an upgrade from another site's page is refused with 403 GW_ERR_ORIGIN_FORBIDDEN on every WebSocket route (it was served), and counted", async () => {
    const gw = await startGateway({ env: channelEnv() });
    for (const route of WS_ROUTES) {
      expect(await tryUpgrade(`${gw.ws}${route}`, 'https://evil.example'), route).toEqual(FORBIDDEN);
    }
    const stats = await gw.stats();
    expect(stats.origin_refusals_total).toBe(WS_ROUTES.length);
    expect(stats.upgrades_rejected_total).toBe(WS_ROUTES.length);
    // Without Origin (native clients, devices) none of them is refused for its origin.
    for (const r of await refusals(gw, undefined)) expect(r.code, r.route).not.toBe('GW_ERR_ORIGIN_FORBIDDEN');
    // The gateway's own pages (Origin = http://<Host>) are allowed by default.
    for (const r of await refusals(gw, gw.http)) expect(r.code, r.route).not.toBe('GW_ERR_ORIGIN_FORBIDDEN');
    expect((await gw.stats()).origin_refusals_total).toBe(WS_ROUTES.length);
  });

  it('origins listed in GATEWAY_ALLOWED_ORIGINS, exact and *.domain patterns, may connect; others may not', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_ALLOWED_ORIGINS: 'https://app.example.com, https://*.example.org, *.example.net' }) });
    const allowed = ['https://app.example.com', 'https://a.example.org', 'https://a.b.example.org', 'http://x.example.net', 'https://x.example.net', gw.http];
    const refused = [
      'https://example.org',
      'http://a.example.org',
      'https://app.example.com:8443',
      'http://app.example.com',
      'https://evil-example.org',
      'https://a.example.org.evil.com',
      'null',
      'https://app.example.com.evil.com',
    ];
    for (const origin of allowed) {
      const client = await connectStream(gw.ws, '?device_ids=A', { headers: { origin } });
      expect((await client.next((f) => f.event === 'subscribed')).event, origin).toBe('subscribed');
      client.ws.close();
    }
    const channel = await connectChannel(gw, '/ws/pets', { headers: { origin: 'https://a.example.org' } });
    expect(channel.established).toMatchObject({ type: 'connection_established', channel: 'pets' });
    channel.ws.close();
    for (const origin of refused) expect(await tryUpgrade(`${gw.ws}/api/v1/stream?device_ids=A`, origin), origin).toEqual(FORBIDDEN);
    expect((await gw.stats()).origin_refusals_total).toBe(refused.length);
  });

  it('* lets every origin connect', async () => {
    const gw = await startGateway({ env: { GATEWAY_ALLOWED_ORIGINS: '*' } });
    expect((await tryUpgrade(`${gw.ws}/api/v1/stream?device_ids=A`, 'https://anyone.example')).status).toBe(101);
    expect(gw.logs.find((l) => l.msg === 'gateway listening')).toMatchObject({ browserOrigins: ['own', '*'], corsCredentials: false });
    await gw.waitForLog((l) => /GATEWAY_ALLOWED_ORIGINS has \*/.test(l.msg ?? ''));
  });

  it("the origin of GATEWAY_PUBLIC_URL counts as the gateway's own (pages behind a TLS proxy)", async () => {
    const gw = await startGateway({ env: { GATEWAY_PUBLIC_URL: 'https://gps.example.com/base' } });
    expect((await tryUpgrade(`${gw.ws}/api/v1/stream?device_ids=A`, 'https://gps.example.com')).status).toBe(101);
    expect(await tryUpgrade(`${gw.ws}/api/v1/stream?device_ids=A`, 'http://gps.example.com')).toEqual(FORBIDDEN);
  });

  it('an invalid GATEWAY_ALLOWED_ORIGINS entry stops the start with GW_ERR_CONFIG_INVALID', async () => {
    for (const entry of ['app.example.com', 'https://app.example.com/', 'https://*', 'ftp://x.example.com', 'https://a*.example.com']) {
      await expect(startGateway({ env: { GATEWAY_ALLOWED_ORIGINS: entry } }), entry).rejects.toThrow(/GATEWAY_ALLOWED_ORIGINS/);
    }
  });
});

describe('CORS on HTTP routes', () => {
  const preflight = (gw: GatewayProcess, path: string, origin: string, method = 'POST') =>
    fetch(`${gw.http}${path}`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization,content-type' },
    });

  it('regression: a preflight from an allowed origin is answered 204 with the allowed methods and headers (it answered 404), on REST, Azure and assets', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_ALLOWED_ORIGINS: 'https://app.example.com' }) });
    for (const path of [
      '/api/v1/sensores',
      '/api/v1/channels/sensors/events',
      '/api/v1/ws/stats',
      '/viaje',
      '/api/v1/public/share-location/init',
      '/assets/client/index.js',
      '/api/hubs/extraccion/:send',
    ]) {
      const res = await preflight(gw, path, 'https://app.example.com');
      expect(res.status, path).toBe(204);
      expect(res.headers.get('access-control-allow-origin'), path).toBe('https://app.example.com');
      expect(res.headers.get('vary'), path).toBe('Origin');
      expect(res.headers.get('access-control-allow-methods'), path).toBe('GET, HEAD, POST, PUT, PATCH, DELETE');
      expect(res.headers.get('access-control-allow-headers'), path).toMatch(/^Authorization, Content-Type/);
      expect(res.headers.get('access-control-max-age'), path).toBe('600');
      expect(res.headers.get('access-control-allow-credentials'), path).toBeNull();
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
    expect((await preflight(gw, '/api/hubs/extraccion/:send', 'https://app.example.com')).headers.get('access-control-allow-headers')).toContain(
      'x-ms-client-request-id',
    );
    // An allowed origin's requests carry the CORS headers; the same request without Origin carries none.
    const get = await fetch(`${gw.http}/api/v1/ws/stats`, { headers: { origin: 'https://app.example.com' } });
    expect(get.status).toBe(200);
    expect(get.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const plain = await fetch(`${gw.http}/api/v1/ws/stats`);
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
    expect(plain.headers.get('x-content-type-options')).toBe('nosniff');
    const notFound = await fetch(`${gw.http}/no/such`, { headers: { origin: 'https://app.example.com' } });
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
  });

  it('regression: a preflight from an origin not allowed gets 403 GW_ERR_ORIGIN_FORBIDDEN without CORS headers, and its writes are refused', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_ALLOWED_ORIGINS: 'https://app.example.com' }) });
    const res = await preflight(gw, '/api/v1/sensores', 'https://evil.example');
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(await res.json()).toEqual(FORBIDDEN.body);
    // A GET is answered, but without CORS headers (the browser keeps it from the page).
    const get = await fetch(`${gw.http}/api/v1/ws/stats`, { headers: { origin: 'https://evil.example' } });
    expect(get.status).toBe(200);
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
    // A write a page could send without a preflight (a form POST) is refused before it does anything.
    const post = await fetch(`${gw.http}/api/v1/channels/sensors/events`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(post.status).toBe(403);
    expect(await post.json()).toEqual(FORBIDDEN.body);
    // The Azure data plane answers in its own format.
    const azure = await preflight(gw, '/api/hubs/extraccion/:send', 'https://evil.example');
    expect(azure.status).toBe(403);
    expect(azure.headers.get('x-ms-error-code')).toBe('GW_ERR_ORIGIN_FORBIDDEN');
    expect((await gw.stats()).origin_refusals_total).toBe(3);
  });

  it('GATEWAY_CORS_CREDENTIALS=true adds Access-Control-Allow-Credentials for allowed origins only', async () => {
    const gw = await startGateway({ env: { GATEWAY_ALLOWED_ORIGINS: 'https://app.example.com', GATEWAY_CORS_CREDENTIALS: 'true' } });
    expect((await preflight(gw, '/api/v1/ws/stats', 'https://app.example.com', 'GET')).headers.get('access-control-allow-credentials')).toBe('true');
    const get = await fetch(`${gw.http}/api/v1/ws/stats`, { headers: { origin: 'https://app.example.com' } });
    expect(get.headers.get('access-control-allow-credentials')).toBe('true');
    const other = await fetch(`${gw.http}/api/v1/ws/stats`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-credentials')).toBeNull();
  });
});
