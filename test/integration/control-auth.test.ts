/**
 * Authenticated control messages (issue 14, defence in depth) on a real gateway, published with a
 * backend login, which the embedded broker lets publish on every control topic (as an allow-all or
 * misconfigured broker would, or a leaked backend password): forged control messages on every
 * control topic are dropped and counted and nothing reaches a WebSocket client; a backend that tags
 * its messages with the cluster key (as the recipe in docs/guide/security.md does: test/helpers/control-key.ts) is
 * delivered. Then two nodes on one real Mosquitto: the same key delivers each other's events,
 * different keys do not.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { serviceClient, startAzureGateway, startClient, collect } from '../helpers/azure.js';
import { adminToken, channelEnv, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { TEST_CLUSTER_KEY, signControl } from '../helpers/control-key.js';
import { eventually, REPO_ROOT, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { startPostgres } from '../helpers/postgres.js';
import { connectBackend } from '../helpers/publisher.js';
import { connectStream, type Frame } from '../helpers/stream-client.js';
import { mintJwt } from '../helpers/tokens.js';

const OTHER_KEY = 'another-cluster-key-0123456789abcdef0123456789';
const unauthenticated = async (gw: GatewayProcess) => (await gw.stats()).ingest.control_unauthenticated_total as number;
const waitUnauthenticated = (gw: GatewayProcess, n: number) =>
  eventually(async () => (await unauthenticated(gw)) >= n || undefined, 10_000, `control_unauthenticated_total ≥ ${n}`);
const entity = (id: number) => JSON.stringify({ type: 'entity_event', entity_type: 'sensor', event_type: 'created', entity_id: id, data: { id } });
const azureSend = (n: number) => `${JSON.stringify({ op: 'send', to: { kind: 'all' }, dataType: 'json' })}\n${JSON.stringify({ n })}`;

describe('control messages on an allow-all broker', () => {
  it('regression: forged unsigned, wrongly keyed and moved control messages (channel event, notification, Azure command, revocation) are dropped and counted, a backend-signed one is delivered', async () => {
    const gw = await startAzureGateway();
    const channel = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const user = await connectStream(gw.ws, `?token=${await mintJwt('u1', { roles: ['admin'] })}`, { path: '/ws/connect' });
    await user.next((f) => f.type === 'connection_established');
    const svc = serviceClient(gw, 'chat');
    const azure = collect(await startClient(async () => (await svc.getClientAccessToken({ userId: 'ana' })).url));
    const init = await fetch(`${gw.http}/api/v1/public/share-location/init`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await adminToken()}` },
      body: JSON.stringify({ device_id: 'SIM-1' }),
    });
    const link = (await init.json()) as { token: string };
    const jti = (await gw.waitForLog((l) => l.msg === 'share link issued')).jti as string;
    const viewer = await connectStream(gw.ws, `?token=${encodeURIComponent(link.token)}`, { path: '/api/v1/public/share-location/stream' });
    await viewer.next((f) => f.event === 'subscribed');

    const revocation = JSON.stringify({ jti, expires_at: new Date(Date.now() + 3_600_000).toISOString() });
    const forged: [string, string][] = [
      ['gateway/channels/sensors', entity(666)],
      ['gateway/events/all', JSON.stringify({ type: 'system_event', data: { forged: true } })],
      ['gateway/events/user/u1', JSON.stringify({ type: 'notification', data: { forged: true } })],
      ['gateway/azure/chat', azureSend(666)],
      ['gateway/revocations', revocation],
    ];
    const pub = await connectBackend(gw.mqttUrl);
    for (const [topic, body] of forged) await pub.raw(topic, body); // unsigned
    for (const [topic, body] of forged) await pub.control(topic, body, OTHER_KEY); // signed with another key
    // Signed with the right key for another topic, then moved: another channel, user and hub.
    await pub.raw('gateway/channels/sensors', signControl('gateway/channels/general', entity(667)));
    await pub.raw('gateway/events/user/u1', signControl('gateway/events/user/u2', JSON.stringify({ type: 'notification', data: { moved: true } })));
    await pub.raw('gateway/azure/chat', signControl('gateway/azure/extraccion', azureSend(667)));
    await pub.raw('gateway/revocations', signControl('gateway/revocations-other', revocation));
    const dropped = forged.length * 2 + 4;
    await waitUnauthenticated(gw, dropped);

    // The viewer's link was not revoked: a position published after the forgeries still reaches it.
    await pub.position('SIM-1');
    await viewer.next((f) => f.event === 'message');
    // A backend with the key: each is delivered, and is the first of its kind each client sees.
    await pub.control('gateway/channels/sensors', entity(1));
    await pub.control('gateway/events/all', JSON.stringify({ type: 'system_event', data: { signed: true } }));
    await pub.control('gateway/azure/chat', azureSend(1));
    expect(await channel.next(isEvent)).toMatchObject({ entity_id: 1, offset: 1 });
    expect((await user.next((f: Frame) => f.type === 'system_event')).data).toEqual({ signed: true });
    expect((await azure.until(1))[0]).toMatchObject({ data: { n: 1 } });
    await pub.control('gateway/revocations', revocation);
    expect(await viewer.next((f) => f.event === 'revoked')).toEqual({ event: 'revoked', data: { message: 'Link revoked' } });

    expect(channel.count(isEvent)).toBe(1);
    expect(user.count((f) => f.type === 'notification' || (f.type === 'system_event' && f.data?.forged))).toBe(0);
    expect(azure.messages).toHaveLength(1);
    expect(await unauthenticated(gw)).toBe(dropped);
    const logged = gw.logs.filter((l) => l.msg === 'control message dropped: not authenticated (GATEWAY_CLUSTER_KEY)');
    expect(logged.map((l) => l.why)).toEqual(expect.arrayContaining(['unsigned', 'wrong tag']));
    expect(JSON.stringify(logged)).not.toContain('forged');
  });

  it('regression: a control message tagged more than 5 minutes ago (a late replay) is dropped', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const channel = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const pub = await connectBackend(gw.mqttUrl);
    await pub.raw('gateway/channels/sensors', signControl('gateway/channels/sensors', entity(666), TEST_CLUSTER_KEY, Math.floor(Date.now() / 1000) - 600));
    await waitUnauthenticated(gw, 1);
    await pub.control('gateway/channels/sensors', entity(1));
    expect(await channel.next(isEvent)).toMatchObject({ entity_id: 1, offset: 1 });
    expect(gw.logs.find((l) => l.why === 'outside the clock window')).toBeDefined();
  });

  it('an unset GATEWAY_CLUSTER_KEY warns that several nodes need one, and the node still takes its own events', async () => {
    const gw = await startGateway({ env: channelEnv({ GATEWAY_CLUSTER_KEY: '' }) });
    await gw.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('GATEWAY_CLUSTER_KEY is not set'));
    const channel = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    expect((await rest(gw, 'POST', '/api/v1/channels/sensors/events', JSON.parse(entity(1)), await adminToken())).status).toBe(202);
    expect(await channel.next(isEvent)).toMatchObject({ entity_id: 1, offset: 1 });
    const pub = await connectBackend(gw.mqttUrl);
    await pub.control('gateway/channels/sensors', entity(2)); // the tests' key is not this start's
    await waitUnauthenticated(gw, 1);
  });
});

describe('backend signing recipes', () => {
  const run = promisify(execFile);
  const env = { PATH: process.env.PATH ?? '', GATEWAY_CLUSTER_KEY: TEST_CLUSTER_KEY };

  it('npm run sign (argument and stdin) and the Python recipe of docs/guide/security.md tag messages the gateway delivers', async () => {
    const gw = await startGateway({ env: channelEnv() });
    const channel = await connectChannel(gw, '/api/v1/ws?channel=sensors');
    const pub = await connectBackend(gw.mqttUrl);
    const topic = 'gateway/channels/sensors';
    const script = `${REPO_ROOT}dist/scripts/sign-control.js`;
    const fromArg = await run(process.execPath, [script, topic, entity(1)], { env, encoding: 'buffer' });
    await pub.raw(topic, fromArg.stdout);
    const child = execFile(process.execPath, [script, topic], { env, encoding: 'buffer' });
    child.stdin!.end(entity(2));
    const fromStdin = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      child.stdout!.on('data', (c: Buffer) => chunks.push(c));
      child.once('exit', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`sign exited ${code}`))));
    });
    await pub.raw(topic, fromStdin);
    const guide = readFileSync(`${REPO_ROOT}docs/guide/security.md`, 'utf8');
    const recipe = /```python\n([\s\S]*?)```/.exec(guide.slice(guide.indexOf('## Authenticated control messages')))![1];
    const driver = `${recipe}\nimport sys\nsys.stdout.buffer.write(sign(${JSON.stringify(TEST_CLUSTER_KEY)}.encode(), ${JSON.stringify(topic)}, ${JSON.stringify(entity(3))}.encode()))\n`;
    await pub.raw(topic, (await run('python3', ['-c', driver], { encoding: 'buffer' })).stdout);
    for (const id of [1, 2, 3]) expect(await channel.next(isEvent)).toMatchObject({ entity_id: id, offset: id });
    expect(await unauthenticated(gw)).toBe(0);
    const refused = await run(process.execPath, [script, topic, '{}'], { env: { PATH: env.PATH } }).catch((e: { code: number; stderr: string }) => e);
    expect((refused as { code: number }).code).toBe(2);
    expect((refused as { stderr: string }).stderr).toMatch(/GATEWAY_CLUSTER_KEY must be set/);
  });
});

describe('two nodes on one Mosquitto', () => {
  /** `databaseUrl`: both nodes on that PostgreSQL store (one cluster); else each on its own SQLite (two gateways). */
  async function twoNodes(keyA: string, keyB: string, databaseUrl?: string) {
    const mosquitto = await startMosquitto();
    const store: Record<string, string> = databaseUrl === undefined ? {} : { GATEWAY_DATABASE_URL: databaseUrl };
    const a = await startGateway({ env: channelEnv({ MQTT_URL: mosquitto.url, GATEWAY_CLUSTER_KEY: keyA, GATEWAY_MQTT_CLIENT_ID: 'node-a', ...store }) });
    const b = await startGateway({ env: channelEnv({ MQTT_URL: mosquitto.url, GATEWAY_CLUSTER_KEY: keyB, GATEWAY_MQTT_CLIENT_ID: 'node-b', ...store }) });
    return { a, b, onA: await connectChannel(a, '/api/v1/ws?channel=sensors'), onB: await connectChannel(b, '/api/v1/ws?channel=sensors') };
  }

  it("with the same GATEWAY_CLUSTER_KEY and store they deliver each other's events", async () => {
    const postgres = await startPostgres();
    onTestFinished(() => postgres.stop());
    const { a, b, onA, onB } = await twoNodes(TEST_CLUSTER_KEY, TEST_CLUSTER_KEY, await postgres.newDatabase());
    expect((await rest(a, 'POST', '/api/v1/channels/sensors/events', JSON.parse(entity(1)), await adminToken())).status).toBe(202);
    expect((await rest(b, 'POST', '/api/v1/channels/sensors/events', JSON.parse(entity(2)), await adminToken())).status).toBe(202);
    const ids = async (c: typeof onA) =>
      [((await c.next(isEvent)) as Frame & { entity_id: number }).entity_id, ((await c.next(isEvent)) as Frame & { entity_id: number }).entity_id].sort();
    expect(await ids(onA)).toEqual([1, 2]);
    expect(await ids(onB)).toEqual([1, 2]);
    expect(await unauthenticated(a)).toBe(0);
    expect(await unauthenticated(b)).toBe(0);
  });

  it("regression: with different keys (two gateways, each on its own SQLite) neither takes the other's events (counted), each still takes its own", async () => {
    const { a, b, onA, onB } = await twoNodes(TEST_CLUSTER_KEY, OTHER_KEY);
    expect((await rest(a, 'POST', '/api/v1/channels/sensors/events', JSON.parse(entity(1)), await adminToken())).status).toBe(202);
    expect(await onA.next(isEvent)).toMatchObject({ entity_id: 1, offset: 1 });
    await waitUnauthenticated(b, 1);
    expect((await rest(b, 'POST', '/api/v1/channels/sensors/events', JSON.parse(entity(2)), await adminToken())).status).toBe(202);
    expect(await onB.next(isEvent)).toMatchObject({ entity_id: 2, offset: 1 });
    await waitUnauthenticated(a, 1);
    expect(onA.count(isEvent)).toBe(1);
    expect(onB.count(isEvent)).toBe(1);
  });
});
