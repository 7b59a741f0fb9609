/**
 * A browser app on another origin (issue 14), in Chromium: a page served by a second local HTTP
 * server (another 127.0.0.1 port) calls the gateway's REST API (GET, and a POST with Authorization
 * and a JSON body, so the browser sends a preflight), imports the client from /assets/client/ and
 * opens a WebSocket. All of it works from an origin in GATEWAY_ALLOWED_ORIGINS, and none of it
 * from one that is not (before, the preflight answered 404 and the import had no CORS headers,
 * while the WebSocket was served to any page).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { openPage } from '../helpers/browser.js';
import { adminToken, channelEnv, rest } from '../helpers/channels.js';
import { startGateway } from '../helpers/gateway-process.js';

/**
 * What the app on the other origin does, in its own module script: the REST calls, the imports and
 * a WebSocket, each reported as its outcome (a status, a type, or the error's name).
 */
const APP_SCRIPT = `
const settle = async (work) => { try { return await work(); } catch (err) { return 'failed: ' + err.name; } };
window.tryEverything = async (gateway, token) => {
  const get = await settle(async () => String((await fetch(gateway + '/api/v1/ws/stats')).status));
  const post = await settle(async () => {
    const res = await fetch(gateway + '/api/v1/test-sensors/', {
      method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: JSON.stringify({ tipo: 'cors' }),
    });
    return res.status + ' ' + typeof (await res.json()).id;
  });
  const importClient = await settle(async () => typeof (await import(gateway + '/assets/client/index.js')).StreamClient);
  // The served client loads msgpackr from the gateway too (its bare import is rewritten).
  const msgpack = await settle(async () => typeof (await (await import(gateway + '/assets/client/codec.js')).decoderFor('msgpack')).decode);
  const websocket = await new Promise((resolve) => {
    const ws = new WebSocket(gateway.replace(/^http/, 'ws') + '/api/v1/stream?device_ids=A');
    ws.onopen = () => { ws.close(); resolve('open'); };
    ws.onclose = (e) => resolve('closed ' + e.code);
  });
  return { get, post, importClient, msgpack, websocket };
};
`;

/** A small app on its own origin (http://127.0.0.1:<port>), closed when the test ends. */
async function otherOrigin(): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/app.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(APP_SCRIPT);
    else
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        .end('<!doctype html><meta charset="utf-8"><title>another app</title><script type="module" src="/app.js"></script>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Outcome {
  get: string;
  post: string;
  importClient: string;
  msgpack: string;
  websocket: string;
}

/** Runs the app's calls inside the page; the page reports what happened to each. */
async function tryEverything(page: Page, gateway: string, token: string): Promise<Outcome> {
  await page.waitForFunction(() => typeof (window as any).tryEverything === 'function');
  return page.evaluate(([g, t]) => (window as any).tryEverything(g, t) as Promise<Outcome>, [gateway, token] as const);
}

describe('a browser app on another origin, in Chromium', () => {
  it('regression: REST GET and POST, import() of the client and a WebSocket work from an allowed origin and are blocked from any other', async () => {
    const allowed = await otherOrigin();
    const other = await otherOrigin();
    const gw = await startGateway({ env: channelEnv({ GATEWAY_ALLOWED_ORIGINS: allowed }) });
    const token = await adminToken();

    const { page } = await openPage(`${allowed}/`);
    expect(await tryEverything(page, gw.http, token)).toEqual({
      get: '200',
      post: '201 number',
      importClient: 'function',
      msgpack: 'function',
      websocket: 'open',
    });

    const blocked = await openPage(`${other}/`);
    expect(await tryEverything(blocked.page, gw.http, token)).toEqual({
      get: 'failed: TypeError',
      post: 'failed: TypeError',
      importClient: 'failed: TypeError',
      msgpack: 'failed: TypeError',
      websocket: 'closed 1006',
    });
    // The refused POST never reached the collection: only the allowed origin's sensor is there.
    const list = await rest(gw, 'GET', '/api/v1/test-sensors/', undefined, token);
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body).match(/"tipo":"cors"/g)).toHaveLength(1);
    // Refused: the preflight of the POST and the WebSocket (the GET and the imports were answered without CORS headers).
    expect((await gw.stats()).origin_refusals_total).toBe(2);
  }, 60_000);
});
