/**
 * Azure Web PubSub's upstream event handlers (GATEWAY_AZURE_EVENT_HANDLERS) against the official
 * server-side handler: a real Express app with `WebPubSubEventHandler` of @azure/web-pubsub-express
 * (so the wire format, the abuse-protection answer and the connect response are the SDK's), the
 * gateway as the service, and the official @azure/web-pubsub-client (json protocol) plus raw `ws`.
 */
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import WebSocket from 'ws';
import { WebPubSubEventHandler, type ConnectRequest, type ConnectedRequest, type DisconnectedRequest, type UserEventRequest } from '@azure/web-pubsub-express';
import { WebPubSubClient, WebPubSubJsonProtocol } from '@azure/web-pubsub-client';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { eventually, type GatewayProcess } from '../helpers/gateway-process.js';
import { ACCESS_KEY, collect, serviceClient, startAzureGateway } from '../helpers/azure.js';

const ORIGIN = 'gateway.test';
const sign = (connectionId: string) => `sha256=${createHmac('sha256', ACCESS_KEY).update(connectionId).digest('hex')}`;
/** The SDK hands the signature over; checking it is the app's job, as the service's docs say. */
const signed = (context: { connectionId: string; signature: string }) => context.signature.split(',').includes(sign(context.connectionId));

interface Seen {
  connects: ConnectRequest[];
  connected: ConnectedRequest[];
  disconnected: DisconnectedRequest[];
  userEvents: UserEventRequest[];
  /** Every request the app got: method, path, ce-hub. */
  requests: { method: string; path: string; hub: string | undefined }[];
}

async function startApp(): Promise<{ url: string; seen: Seen; server: Server }> {
  const seen: Seen = { connects: [], connected: [], disconnected: [], userEvents: [], requests: [] };
  const chat = new WebPubSubEventHandler('chat', {
    allowedEndpoints: [`http://${ORIGIN}`], // the SDK answers WebHook-Allowed-Origin: gateway.test
    handleConnect(req, res) {
      seen.connects.push(req);
      if (!signed(req.context)) return res.fail(401, 'bad signature');
      if (req.queries?.reject) return res.fail(401, 'not you');
      if (req.queries?.hang) return; // never answers: the gateway's timeout refuses the client
      res.success({ userId: 'user-from-handler', groups: ['from-handler'], roles: ['webpubsub.sendToGroup'] });
    },
    onConnected(req) {
      seen.connected.push(req);
    },
    onDisconnected(req) {
      seen.disconnected.push(req);
    },
    handleUserEvent(req, res) {
      seen.userEvents.push(req);
      if (!signed(req.context)) return res.fail(401, 'bad signature');
      if (req.context.eventName === 'fail') return res.fail(500, 'broken');
      if (req.dataType === 'json') return res.success(JSON.stringify({ echo: req.data }), 'json');
      res.success(`echo:${req.data as string}`, 'text');
    },
  });
  // Allows another origin only: the gateway must not use it
  const denied = new WebPubSubEventHandler('denied', {
    allowedEndpoints: ['https://other.example'],
    handleConnect: (req, res) => res.fail(401, 'should never be asked'),
  });
  const app = express();
  app.use((req, _res, next) => {
    seen.requests.push({ method: req.method, path: req.path, hub: req.header('ce-hub') });
    next();
  });
  app.use(chat.getMiddleware());
  app.use(denied.getMiddleware());
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const metric = async (gw: GatewayProcess, name: string) =>
  Number((await (await fetch(`${gw.http}/metrics`)).text()).match(new RegExp(`^gateway_${name} (\\d+)`, 'm'))?.[1] ?? 0);

function rawClient(url: string, protocol?: string): Promise<{ ws: WebSocket; frames: any[]; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocol ? [protocol] : []);
    const frames: any[] = [];
    ws.on('message', (data) => {
      const text = (data as Buffer).toString();
      try {
        frames.push(JSON.parse(text));
      } catch {
        frames.push(text);
      }
    });
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('open', () => resolve({ ws, frames, closed }));
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
  });
}

