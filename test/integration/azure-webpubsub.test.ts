/**
 * The gateway as a self-hosted Azure Web PubSub, driven by the official SDKs: @azure/web-pubsub
 * (REST data plane, with allowInsecureConnection for http) and @azure/web-pubsub-client (the
 * reliable JSON subprotocol by default), plus raw `ws` clients for what the SDKs never send.
 */
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/gateway-process.js';
import { ACCESS_KEY, collect, serviceClient, startAzureGateway, startClient, startProxy } from '../helpers/azure.js';

const ROLES = ['webpubsub.joinLeaveGroup', 'webpubsub.sendToGroup'];

function rawClient(url: string, protocol?: string): Promise<{ ws: WebSocket; frames: any[]; closed: Promise<{ code: number; reason: string }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocol ? [protocol] : []);
    const frames: any[] = [];
    ws.on('message', (data, isBinary) => {
      if (isBinary) return frames.push(data);
      const text = (data as Buffer).toString(); // ws's default binaryType ('nodebuffer'): a text frame is one Buffer
      try {
        frames.push(JSON.parse(text));
      } catch {
        frames.push(text);
      }
    });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: String(reason) })));
    ws.on('open', () => resolve({ ws, frames, closed }));
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
  });
}

describe('Azure Web PubSub REST data plane with the official service SDK', () => {
  it('sends to all, groups, users and connections, with excluded and filter, in json, text and binary', async () => {
    const gw = await startAzureGateway();
    const svc = serviceClient(gw, 'chat');
    const url =
      (userId: string, roles = ROLES) =>
      async () =>
        (await svc.getClientAccessToken({ userId, roles })).url;
    const ana = await startClient(url('ana'));
    const bob = await startClient(url('bob'), { autoReconnect: false }); // closed at the end: it must not come back as a new connection of 'bob'
    const anaIn = collect(ana);
    const bobIn = collect(bob);
    await ana.joinGroup('g1');
    const anaId = await eventually(async () => (await svc.connectionExists((ana as any)._connectionId)) && (ana as any)._connectionId, 10_000, 'ana');

    await svc.sendToAll({ n: 1 });
    await svc.sendToAll('text 2', { contentType: 'text/plain' });
    await svc.group('g1').sendToAll(new Uint8Array([1, 2, 3]));
    await svc.sendToUser('bob', { n: 4 });
    await svc.sendToConnection(anaId, { n: 5 });
    await svc.sendToAll({ n: 6 }, { filter: "userId eq 'bob'" });
    await svc.sendToAll({ n: 7 }, { excludedConnections: [anaId] });
    expect((await anaIn.until(3)).map((m) => [m.kind, m.dataType, m.group, m.data])).toEqual([
      ['serverData', 'json', undefined, { n: 1 }],
      ['serverData', 'text', undefined, 'text 2'],
      ['groupData', 'binary', 'g1', expect.anything()],
    ]);
    expect(Buffer.from((await anaIn.until(4))[2].data)).toEqual(Buffer.from([1, 2, 3]));
    expect((await anaIn.until(4))[3].data).toEqual({ n: 5 });
    expect((await bobIn.until(5)).map((m) => m.data)).toEqual([{ n: 1 }, 'text 2', { n: 4 }, { n: 6 }, { n: 7 }]);
    expect(anaIn.messages).toHaveLength(4);

    // Membership, existence, listing, permissions and closing, with the SDK's exact status codes.
    expect(await svc.groupExists('g1')).toBe(true);
    expect(await svc.groupExists('nobody-here')).toBe(false);
    expect(await svc.userExists('bob')).toBe(true);
    const bobId = (bob as any)._connectionId as string;
    await svc.group('g2').addConnection(bobId);
    await eventually(async () => svc.groupExists('g2'), 10_000, 'bob in g2');
    const members = [];
    for await (const m of await svc.group('g1').listConnections()) members.push(m);
    expect(members).toEqual([{ connectionId: anaId, userId: 'ana' }]);
    await expect(svc.group('g2').addConnection('no-such-connection')).rejects.toMatchObject({ statusCode: 404 });
    await svc.group('g2').sendToAll({ n: 8 }); // bob hears g2 from now on
    expect((await bobIn.until(6))[5]).toMatchObject({ group: 'g2', data: { n: 8 } });
    await svc.group('g2').removeConnection(bobId);
    await eventually(async () => !(await svc.groupExists('g2')), 10_000, 'g2 empty');
    await svc.group('g2').sendToAll({ n: 9 }); // and no longer: the marker after it arrives alone
    await svc.sendToConnection(bobId, { n: 10 });
    expect((await bobIn.until(7))[6].data).toEqual({ n: 10 });
    await svc.group('g3').addUser('bob');
    await eventually(async () => svc.groupExists('g3'), 10_000, 'bob in g3');
    await svc.group('g3').removeUser('bob');
    await svc.removeUserFromAllGroups('ana');
    await eventually(async () => !(await svc.groupExists('g1')), 10_000, 'ana out of g1');
    await svc.grantPermission(bobId, 'sendToGroup', { targetName: 'g9' });
    await eventually(async () => svc.hasPermission(bobId, 'sendToGroup', { targetName: 'g9' }), 10_000, 'granted');
    expect(await svc.hasPermission(bobId, 'joinLeaveGroup', { targetName: 'g9' })).toBe(true); // its token's all-groups role
    await svc.revokePermission(bobId, 'sendToGroup', { targetName: 'g9' });
    await svc.closeConnection(anaId, { reason: 'bye' });
    await eventually(async () => !(await svc.connectionExists(anaId)), 10_000, 'ana closed');
    await svc.closeUserConnections('bob');
    await eventually(async () => !(await svc.userExists('bob')), 10_000, 'bob closed');
  }, 40_000);

  it('refuses forged, expired and misaddressed REST tokens, unknown hubs, bad filters and bodies over 1 MB', async () => {
    const gw = await startAzureGateway();
    await expect(serviceClient(gw, 'chat', 'another-key-of-at-least-32-bytes!!!!').sendToAll({ a: 1 })).rejects.toMatchObject({ statusCode: 401 });
    await expect(serviceClient(gw, 'nohub').sendToAll({ a: 1 })).rejects.toMatchObject({ statusCode: 404, code: 'GW_ERR_HUB_UNKNOWN' });
    await expect(serviceClient(gw, 'chat').sendToAll({ a: 1 }, { filter: "userId eq 'x" })).rejects.toMatchObject({
      statusCode: 400,
      code: 'GW_ERR_AZURE_FILTER_INVALID',
    });
    await expect(serviceClient(gw, 'chat').sendToAll('x'.repeat(1024 * 1024 + 1), { contentType: 'text/plain' })).rejects.toMatchObject({
      statusCode: 413,
      code: 'GW_ERR_MESSAGE_TOO_LARGE',
    });
    const key = new TextEncoder().encode(ACCESS_KEY);
    const now = Math.floor(Date.now() / 1000);
    const sign = (aud: string, exp: number) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setAudience(aud)
        .setIssuedAt(now - 7200)
        .setExpirationTime(exp)
        .sign(key);
    const post = async (token: string) =>
      (
        await fetch(`${gw.http}/api/hubs/chat/:send?api-version=2024-12-01`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: '{}',
        })
      ).status;
    expect(await post(await sign(`${gw.http}/api/hubs/chat/:send`, now + 600))).toBe(202);
    expect(await post(await sign(`${gw.http}/api/hubs/chat/:send`, now - 600))).toBe(401); // expired
    expect(await post(await sign(`${gw.http}/api/hubs/other/:send`, now + 600))).toBe(401); // for another path
    expect((await fetch(`${gw.http}/api/hubs/chat/:send`, { method: 'POST', body: '{}' })).status).toBe(401);
    const stats = await (await fetch(`${gw.http}/metrics`)).text();
    expect(Number(/gateway_azure_rest_errors_total (\d+)/.exec(stats)![1])).toBeGreaterThanOrEqual(7);
  }, 30_000);
});

