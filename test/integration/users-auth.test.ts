/**
 * /ws/connect (docs/compat/user-hub.md) and JWT checks on a real gateway: tokens from the query, the
 * Authorization header and the subprotocol; events by user, role and to all over the real bus;
 * heartbeat; refresh and expiry; /ws/stats and the test broadcast; every bad token refused with
 * 1008 and nothing leaked. Runs with token checks in the Piscina pool and inline.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { authEnv } from '../helpers/auth-env.js';
import { connectBackend, connectPublisher } from '../helpers/publisher.js';
import { connectStream, type Frame } from '../helpers/stream-client.js';
import { hs256WithPublicKey, keyPairs, mintJwt, unsecuredJwt, type KeyPairs } from '../helpers/tokens.js';

let keys: KeyPairs;
beforeAll(async () => {
  keys = await keyPairs();
});

const isType = (type: string) => (f: Frame) => f.type === type;
const connectUser = (gw: GatewayProcess, token: string, protocol?: string | string[]) =>
  connectStream(gw.ws, `?token=${encodeURIComponent(token)}`, { path: '/ws/connect', protocol });

async function refusedWith(gw: GatewayProcess, token: string, code: string): Promise<void> {
  const client = await connectUser(gw, token);
  const error = await client.next(isType('error'));
  expect(error.data.code).toBe(code);
  expect(JSON.stringify(error)).not.toContain(token.slice(-20));
  expect((await client.closed).code).toBe(1008);
}

describe.each(['pool', 'inline', 'auto'] as const)('/ws/connect with token checks %s', (mode) => {
  it('authenticates from query, header or subprotocol and routes user, role and broadcast events', async () => {
    const gw = await startGateway({ env: authEnv(keys, { GATEWAY_TOKEN_CHECKS: mode }) });
    const alice = await connectUser(gw, await mintJwt('alice', { roles: ['LEVEL_1'] }));
    const hello = await alice.next(isType('connection_established'));
    expect(hello.data).toMatchObject({ user_id: 'alice', roles: ['LEVEL_1'], heartbeat_interval: 30 });
    const bob = await connectStream(gw.ws, '', {
      path: '/ws/connect',
      headers: { authorization: `Bearer ${await mintJwt('bob', { roles: ['ops'] }, { alg: 'RS256', keys })}` },
    });
    await bob.next(isType('connection_established'));
    const carol = await connectStream(gw.ws, '', { path: '/ws/connect', protocol: ['msgpack', `bearer.${await mintJwt('carol', { role: 'LEVEL_1' })}`] });
    expect(carol.protocol).toBe('msgpack');
    await carol.next(isType('connection_established'));

    const pub = await connectBackend(gw.mqttUrl);
    await pub.control('gateway/events/user/alice', JSON.stringify({ type: 'task_event', data: { id: 1 } }));
    expect(await alice.next(isType('task_event'))).toMatchObject({ type: 'task_event', data: { id: 1 }, timestamp: expect.any(String) });
    await pub.control('gateway/events/role/LEVEL_1', JSON.stringify({ type: 'efectivo_event', data: { id: 2 } }));
    await alice.next(isType('efectivo_event'));
    expect((await carol.next(isType('efectivo_event'))).data).toEqual({ id: 2 });
    await pub.control('gateway/events/all', JSON.stringify({ type: 'system_event', data: { id: 3 } }));
    await Promise.all([alice, bob, carol].map((c) => c.next(isType('system_event'))));
    expect(bob.count(isType('task_event')) + bob.count(isType('efectivo_event'))).toBe(0);
    expect(carol.count(isType('task_event'))).toBe(0);
  });

  it('refuses each kind of bad token with 1008, and never logs a token', async () => {
    const gw = await startGateway({ env: authEnv(keys, { GATEWAY_TOKEN_CHECKS: mode }) });
    const good = await mintJwt('x');
    const client = await connectStream(gw.ws, '', { path: '/ws/connect' });
    expect((await client.next(isType('error'))).data.code).toBe('GW_ERR_TOKEN_MISSING');
    expect((await client.closed).code).toBe(1008);
    await refusedWith(gw, 'garbage', 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, good.slice(0, -12), 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, `${good}${'A'.repeat(9000)}`, 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, unsecuredJwt('admin'), 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, hs256WithPublicKey('admin', keys.pem.RS256), 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, await mintJwt('x', {}, { expiresInS: -30 }), 'GW_ERR_TOKEN_EXPIRED');
    await refusedWith(gw, await mintJwt('x', {}, { notBeforeS: 300 }), 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, await mintJwt('x', {}, { issuer: 'https://evil.test' }), 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, await mintJwt('x', {}, { audience: 'other' }), 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, await mintJwt('x', {}, { alg: 'RS256', keys, kid: 'kid-unknown' }), 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, await mintJwt('x', {}, { alg: 'ES256', keys }), 'GW_ERR_TOKEN_INVALID');
    const stats = await gw.stats();
    expect(stats.auth_failures_total).toBe(12);
    const logText = JSON.stringify(gw.logs);
    expect(logText).not.toContain(good.split('.')[2]);
    expect(logText).not.toContain(hs256WithPublicKey('admin', keys.pem.RS256).split('.')[1]);
  });
});

describe('/ws/connect sessions', () => {
  it('sends the heartbeat, answers ping, and ends an expired session with token_expired and 4001', async () => {
    const gw = await startGateway({ env: authEnv(keys, { GATEWAY_HEARTBEAT_MS: '100' }) });
    const client = await connectUser(gw, await mintJwt('u1', {}, { expiresInS: 2 }));
    await client.next(isType('connection_established'));
    expect(await client.next(isType('ping'))).toMatchObject({ type: 'ping', timestamp: expect.any(String) });
    client.send({ type: 'ping' });
    await client.next(isType('pong'));
    client.send({ type: 'dance' });
    expect((await client.next(isType('error'))).data.code).toBe('GW_ERR_UNKNOWN_ACTION');
    expect(await client.next(isType('token_expired'), 5000)).toMatchObject({ data: { message: expect.stringContaining('expired') } });
    expect((await client.closed).code).toBe(4001);
  });

  it('keeps a session whose token is refreshed in time, and refuses a refresh for another user', async () => {
    const gw = await startGateway({ env: authEnv(keys, { GATEWAY_HEARTBEAT_MS: '100' }) });
    const client = await connectUser(gw, await mintJwt('u2', {}, { expiresInS: 2 }));
    const hello = await client.next(isType('connection_established'));
    client.send({ type: 'refresh_token', token: await mintJwt('someone-else') });
    expect((await client.next(isType('error'))).data.code).toBe('GW_ERR_FORBIDDEN');
    client.send({ type: 'refresh_token', token: 'not-a-token' });
    expect((await client.next(isType('error'))).data.code).toBe('GW_ERR_TOKEN_INVALID');
    client.send({ type: 'refresh_token', token: await mintJwt('u2', {}, { expiresInS: 600 }) });
    const refreshed = await client.next(isType('token_refreshed'));
    expect(Date.parse(refreshed.data.expires_at)).toBeGreaterThan(Date.parse(hello.data.expires_at));
    // A heartbeat stamped after the first token's expiry proves the session outlived it.
    const firstExpiry = Date.parse(hello.data.expires_at);
    await client.next((f) => f.type === 'ping' && Date.parse(f.timestamp!) > firstExpiry + 500, 6000);
    expect(client.count(isType('token_expired'))).toBe(0);
  });

  it('reports /ws/stats with its metrics, and the test broadcast reaches everyone (forbidden in production)', async () => {
    const gw = await startGateway({ env: authEnv(keys) });
    const users = await Promise.all([
      connectUser(gw, await mintJwt('a', { roles: ['LEVEL_1'] })),
      connectUser(gw, await mintJwt('b', { roles: ['LEVEL_1', 'ops'] })),
    ]);
    await Promise.all(users.map((u) => u.next(isType('connection_established'))));
    const res = await fetch(`${gw.http}/ws/_test/broadcast`, {
      method: 'POST',
      body: JSON.stringify({ title: 'BroadcastTest', content: 'Mensaje de prueba', level: 'info' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: 'ok',
      sent: 2,
      metrics: { total_broadcasts: 1, total_send_errors: 0, last_broadcast_at: expect.any(String) },
    });
    for (const u of users) expect((await u.next(isType('notification'))).data).toEqual({ title: 'BroadcastTest', content: 'Mensaje de prueba', level: 'info' });
    const stats = await (await fetch(`${gw.http}/ws/stats`)).json();
    // Every frame sent to a /ws/connect socket counts: two connection_established, two notifications.
    expect(stats).toMatchObject({
      status: 'ok',
      stats: {
        total_connections: 2,
        connections_by_role: { LEVEL_1: 2, ops: 1 },
        unique_users: 2,
        heartbeat_active: true,
        heartbeat_interval: 30,
        metrics: { total_messages_sent: 4, total_broadcasts: 1, total_send_errors: 0 },
      },
      timestamp: expect.any(String),
    });

    const prod = await startGateway({ env: authEnv(keys, { ENVIRONMENT: 'production' }) });
    const forbidden = await fetch(`${prod.http}/ws/_test/broadcast`, { method: 'POST', body: '{}' });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toEqual({ status: 'forbidden' });
  });
});

describe('/api/v1/stream with GATEWAY_AUTH_REQUIRED=stream', () => {
  it('lets a role watch the devices its ACL allows, and refuses the others', async () => {
    const gw = await startGateway({ env: authEnv(keys, { GATEWAY_AUTH_REQUIRED: 'stream' }) });
    const anonymous = await connectStream(gw.ws, '?device_ids=SIM-1');
    expect((await anonymous.next((f) => f.event === 'error')).data.code).toBe('GW_ERR_TOKEN_MISSING');
    expect((await anonymous.closed).code).toBe(1008);
    const token = await mintJwt('op', { roles: ['LEVEL_1'] });
    const forbidden = await connectStream(gw.ws, `?device_ids=SIM-1,TRUCK-9&token=${token}`);
    expect((await forbidden.next((f) => f.event === 'error')).data).toMatchObject({
      code: 'GW_ERR_FORBIDDEN',
      message: 'Not allowed to watch device "TRUCK-9"',
    });
    expect((await forbidden.closed).code).toBe(1008);
    // Every device (`*`) needs a role whose devices include `*`.
    const everything = await connectStream(gw.ws, `?device_ids=*&token=${token}`);
    expect((await everything.next((f) => f.event === 'error')).data).toMatchObject({ code: 'GW_ERR_FORBIDDEN', message: 'Not allowed to watch device "*"' });
    const admin = await connectStream(gw.ws, `?device_ids=*&token=${await mintJwt('boss', { roles: ['admin'] })}`);
    expect((await admin.next((f) => f.event === 'subscribed')).data.device_ids).toEqual(['*']);
    const allowed = await connectStream(gw.ws, `?device_ids=SIM-1&token=${token}`);
    await allowed.next((f) => f.event === 'subscribed');
    allowed.send({ action: 'subscribe', device_ids: ['TRUCK-9'] });
    expect((await allowed.next((f) => f.event === 'error')).data.code).toBe('GW_ERR_FORBIDDEN');
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.position('SIM-1');
    await allowed.next((f) => f.event === 'message');
    allowed.send({ action: 'refresh_token', token: await mintJwt('someone-else') });
    expect((await allowed.next((f) => f.event === 'error')).data.code).toBe('GW_ERR_FORBIDDEN');
    allowed.send({ action: 'refresh_token', token: await mintJwt('op', { roles: ['LEVEL_1'] }, { expiresInS: 7200 }) });
    const refreshed = await allowed.next((f) => f.event === 'token_refreshed');
    expect(Date.parse(refreshed.data.expires_at)).toBeGreaterThan(Date.now() + 3600_000);
  });

  it('refuses refresh_token on a connection that has no token', async () => {
    const gw = await startGateway();
    const client = await connectStream(gw.ws, '?device_ids=SIM-1');
    await client.next((f) => f.event === 'subscribed');
    client.send({ action: 'refresh_token', token: 'anything' });
    expect((await client.next((f) => f.event === 'error')).data).toMatchObject({
      code: 'GW_ERR_FRAME_INVALID',
      message: 'This connection has no token to refresh',
    });
  });
});

describe('keys and tokens from outside', () => {
  it('verifies RS256 and EdDSA tokens against a JWKS served over HTTP, and refuses an unknown kid', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys.jwks)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { onTestFinished } = await import('vitest');
    onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const gw = await startGateway({
      env: authEnv(keys, { GATEWAY_JWT_SECRET: '', GATEWAY_JWT_PUBLIC_KEYS: '', GATEWAY_JWT_JWKS: `http://127.0.0.1:${port}/jwks.json` }),
    });
    const ed = await connectUser(gw, await mintJwt('ed', {}, { alg: 'EdDSA', keys }));
    expect((await ed.next(isType('connection_established'))).data.user_id).toBe('ed');
    const rs = await connectUser(gw, await mintJwt('rs', {}, { alg: 'RS256', keys }));
    await rs.next(isType('connection_established'));
    await refusedWith(gw, await mintJwt('x', {}, { alg: 'RS256', keys, kid: 'kid-unknown' }), 'GW_ERR_TOKEN_INVALID');
    await refusedWith(gw, await mintJwt('x'), 'GW_ERR_TOKEN_INVALID'); // HS256 with no secret configured
  });

  it('accepts a token minted by `npm run token`', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { REPO_ROOT } = await import('../helpers/gateway-process.js');
    const env = authEnv(keys);
    const { stdout } = await promisify(execFile)(process.execPath, [`${REPO_ROOT}dist/scripts/token.js`, '--sub', 'cli-user', '--role', 'LEVEL_1'], {
      env: { PATH: process.env.PATH, ...env },
    });
    const gw = await startGateway({ env });
    const client = await connectUser(gw, stdout.trim());
    expect((await client.next(isType('connection_established'))).data).toMatchObject({ user_id: 'cli-user', roles: ['LEVEL_1'] });
  });
});
