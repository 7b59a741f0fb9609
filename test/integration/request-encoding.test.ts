/**
 * Malformed percent-encoding and bytes that are not UTF-8 in a path or query, on every route
 * (issue 13): refused with 400 GW_ERR_ENCODING_INVALID before the upgrade or request, counted, and
 * the process keeps serving. Before, `/ws/%ZZ` aborted the process, `device_ids=%ZZ` opened as
 * device "3", `channel=sensors%` as `general`, and `DELETE /api/v1/public/share-location/%ZZ`
 * answered 500.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { adminToken, channelEnv, connectChannel } from '../helpers/channels.js';
import { startGateway } from '../helpers/gateway-process.js';
import { connectStream } from '../helpers/stream-client.js';
import { streamBystander } from '../helpers/stream-bystander.js';

const MALFORMED = ['%ZZ', 'pets%', '%C0%AF', '%E2%82'];

/** An upgrade that must be refused: its status and body (an open socket fails the test). */
function upgradeRefusal(url: string, protocols: string[] = []): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`${url} was upgraded`));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body), headers: res.headers }));
    });
    ws.once('error', (err) => reject(err));
  });
}

const ENCODING_ERROR = { error: { code: 'GW_ERR_ENCODING_INVALID', message: expect.stringMatching(/percent-encoding/) } };

/** A raw HTTP/1.1 request whose request line carries the bytes as they are (no client re-encodes them). */
function rawRequest(port: number, requestLine: Buffer, upgrade: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      const headers = upgrade
        ? 'Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
        : 'Host: x\r\nConnection: close\r\n\r\n';
      socket.write(Buffer.concat([requestLine, Buffer.from(`\r\n${headers}`)]));
    });
    let reply = '';
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n\r\n') && /content-length: (\d+)/i.test(reply)) {
        const length = Number(/content-length: (\d+)/i.exec(reply)![1]);
        if (reply.length - reply.indexOf('\r\n\r\n') - 4 >= length) socket.end();
      }
    });
    socket.on('close', () => resolve(reply));
    socket.on('error', reject);
  });
}