describe('Azure upstream event handlers, with the official @azure/web-pubsub-express handler', () => {
  let app: Awaited<ReturnType<typeof startApp>>;
  let gw: GatewayProcess;

  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => {
    app.server.closeAllConnections();
    await new Promise((r) => app.server.close(r));
  });

  async function gateway(extra: Record<string, string> = {}): Promise<GatewayProcess> {
    const template = `${app.url}/api/webpubsub/hubs/{hub}/`;
    const setting = { urlTemplate: template, userEventPattern: '*', systemEvents: ['connect', 'connected', 'disconnected'] };
    return startAzureGateway({
      GATEWAY_AZURE_HUBS: 'extraccion,chat,denied',
      GATEWAY_AZURE_EVENT_HANDLERS: JSON.stringify({ chat: [setting], denied: [setting] }),
      GATEWAY_AZURE_WEBHOOK_ORIGIN: ORIGIN,
      GATEWAY_AZURE_EVENT_HANDLER_TIMEOUT_MS: '1000',
      ...extra,
    });
  }

  it('connect sets the userId and groups, connected/user events/disconnected reach the app, signed with the access key', async () => {
    gw = await gateway();
    onTestFinished(async () => void (await gw.stop()));
    const svc = serviceClient(gw, 'chat');
    const client = new WebPubSubClient(
      { getClientAccessUrl: async () => (await svc.getClientAccessToken({ userId: 'token-user' })).url },
      { protocol: WebPubSubJsonProtocol(), autoReconnect: false, messageRetryOptions: { maxRetries: 0 } },
    );
    const connectedEvent = new Promise<{ connectionId: string; userId?: string }>((r) => client.on('connected', r)); // emitted just after start resolves
    const inbox = collect(client);
    await client.start();
    onTestFinished(() => client.stop());
    const connected = await connectedEvent;

    // The handler's userId is the connection's: the client's `connected` says so
    expect(connected.userId).toBe('user-from-handler');
    const connectionId = connected.connectionId;
    const connect = app.seen.connects.at(-1)!;
    expect(connect.context).toMatchObject({ hub: 'chat', connectionId, userId: 'token-user', eventName: 'connect', origin: ORIGIN });
    expect(signed(connect.context)).toBe(true);
    expect(connect.claims?.sub).toEqual(['token-user']);
    // The abuse-protection OPTIONS came first, once
    expect(app.seen.requests.filter((r) => r.method === 'OPTIONS' && r.path === '/api/webpubsub/hubs/chat/')).toHaveLength(1);

    // The handler's group: a send to it reaches the client
    await svc.group('from-handler').sendToAll({ hello: 'group' });
    expect((await inbox.until(1)).map((m) => [m.kind, m.group, m.data])).toEqual([['groupData', 'from-handler', { hello: 'group' }]]);

    const seenConnected = await eventually(async () => app.seen.connected.find((c) => c.context.connectionId === connectionId), 5_000, 'connected event');
    expect(seenConnected.context).toMatchObject({ hub: 'chat', userId: 'user-from-handler', eventName: 'connected' });
    expect(signed(seenConnected.context)).toBe(true);

    // A user event: the handler's answer comes back as a server message, before the ack
    await client.sendEvent('echo', 'hello', 'text');
    await client.sendEvent('echo', { n: 1 }, 'json');
    expect((await inbox.until(3)).slice(1).map((m) => [m.kind, m.dataType, m.data])).toEqual([
      ['serverData', 'text', 'echo:hello'],
      ['serverData', 'json', { echo: { n: 1 } }],
    ]);
    const events = app.seen.userEvents.filter((e) => e.context.connectionId === connectionId);
    expect(events.map((e) => [e.context.eventName, e.context.userId, e.dataType, e.data])).toEqual([
      ['echo', 'user-from-handler', 'text', 'hello'],
      ['echo', 'user-from-handler', 'json', { n: 1 }],
    ]);

    client.stop();
    const gone = await eventually(async () => app.seen.disconnected.find((c) => c.context.connectionId === connectionId), 5_000, 'disconnected event');
    expect(gone.context).toMatchObject({ hub: 'chat', userId: 'user-from-handler', eventName: 'disconnected' });
    expect(typeof gone.reason).toBe('string');

    // A simple client's frames are `message` events; the answer comes back as a raw frame
    const simple = await rawClient((await svc.getClientAccessToken({ userId: 'simple' })).url);
    simple.ws.send('ping');
    await eventually(async () => simple.frames.length > 0, 5_000, 'the simple answer');
    expect(simple.frames).toEqual(['echo:ping']);
    const message = app.seen.userEvents.at(-1)!;
    expect([message.context.eventName, message.dataType, message.data]).toEqual(['message', 'text', 'ping']);
    simple.ws.close();

    // A failing user event drops the connection, as the service does
    const json = await rawClient((await svc.getClientAccessToken({ userId: 'failing' })).url, 'json.webpubsub.azure.v1');
    json.ws.send(JSON.stringify({ type: 'event', event: 'fail', dataType: 'text', data: 'x', ackId: 1 }));
    expect(await json.closed).toBe(1008);
    expect(json.frames.map((f) => f.type ?? f.event)).toEqual(['system', 'ack', 'system']);
    expect(json.frames[1]).toMatchObject({ ackId: 1, success: false });

    expect(await metric(gw, 'azure_upstream_requests_total')).toBeGreaterThanOrEqual(9);
    expect(await metric(gw, 'azure_upstream_failures_total')).toBeGreaterThanOrEqual(1);
  });

  it('with two edge threads and the reliable protocol, each event is posted once, by the thread holding the connection', async () => {
    gw = await gateway({ GATEWAY_THREADS: '2' });
    onTestFinished(async () => void (await gw.stop()));
    const svc = serviceClient(gw, 'chat');
    const clients = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const client = new WebPubSubClient(
          { getClientAccessUrl: async () => (await svc.getClientAccessToken({ userId: `r${i}` })).url },
          { autoReconnect: false },
        );
        const connected = new Promise<{ connectionId: string }>((r) => client.on('connected', r));
        const inbox = collect(client);
        onTestFinished(() => client.stop());
        await client.start();
        return { client, inbox, id: (await connected).connectionId };
      }),
    );
    for (const [i, c] of clients.entries()) await c.client.sendEvent('echo', `n${i}`, 'text');
    for (const [i, c] of clients.entries()) {
      const [reply] = await c.inbox.until(1);
      expect([reply.kind, reply.data]).toEqual(['serverData', `echo:n${i}`]); // reliable: carried with a sequenceId, acked
    }
    const ids = clients.map((c) => c.id);
    await eventually(async () => ids.every((id) => app.seen.connected.some((e) => e.context.connectionId === id)), 5_000, 'connected events');
    const count = (list: { context: { connectionId: string } }[], id: string) => list.filter((e) => e.context.connectionId === id).length;
    for (const id of ids) expect([count(app.seen.connects, id), count(app.seen.connected, id), count(app.seen.userEvents, id)]).toEqual([1, 1, 1]);
  });

  it('a connect handler that refuses, or does not answer in time, refuses the connection; no connected or disconnected follows', async () => {
    gw = await gateway();
    onTestFinished(async () => void (await gw.stop()));
    const svc = serviceClient(gw, 'chat');
    const url = (await svc.getClientAccessToken({ userId: 'refused' })).url;
    await expect(rawClient(`${url}&reject=1`, 'json.webpubsub.azure.v1')).rejects.toMatchObject({ status: 401 });
    const started = Date.now();
    await expect(rawClient(`${url}&hang=1`, 'json.webpubsub.azure.v1')).rejects.toMatchObject({ status: 500 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900); // GATEWAY_AZURE_EVENT_HANDLER_TIMEOUT_MS
    // The official client cannot start either
    const client = new WebPubSubClient({ getClientAccessUrl: async () => `${url}&reject=1` }, { protocol: WebPubSubJsonProtocol(), autoReconnect: false });
    onTestFinished(() => client.stop());
    await expect(client.start()).rejects.toThrow();
    const refused = app.seen.connects.filter((c) => c.queries?.reject || c.queries?.hang).map((c) => c.context.connectionId);
    expect(refused.length).toBeGreaterThanOrEqual(3);
    const later = [...app.seen.connected, ...app.seen.disconnected].map((c) => c.context.connectionId);
    expect(later.filter((id) => refused.includes(id))).toEqual([]);
    expect(await metric(gw, 'azure_connection_errors_total')).toBeGreaterThanOrEqual(3);
  });

  it('a handler that does not allow our origin is not used: the client connects without it, counted', async () => {
    gw = await gateway();
    onTestFinished(async () => void (await gw.stop()));
    const svc = serviceClient(gw, 'denied');
    const client = new WebPubSubClient(
      { getClientAccessUrl: async () => (await svc.getClientAccessToken({ userId: 'plain' })).url },
      { protocol: WebPubSubJsonProtocol(), autoReconnect: false },
    );
    const connectedEvent = new Promise<{ userId?: string }>((r) => client.on('connected', r));
    onTestFinished(() => client.stop());
    await client.start();
    expect((await connectedEvent).userId).toBe('plain'); // the token's: the handler was never asked
    await client.sendEvent('anything', 'x', 'text');
    expect(await metric(gw, 'azure_upstream_validation_failures_total')).toBe(1);
    expect(await metric(gw, 'azure_upstream_dropped_total')).toBeGreaterThanOrEqual(2); // connect and the event, at least
    const toDenied = app.seen.requests.filter((r) => r.path === '/api/webpubsub/hubs/denied/');
    expect(toDenied.length).toBeGreaterThanOrEqual(1);
    expect(toDenied.every((r) => r.method === 'OPTIONS')).toBe(true);
    expect(gw.logs.some((l) => String(l.msg).includes('abuse-protection'))).toBe(true);
  });
});