describe('Azure Web PubSub client protocols', () => {
  it("refuses a client without webpubsub.sendToGroup with the protocol's Forbidden ack, and delivers fromUserId and noEcho", async () => {
    const gw = await startAzureGateway();
    const svc = serviceClient(gw, 'chat');
    const reader = await startClient(async () => (await svc.getClientAccessToken({ userId: 'reader', roles: ['webpubsub.joinLeaveGroup'] })).url);
    const writer = await startClient(
      async () => (await svc.getClientAccessToken({ userId: 'writer', roles: ['webpubsub.joinLeaveGroup', 'webpubsub.sendToGroup.room'] })).url,
    );
    const readerIn = collect(reader);
    const writerIn = collect(writer);
    await reader.joinGroup('room');
    await writer.joinGroup('room');
    await expect(reader.sendToGroup('room', 'hi', 'text')).rejects.toMatchObject({ name: 'SendMessageError', errorDetail: { name: 'Forbidden' } });
    await expect(writer.sendToGroup('other', 'hi', 'text')).rejects.toMatchObject({ errorDetail: { name: 'Forbidden' } });
    const result = await writer.sendToGroup('room', { from: 'writer' }, 'json', { noEcho: true });
    expect(result.isDuplicated).toBe(false);
    expect(await readerIn.until(1)).toEqual([expect.objectContaining({ group: 'room', fromUserId: 'writer', data: { from: 'writer' } })]);
    await writer.sendToGroup('room', 'echo', 'text');
    expect((await writerIn.until(1))[0]).toMatchObject({ data: 'echo', fromUserId: 'writer' }); // noEcho was off this time
    const noJoin = await startClient(async () => (await svc.getClientAccessToken({ userId: 'nobody' })).url);
    await expect(noJoin.joinGroup('room')).rejects.toMatchObject({ errorDetail: { name: 'Forbidden' } });
  }, 30_000);

  it('a reliable client cut mid-stream resumes its session and loses nothing', async () => {
    const gw = await startAzureGateway();
    const proxy = await startProxy(gw.port);
    const svc = serviceClient(gw, 'chat');
    const client = await startClient(async () =>
      (await svc.getClientAccessToken({ userId: 'tablet', roles: ROLES })).url.replace(`:${gw.port}/`, `:${proxy.port}/`),
    );
    const inbox = collect(client);
    await client.joinGroup('stream');
    const TOTAL = 300;
    const sending = (async () => {
      for (let n = 1; n <= TOTAL; n++) await svc.group('stream').sendToAll({ n });
    })();
    await inbox.until(50);
    proxy.cut(); // the network drops; the gateway keeps the session and queues what follows
    await sending;
    const got = await inbox.until(TOTAL, 20_000);
    expect(got.map((m) => m.data.n)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(metrics).toMatch(/gateway_azure_recoveries_total [1-9]/);
    expect(metrics).toMatch(/gateway_azure_connections_total 1\n/); // resumed, never a new connection
    expect(metrics).toMatch(/gateway_azure_messages_lost_total 0/);
  }, 40_000);

  it('with two edge threads, a resume that lands on the other thread takes the session over and loses nothing', async () => {
    const gw = await startAzureGateway({ GATEWAY_THREADS: '2' });
    const proxy = await startProxy(gw.port);
    const svc = serviceClient(gw, 'chat');
    const CLIENTS = 6;
    const inboxes: ReturnType<typeof collect>[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const client = await startClient(async () =>
        (await svc.getClientAccessToken({ userId: `t${i}`, roles: ROLES })).url.replace(`:${gw.port}/`, `:${proxy.port}/`),
      );
      await client.joinGroup('stream');
      inboxes.push(collect(client));
    }
    const metric = async (name: string) =>
      Number((await (await fetch(`${gw.http}/metrics`)).text()).match(new RegExp(`^gateway_${name} (\\d+)`, 'm'))?.[1] ?? 0);
    // Messages flow all along. Each cut sends all six clients back through the kernel's SO_REUSEPORT
    // choice of thread: after five rounds (30 resumes) the chance that none crossed threads is 2^-30.
    let sent = 0;
    let cutting = true;
    const sending = (async () => {
      while (cutting || sent < 50) await svc.group('stream').sendToAll({ n: ++sent });
    })();
    for (let round = 1; round <= 5; round++) {
      const before = inboxes.map((inbox) => inbox.messages.length);
      await eventually(async () => inboxes.every((inbox, i) => inbox.messages.length > before[i]), 20_000, 'messages flowing');
      proxy.cut();
      await eventually(async () => (await metric('azure_recoveries_total')) >= round * CLIENTS, 20_000, `round ${round} of resumes`);
    }
    cutting = false;
    await sending;
    for (const inbox of inboxes) {
      const got = await inbox.until(sent, 20_000);
      expect(got.map((m) => m.data.n)).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
    }
    expect(await metric('azure_sessions_handed_over_total')).toBeGreaterThan(0);
    expect(await metric('azure_connections_total')).toBe(CLIENTS); // every resume kept its session
    expect(await metric('azure_connections')).toBe(CLIENTS);
    expect(await metric('azure_messages_lost_total')).toBe(0);
    expect(await metric('azure_connection_errors_total')).toBe(0);
  }, 90_000);

  it('a resume while the old socket is still open replaces it, and the connection is counted once', async () => {
    const gw = await startAzureGateway();
    const svc = serviceClient(gw, 'chat');
    const url = (await svc.getClientAccessToken({ userId: 'u', roles: ROLES })).url;
    const first = await rawClient(url, 'json.reliable.webpubsub.azure.v1');
    await eventually(async () => first.frames.length === 1, 10_000, 'connected');
    const { connectionId, reconnectionToken } = first.frames[0];
    const second = await rawClient(
      `${url}&awps_connection_id=${connectionId}&awps_reconnection_token=${reconnectionToken}`,
      'json.reliable.webpubsub.azure.v1',
    );
    expect((await first.closed).code).toBe(1000);
    await eventually(async () => second.frames.length === 1, 10_000, 'connected again');
    expect(second.frames[0]).toMatchObject({ event: 'connected', connectionId });
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(metrics).toMatch(/gateway_azure_connections 1\n/);
    expect(metrics).toMatch(/gateway_azure_recoveries_total 1\n/);
    second.ws.close();
  }, 20_000);

  it('answers bad tokens, unknown hubs, protobuf, failed recoveries and malformed frames as the protocol says', async () => {
    const gw = await startAzureGateway();
    const svc = serviceClient(gw, 'chat');
    const base = `ws://127.0.0.1:${gw.port}/client/hubs`;
    await expect(rawClient(`${base}/chat`, 'json.webpubsub.azure.v1')).rejects.toMatchObject({ status: 401 });
    await expect(rawClient(`${base}/chat?access_token=not-a-jwt`, 'json.webpubsub.azure.v1')).rejects.toMatchObject({ status: 401 });
    const expired = await svc.getClientAccessToken({ userId: 'u', expirationTimeInMinutes: -5 } as any);
    await expect(rawClient(expired.url, 'json.webpubsub.azure.v1')).rejects.toMatchObject({ status: 401 });
    const forOtherHub = (await serviceClient(gw, 'extraccion').getClientAccessToken({ userId: 'u' })).token;
    await expect(rawClient(`${base}/chat?access_token=${forOtherHub}`, 'json.webpubsub.azure.v1')).rejects.toMatchObject({ status: 401 });
    const token = (await svc.getClientAccessToken({ userId: 'u', roles: ROLES })).token;
    await expect(rawClient(`${base}/nohub?access_token=${token}`, 'json.webpubsub.azure.v1')).rejects.toMatchObject({ status: 404 });
    await expect(rawClient(`${base}/chat?access_token=${token}`, 'protobuf.webpubsub.azure.v1')).rejects.toMatchObject({ status: 400 });

    // A recovery of a session that does not exist: opened, then closed with 1008 (the client starts afresh).
    const lost = await rawClient(`${base}/chat?access_token=${token}&awps_connection_id=nope&awps_reconnection_token=nope`, 'json.reliable.webpubsub.azure.v1');
    expect((await lost.closed).code).toBe(1008);

    // Malformed frames: the client is declined, `disconnected` then 1008; ping gets pong, and ack ids are deduplicated.
    for (const bad of [
      'not json',
      '[1]',
      '{"type":"joinGroup"}',
      '{"type":"sendToGroup","group":"g","dataType":"binary","data":"%%%"}',
      '{"type":"teleport"}',
    ]) {
      const c = await rawClient(`${base}/chat?access_token=${token}`, 'json.webpubsub.azure.v1');
      c.ws.send('{"type":"ping"}');
      c.ws.send('{"type":"joinGroup","group":"g","ackId":1}');
      c.ws.send('{"type":"joinGroup","group":"g","ackId":1}');
      c.ws.send(bad);
      const { code } = await c.closed;
      expect(code, bad).toBe(1008);
      expect(c.frames.map((f) => (f.type === 'ack' ? `ack:${f.success}:${f.error?.name ?? ''}` : (f.event ?? f.type)))).toEqual([
        'connected',
        'pong',
        'ack:true:',
        'ack:false:Duplicate',
        'disconnected',
      ]);
      expect(c.frames[4].message).toMatch(/^Invalid message/);
    }

    // A simple client (no subprotocol) gets raw payloads only, and publishes to its group in sendToGroup mode.
    const simple = await rawClient(
      `${base}/chat?access_token=${(await svc.getClientAccessToken({ userId: 's', roles: ['webpubsub.sendToGroup'], groups: ['lobby'] })).token}&webpubsub_mode=sendToGroup&group=lobby`,
    );
    await svc.group('lobby').sendToAll({ raw: true });
    await eventually(async () => simple.frames.length === 1, 10_000, 'raw frame');
    expect(simple.frames[0]).toEqual({ raw: true });
    simple.ws.send('from simple');
    await eventually(async () => simple.frames.length === 2, 10_000, 'own group frame');
    expect(String(simple.frames[1])).toBe('from simple');
    simple.ws.close();
  }, 40_000);
});