describe('percent-encoding and UTF-8 in paths and queries', () => {
  it('regression: upgrades to /ws/%ZZ, /ws/pets%, /ws/%C0%AF, /ws/%E2%82 are refused with 400 and do not abort the process', async () => {
    const gw = await startGateway();
    const check = await streamBystander(gw);
    for (const path of MALFORMED) {
      const refusal = await upgradeRefusal(`${gw.ws}/ws/${path}`);
      expect(refusal, path).toMatchObject({ status: 400, body: ENCODING_ERROR });
    }
    await check(1);
    // Well-formed encodings still decode: /ws/p%65ts is channel pets.
    const pets = await connectChannel(gw, '/ws/p%65ts');
    expect(pets.established).toMatchObject({ type: 'connection_established', channel: 'pets' });
    const stats = await gw.stats();
    expect(stats.encoding_refusals_total).toBe(MALFORMED.length);
    expect(stats.upgrades_rejected_total).toBe(MALFORMED.length);
  });

  it('regression: device_ids=%ZZ is refused (it opened as device "3"), and so is every malformed stream query value', async () => {
    const gw = await startGateway();
    const check = await streamBystander(gw);
    const queries = [
      '/api/v1/stream?device_ids=%ZZ',
      '/api/v1/stream?device_ids=A,B%',
      '/api/v1/stream?device_ids=%C0%AF',
      '/api/v1/stream?device_ids=%E2%82',
      '/api/v1/stream?device_ids=*&batch=%ZZ',
      '/api/v1/stream?device_ids=A&token=%E2%82',
      '/api/v1/public/share-location/stream?token=%ZZ',
      '/api/v1/public/share-location/stream?token=v4.local.x&device_id=%C0%AF',
    ];
    for (const query of queries) expect(await upgradeRefusal(`${gw.ws}${query}`), query).toMatchObject({ status: 400, body: ENCODING_ERROR });
    // The well-formed twin is a device id as before.
    const encoded = await connectStream(gw.ws, '?device_ids=%4F%4B1');
    expect((await encoded.next((f) => f.event === 'subscribed')).data.device_ids).toEqual(['OK1']);
    await check(2);
    expect((await gw.stats()).encoding_refusals_total).toBe(queries.length);
  });

  it('regression: channel=sensors% is refused (it opened as general), and so are since, epoch and user_id', async () => {
    const gw = await startGateway();
    const check = await streamBystander(gw);
    const queries = [
      '/api/v1/ws?channel=sensors%',
      '/api/v1/ws?channel=%ZZ',
      '/api/v1/ws?channel=sensors&since=%E2%82&epoch=e',
      '/api/v1/ws?channel=sensors&since=1&epoch=%C0%AF',
      '/api/v1/ws?channel=sensors&user_id=u%',
      '/ws/pets?user_id=%ZZ',
    ];
    for (const query of queries) expect(await upgradeRefusal(`${gw.ws}${query}`), query).toMatchObject({ status: 400, body: ENCODING_ERROR });
    const sensors = await connectChannel(gw, '/api/v1/ws?channel=sen%73ors');
    expect(sensors.established).toMatchObject({ channel: 'sensors' });
    await check(3);
  });

  it('regression: /ws/connect and the Azure client routes refuse malformed paths and queries with 400', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const check = await streamBystander(gw);
    const urls = [
      '/ws/connect?token=%ZZ',
      '/ws/connect?token=abc%E2%82',
      '/client/hubs/%ZZ?access_token=x',
      '/client/hubs/extraccion%',
      '/client?hub=%E2%82',
      '/client/hubs/extraccion?access_token=%C0%AF',
      '/client/hubs/extraccion?access_token=x&awps_connection_id=%ZZ&awps_reconnection_token=t',
    ];
    for (const url of urls) expect(await upgradeRefusal(`${gw.ws}${url}`), url).toMatchObject({ status: 400, body: ENCODING_ERROR });
    await check(4);
  });

  it('regression: DELETE /api/v1/public/share-location/%ZZ answers 400 (it answered 500), as every HTTP route does', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const check = await streamBystander(gw);
    const requests: Array<[string, string]> = [
      ['DELETE', '/api/v1/public/share-location/%ZZ'],
      ['DELETE', '/api/v1/public/share-location/v4.local.%E2%82'],
      ['GET', '/api/v1/ws/stats/%ZZ'],
      ['GET', '/api/v1/ws/stats/sensors%'],
      ['GET', '/api/v1/sensores/%ZZ'],
      ['PUT', '/api/v1/sensores/1%'],
      ['GET', '/api/v1/sensores/?skip=%ZZ'],
      ['POST', '/api/v1/channels/%C0%AF/events'],
      ['GET', '/viaje/%ZZ'],
      ['GET', '/api/v1/equipment/%E2%82'],
      ['GET', '/ws/negotiate?user_id=%ZZ'],
      ['GET', '/api/v1/stream/stats?x=%'],
      ['GET', '/healthz?%ZZ'],
      ['GET', '/no/such/route/%ZZ'],
    ];
    const token = await adminToken(); // a valid JWT: the share-location DELETE decoded its path after the token check
    for (const [method, path] of requests) {
      const res = await fetch(`${gw.http}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: method === 'GET' || method === 'DELETE' ? undefined : '{}',
      });
      expect({ status: res.status, body: await res.json() }, `${method} ${path}`).toEqual({ status: 400, body: ENCODING_ERROR });
    }
    // Azure's data plane answers in the service's own error format.
    for (const path of ['/api/hubs/%ZZ/:send', '/api/hubs/extraccion/users/%E2%82/:send']) {
      const res = await fetch(`${gw.http}${path}`, { method: 'POST', body: 'x' });
      expect(res.status, path).toBe(400);
      expect(res.headers.get('x-ms-error-code')).toBe('GW_ERR_ENCODING_INVALID');
      expect(await res.json()).toEqual({ code: 'GW_ERR_ENCODING_INVALID', message: expect.stringMatching(/percent-encoding/) });
    }
    // A well-formed encoding still routes: the stats of channel sen%73ors are those of sensors.
    const stats = await fetch(`${gw.http}/api/v1/ws/stats/sen%73ors`);
    expect(await stats.json()).toMatchObject({ status: 'ok', channel: 'sensors' });
    await check(5);
    expect((await gw.stats()).encoding_refusals_total).toBe(requests.length + 2);
  });

  it('regression: raw bytes that are not UTF-8 in the request line are refused with 400', async () => {
    const gw = await startGateway();
    const check = await streamBystander(gw);
    const line = (path: Buffer) => Buffer.concat([Buffer.from('GET '), path, Buffer.from(' HTTP/1.1')]);
    const upgrade = await rawRequest(gw.port, line(Buffer.from([0x2f, 0x77, 0x73, 0x2f, 0xc3, 0x28])), true); // /ws/\xC3(
    expect(upgrade).toMatch(/^HTTP\/1\.1 400/);
    expect(upgrade).toContain('GW_ERR_ENCODING_INVALID');
    const query = await rawRequest(gw.port, line(Buffer.concat([Buffer.from('/api/v1/stream/stats?x='), Buffer.from([0xff])])), false);
    expect(query).toMatch(/^HTTP\/1\.1 400/);
    expect(query).toContain('GW_ERR_ENCODING_INVALID');
    await check(6);
  });
});
