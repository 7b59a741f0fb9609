/**
 * Share-location links (docs/compat/gps-stream.md) end to end: minting over REST with a JWT
 * and the ACL, the viewer stream of one device, expiry (`expired` + 1000), revocation over the bus
 * (`revoked` + 1008), and each bad link refused with 1008. Plus the rate limits.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { authEnv } from '../helpers/auth-env.js';
import { connectPublisher } from '../helpers/publisher.js';
import { connectStream, isMessage } from '../helpers/stream-client.js';
import { keyPairs, mintJwt, type KeyPairs } from '../helpers/tokens.js';

let keys: KeyPairs;
beforeAll(async () => {
  keys = await keyPairs();
});

async function init(gw: GatewayProcess, jwt: string | undefined, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${gw.http}/api/v1/public/share-location/init`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(jwt ? { authorization: `Bearer ${jwt}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const viewer = (gw: GatewayProcess, token: string, extra = '') =>
  connectStream(gw.ws, `?token=${encodeURIComponent(token)}${extra}`, { path: '/api/v1/public/share-location/stream' });

async function refusedViewer(gw: GatewayProcess, token: string, code: string, extra = ''): Promise<void> {
  const client = await viewer(gw, token, extra);
  const error = await client.next((f) => f.event === 'error');
  expect(error.data.code).toBe(code);
  if (token.length > 40) expect(JSON.stringify(error)).not.toContain(token.slice(20, 40));
  expect((await client.closed).code).toBe(1008);
}

describe('share-location', () => {
  it('mints a link for an allowed device, and the viewer streams only that device', async () => {
    const gw = await startGateway({ env: authEnv(keys, { GATEWAY_PUBLIC_URL: 'https://gps.example.test' }) });
    const jwt = await mintJwt('op', { roles: ['LEVEL_1'] });
    expect((await init(gw, undefined, { device_id: 'SIM-1' })).json.error.code).toBe('GW_ERR_TOKEN_MISSING');
    expect((await init(gw, 'garbage', { device_id: 'SIM-1' })).status).toBe(401);
    expect(await init(gw, jwt, { device_id: 'TRUCK-1' })).toMatchObject({ status: 403, json: { error: { code: 'GW_ERR_FORBIDDEN' } } });
    expect(await init(gw, jwt, '{bad json')).toMatchObject({ status: 400, json: { error: { code: 'GW_ERR_BODY_INVALID' } } });
    expect(await init(gw, jwt, { device_id: 'bad id!' })).toMatchObject({ status: 400, json: { error: { message: expect.stringContaining('device_id') } } });
    expect(await init(gw, jwt, { device_id: 'SIM-1', ttl_seconds: -5 })).toMatchObject({
      status: 400,
      json: { error: { message: expect.stringContaining('ttl_seconds') } },
    });
    const ok = await init(gw, jwt, { device_id: 'SIM-1', ttl_seconds: 600 });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({
      token: expect.stringMatching(/^v4\.local\./),
      device_id: 'SIM-1',
      expires_in: 600,
      viewer_url: expect.stringMatching(/^https:\/\/gps\.example\.test\/share-location\?token=v4\.local\./),
      stream_url: expect.stringMatching(/^wss:\/\/gps\.example\.test\/api\/v1\/public\/share-location\/stream\?token=/),
    });
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.position('SIM-1', { N: 1 });
    const client = await viewer(gw, ok.json.token);
    expect((await client.next((f) => f.event === 'subscribed')).data.device_ids).toEqual(['SIM-1']);
    expect((await client.next(isMessage('SIM-1'))).data.data.N).toBe(1); // the snapshot
    await pub.position('SIM-2', { N: 2 });
    await pub.position('SIM-1', { N: 3 });
    expect((await client.next(isMessage())).data.data).toMatchObject({ DEVICE_ID: 'SIM-1', N: 3 });
    client.send({ action: 'subscribe', device_ids: ['SIM-2'] });
    expect((await client.next((f) => f.event === 'error')).data.code).toBe('GW_ERR_FORBIDDEN');
    expect(JSON.stringify(gw.logs)).not.toContain(ok.json.token.slice(9, 60));
  });

  it('ends the viewer at expiry with {"event":"expired"} and 1000', async () => {
    const gw = await startGateway({ env: authEnv(keys) });
    const ok = await init(gw, await mintJwt('op', { roles: ['admin'] }), { device_id: 'D1', ttl_seconds: 1 });
    const client = await viewer(gw, ok.json.token);
    await client.next((f) => f.event === 'subscribed');
    expect(await client.next((f) => f.event === 'expired', 5000)).toEqual({ event: 'expired', data: { message: 'Token expired' } });
    expect((await client.closed).code).toBe(1000);
    // Once expired, the same link is refused before connecting.
    await refusedViewer(gw, ok.json.token, 'GW_ERR_TOKEN_EXPIRED');
  });

  it('revokes a link: live viewers get {"event":"revoked"} and 1008, and the link is refused afterwards', async () => {
    const gw = await startGateway({ env: authEnv(keys) });
    const owner = await mintJwt('owner', { roles: ['LEVEL_1'] });
    const ok = await init(gw, owner, { device_id: 'SIM-9' });
    const a = await viewer(gw, ok.json.token);
    const b = await viewer(gw, ok.json.token);
    await Promise.all([a, b].map((c) => c.next((f) => f.event === 'subscribed')));
    const stranger = await fetch(`${gw.http}/api/v1/public/share-location/${encodeURIComponent(ok.json.token)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await mintJwt('x', { roles: ['nobody'] })}` },
    });
    expect(stranger.status).toBe(403);
    const res = await fetch(`${gw.http}/api/v1/public/share-location/${encodeURIComponent(ok.json.token)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${owner}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'revoked', device_id: 'SIM-9', jti: expect.any(String) });
    for (const c of [a, b]) {
      expect(await c.next((f) => f.event === 'revoked')).toEqual({ event: 'revoked', data: { message: 'Link revoked' } });
      expect((await c.closed).code).toBe(1008);
    }
    await refusedViewer(gw, ok.json.token, 'GW_ERR_TOKEN_INVALID');
    expect((await gw.stats()).share_revocations_total).toBe(2);
  });

  it('refuses missing, malformed, tampered, foreign and other-device links with 1008', async () => {
    const gw = await startGateway({ env: authEnv(keys) });
    const ok = await init(gw, await mintJwt('op', { roles: ['admin'] }), { device_id: 'D7' });
    const token: string = ok.json.token;
    const noToken = await connectStream(gw.ws, '', { path: '/api/v1/public/share-location/stream' });
    expect((await noToken.next((f) => f.event === 'error')).data.code).toBe('GW_ERR_TOKEN_MISSING');
    expect((await noToken.closed).code).toBe(1008);
    await refusedViewer(gw, 'v4.local.garbage', 'GW_ERR_TOKEN_INVALID');
    await refusedViewer(gw, `${token.slice(0, -8)}AAAAAAAA`, 'GW_ERR_TOKEN_INVALID');
    await refusedViewer(gw, token.slice(0, 50), 'GW_ERR_TOKEN_INVALID');
    await refusedViewer(gw, `v4.local.${'A'.repeat(9000)}`, 'GW_ERR_TOKEN_INVALID');
    await refusedViewer(gw, await mintJwt('op'), 'GW_ERR_TOKEN_INVALID'); // a JWT is not a share link
    const other = await startGateway({ env: authEnv(keys) }); // another random share key
    const foreign = (await init(other, await mintJwt('op', { roles: ['admin'] }), { device_id: 'D7' })).json.token;
    await refusedViewer(gw, foreign, 'GW_ERR_TOKEN_INVALID');
    await refusedViewer(gw, token, 'GW_ERR_FORBIDDEN', '&device_id=D8');
    const fine = await viewer(gw, token, '&device_id=D7');
    await fine.next((f) => f.event === 'subscribed');
  });
});

describe('share-location links minted by another service', () => {
  it('accepts v4.public links signed with the configured k4.public key, and refuses other signers', async () => {
    const { generateKeys, sign } = await import('paseto-ts/v4');
    const service = generateKeys('public');
    const gw = await startGateway({ env: authEnv(keys, { GATEWAY_SHARE_PUBLIC_KEY: service.publicKey }) });
    const claims = { device_id: 'EXT-1', jti: 'ext-1', exp: new Date(Date.now() + 60_000).toISOString() };
    const client = await viewer(gw, sign(service.secretKey, claims, { addExp: false }));
    expect((await client.next((f) => f.event === 'subscribed')).data.device_ids).toEqual(['EXT-1']);
    await refusedViewer(gw, sign(generateKeys('public').secretKey, claims, { addExp: false }), 'GW_ERR_TOKEN_INVALID');
  });
});

describe('rate limits', () => {
  it('answers 429 to upgrades over the per-IP rate, and closes a connection over the frame rate with 4029', async () => {
    const gw = await startGateway({
      env: { GATEWAY_CONNECT_RATE_PER_IP: '1', GATEWAY_CONNECT_BURST_PER_IP: '3', GATEWAY_FRAME_RATE: '1', GATEWAY_FRAME_BURST: '3' },
    });
    const first = await connectStream(gw.ws, '?device_ids=R1');
    await first.next((f) => f.event === 'subscribed');
    for (let i = 0; i < 4; i++) first.send({ action: 'ping' });
    expect((await first.next((f) => f.event === 'error')).data.code).toBe('GW_ERR_RATE_LIMITED');
    expect((await first.closed).code).toBe(4029);
    await connectStream(gw.ws, '?device_ids=R1');
    await connectStream(gw.ws, '?device_ids=R1');
    const refused = await connectStream(gw.ws, '?device_ids=R1').then(
      () => null,
      (err: { status: number; body: string }) => err,
    );
    expect(refused?.status).toBe(429);
    expect(JSON.parse(refused!.body).error.code).toBe('GW_ERR_RATE_LIMITED');
    expect((await gw.stats()).rate_limited_total).toBe(2);
  });
});
