/**
 * Azure upstream event handlers in a cluster: each event is posted once, by the node that holds
 * the connection (azure-upstream.ts). Two nodes on one Mosquitto and PostgreSQL, one real Express
 * app with the official @azure/web-pubsub-express handler as the upstream of both; each node sends
 * its own WebHook-Request-Origin (a.test, b.test), so every request the app gets names its node.
 * A client on A (the official @azure/web-pubsub-client, json protocol: its own stop ends its
 * connection at once, where a reliable one waits GATEWAY_AZURE_SESSION_TTL_S) and a reliable one on B: connect, connected, a user
 * event and disconnected arrive once each, from the node that holds the connection, signed for it;
 * a REST close from A of B's connection produces one `disconnected`, from B.
 */
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { WebPubSubEventHandler } from '@azure/web-pubsub-express';
import { WebPubSubJsonProtocol, type WebPubSubClient } from '@azure/web-pubsub-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_KEY, serviceClient, startClient } from '../helpers/azure.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, type GatewayProcess } from '../helpers/gateway-process.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

/** One request the app got: the event, the connection, the node (its origin), and whether it was signed for the connection. */
interface Posted {
  readonly type: string;
  readonly connectionId: string;
  readonly userId: string | undefined;
  readonly origin: string;
  readonly signed: boolean;
}

const sign = (connectionId: string) => `sha256=${createHmac('sha256', ACCESS_KEY).update(connectionId).digest('hex')}`;

async function startApp(): Promise<{ url: string; posted: Posted[]; validations: string[]; server: Server }> {
  const posted: Posted[] = [];
  const validations: string[] = [];
  const handler = new WebPubSubEventHandler('chat', {
    allowedEndpoints: ['http://a.test', 'http://b.test'],
    handleConnect: (_req, res) => res.success({ groups: ['from-handler'] }),
    handleUserEvent: (req, res) => res.success(`echo:${req.data as string}`, 'text'),
    onConnected: () => undefined,
    onDisconnected: () => undefined,
  });
  const app = express();
  app.use((req, _res, next) => {
    const origin = req.header('webhook-request-origin') ?? '';
    if (req.method === 'OPTIONS') validations.push(origin);
    else {
      const connectionId = req.header('ce-connectionid') ?? '';
      posted.push({
        type: req.header('ce-type') ?? '',
        connectionId,
        userId: req.header('ce-userid'),
        origin,
        signed: (req.header('ce-signature') ?? '').split(',').includes(sign(connectionId)),
      });
    }
    next();
  });
  app.use(handler.getMiddleware());
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, posted, validations, server };
}

let postgres: Postgres;
let app: Awaited<ReturnType<typeof startApp>>;
beforeAll(async () => {
  [postgres, app] = await Promise.all([startPostgres(), startApp()]);
});
afterAll(async () => {
  app?.server.closeAllConnections();
  await new Promise((r) => app?.server.close(r));
  await postgres?.stop();
});

async function clientOn(gw: GatewayProcess, userId: string, reliable = false): Promise<{ client: WebPubSubClient; id: string; stopped: Promise<void> }> {
  const svc = serviceClient(gw, 'chat');
  const client = await startClient(async () => (await svc.getClientAccessToken({ userId })).url, {
    autoReconnect: false,
    ...(reliable ? {} : { protocol: WebPubSubJsonProtocol() }),
  });
  const stopped = new Promise<void>((resolve) => client.on('stopped', () => resolve()));
  return { client, id: await eventually(async () => (client as any)._connectionId as string | undefined, 10_000, 'the connected message'), stopped };
}

describe('Azure upstream event handlers across nodes', { timeout: 40_000 }, () => {
  it('posts each event once, from the node that holds the connection', async () => {
    const setting = { urlTemplate: `${app.url}/api/webpubsub/hubs/{hub}/`, userEventPattern: '*', systemEvents: ['connect', 'connected', 'disconnected'] };
    const cluster = await startCluster({
      nodes: 1,
      postgres,
      env: { GATEWAY_AZURE_EVENT_HANDLERS: JSON.stringify({ chat: [setting] }), GATEWAY_AZURE_WEBHOOK_ORIGIN: 'a.test' },
    });
    const a = cluster.nodes[0];
    const b = await cluster.addNode({ GATEWAY_AZURE_WEBHOOK_ORIGIN: 'b.test' });
    const svcA = serviceClient(a, 'chat');

    const onA = await clientOn(a, 'ann');
    const onB = await clientOn(b, 'ben', true); // reliable: the REST close ends its session (1008), no resume
    const node = { [onA.id]: 'a.test', [onB.id]: 'b.test' };
    for (const c of [onA, onB]) {
      const answer = await c.client.sendEvent('message', `from ${c.id}`, 'text', { fireAndForget: false });
      expect(answer.isDuplicated).toBe(false);
    }
    await eventually(() => svcA.connectionExists(onB.id), 10_000, "A sees B's connection");
    await svcA.closeConnection(onB.id, { reason: 'closed from A' }); // A's REST, B's connection
    await onB.stopped;
    onA.client.stop();
    await onA.stopped;

    const expected = ['azure.webpubsub.sys.connect', 'azure.webpubsub.sys.connected', 'azure.webpubsub.user.message', 'azure.webpubsub.sys.disconnected'];
    const of = (id: string) => app.posted.filter((p) => p.connectionId === id);
    await eventually(async () => of(onA.id).length >= 4 && of(onB.id).length >= 4, 10_000, 'every event of both connections').catch((err: unknown) => {
      throw new Error(`${String(err)}: ${JSON.stringify({ ids: [onA.id, onB.id], posted: app.posted })}`);
    });
    // A fence for what could still come twice: a third connection on each node, its own events all in.
    // A second copy of an earlier event would have been posted before these (each node posts in order).
    const fences = [await clientOn(a, 'fence-a'), await clientOn(b, 'fence-b')];
    for (const f of fences) f.client.stop();
    await Promise.all(fences.map((f) => f.stopped));
    await eventually(async () => fences.every((f) => of(f.id).some((p) => p.type === 'azure.webpubsub.sys.disconnected')), 10_000, "the fences' disconnected");

    for (const c of [onA, onB]) {
      const events = of(c.id);
      expect(events.map((p) => p.type)).toEqual(expected); // once each, in order
      expect(events.every((p) => p.origin === node[c.id] && p.signed)).toBe(true); // from the node that holds it, signed
    }
    expect(of(onA.id)[0].userId).toBe('ann');
    expect(of(onB.id)[3].userId).toBe('ben');
    expect(new Set(app.validations)).toEqual(new Set(['a.test', 'b.test'])); // each node checked the upstream itself
  });
});
