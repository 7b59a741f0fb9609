/**
 * 7. Azure Web PubSub: N reliable clients (json.reliable.webpubsub.azure.v1) in one group, and a
 * publisher sending group messages to it, at fixed rates, by the two ways a backend has:
 *
 *   bus   the MQTT topic <GATEWAY_AZURE_TOPIC>/<hub>: the command line
 *         {"op":"send","to":{"kind":"group","name":…},"dataType":"json"}, "\n", the payload's bytes
 *   REST  POST /api/hubs/<hub>/groups/<group>/:send?api-version=… with the access key's HS256 token
 *         (aud = the request URL), the request @azure/web-pubsub's group(…).sendToAll makes
 *
 * The clients connect to /client/hubs/<hub>?access_token=… with a token from the official SDK's
 * getClientAccessToken({ groups }) (joined at connect), run on the load client's raw WebSocket in
 * worker threads, and acknowledge as the official client does (cumulative sequenceAck, see
 * worker-messages.ts). The payload is the telemetry payload of every other scenario, TS included,
 * so latency is publish → receive on one clock, and the messages are the size of the broadcast's.
 *
 * Baselines in the same run, same clients, rates and payload: the gateway's own telemetry broadcast
 * (one device, every connection watching it; same process) and bare uWS's broadcast (the ceiling:
 * a topic per device, app.publish). Each step gets a fresh group, and each Azure step ends with the
 * SDK's closeAllConnections, so no reliable session of one step (they outlive their socket for
 * GATEWAY_AZURE_SESSION_TTL_S) collects the next step's messages.
 */
import { Agent, request } from 'node:http';
import { WebPubSubServiceClient } from '@azure/web-pubsub';
import { SignJWT } from 'jose';
import { ControlAuth } from '../../src/ingest/control-auth.js';
import { deviceIds } from '../load/assignment.js';
import { startGateway } from '../load/gateway-process.js';
import { loopbackMqtt, type MessageSender } from '../load/load-run.js';
import { connectPublisher, nowTs, payloadHead, telemetryPayload } from '../load/publisher.js';
import { getTwice, measure, settle, type RunNumbers, type RunSizes } from './scenarios.js';
import { startTarget, TARGET_SPECS, type RunningTarget } from './targets.js';

interface AzureSizes extends RunSizes {
  readonly clients: number;
  /**
   * Group messages per second, one step each, rising: an Azure route that did not keep up at a rate
   * (keptUp) is not run at the higher ones; the baselines run at every rate an Azure route ran at.
   */
  readonly rates: readonly number[];
  /** sequenceAck after this many messages, and every ackIntervalMs (the official client: 1000 ms). */
  readonly ackEvery: number;
  readonly ackIntervalMs: number;
}

export const AZURE_FULL: AzureSizes = {
  clients: 1000,
  rates: [10, 50, 100, 200, 400],
  warmupS: 2,
  durationS: 5,
  clientThreads: 2,
  ackEvery: 100,
  ackIntervalMs: 1000,
};
export const AZURE_QUICK: AzureSizes = { clients: 300, rates: [100, 1000], warmupS: 1, durationS: 2, clientThreads: 1, ackEvery: 100, ackIntervalMs: 1000 };
export const AZURE_SMOKE: AzureSizes = { clients: 20, rates: [50], warmupS: 0.5, durationS: 1, clientThreads: 1, ackEvery: 100, ackIntervalMs: 1000 };

type AzureRoute = 'azure-bus' | 'azure-rest' | 'gateway-stream' | 'uws-bare';

export const AZURE_ROUTE_LABELS: Readonly<Record<AzureRoute, string>> = {
  'azure-bus': 'Azure, publish on bus',
  'azure-rest': 'Azure, publish on REST',
  'gateway-stream': 'gateway telemetry',
  'uws-bare': 'bare uWS (ceiling)',
};

export interface AzureRow {
  readonly route: AzureRoute;
  readonly run: RunNumbers;
}

export interface AzureResult {
  readonly clients: number;
  /** The rates that ran (an Azure route stops after a rate it did not keep up with). */
  readonly rates: readonly number[];
  /** The message's payload (telemetry JSON with TS), bytes. */
  readonly payloadBytes: number;
  readonly ackEvery: number;
  readonly ackIntervalMs: number;
  readonly hub: string;
  /** Every step: for each rate, bus, REST and the gateway's telemetry, then bare uWS for each rate. */
  readonly rows: AzureRow[];
  readonly errors: string[];
}

const ACCESS_KEY = 'bench-azure-access-key-with-at-least-32-bytes';
const HUB = 'bench';
const TOPIC = 'gateway/azure';
/** Bus commands are control messages: the publisher tags each one as a backend does (docs/guide/security.md, "Authenticated control messages"). */
const CLUSTER_KEY = 'bench-cluster-key-with-at-least-32-bytes-0123';
const auth = new ControlAuth(CLUSTER_KEY, Number.POSITIVE_INFINITY);

/** A step kept up: nothing lost, no session ended, and ≥ 90 % of the offered deliveries per second. */
export function keptUp(run: RunNumbers, clients: number): boolean {
  return run.lost === 0 && run.errors.length === 0 && run.deliveriesPerS >= 0.9 * clients * run.rate;
}

/** Sum of a gateway counter over its label sets, from /metrics. */
async function gatewayCounter(port: number, name: string): Promise<number | null> {
  const text = await (await getTwice(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    seen = true;
  }
  return seen ? sum : null;
}

/** Group messages on the bus topic, as a backend publishes them (QoS 0, Nagle off). */
async function busSender(mqttUrl: string, group: string, ids: readonly string[]): Promise<MessageSender> {
  const client = await connectPublisher(loopbackMqtt(mqttUrl));
  let lost: string | undefined;
  client.on('close', () => (lost ??= 'bus publisher connection closed during the run'));
  client.on('error', (err) => (lost ??= `bus publisher error: ${err.message}`));
  const line = `${JSON.stringify({ op: 'send', to: { kind: 'group', name: group }, dataType: 'json' })}\n`;
  const heads = ids.map(payloadHead);
  const topic = `${TOPIC}/${HUB}`;
  return {
    send: (device, ts) => void client.publish(topic, auth.sign(topic, line + telemetryPayload(heads[device], ts)), { qos: 0 }),
    flush: async () => undefined,
    errors: () => (lost === undefined ? [] : [lost]),
    close: () => void client.end(true),
  };
}

/**
 * Group messages through the REST data plane: the request @azure/web-pubsub makes (same path,
 * api-version, content type, and an HS256 token with aud = the request URL), on keep-alive
 * connections. The SDK signs a token per request; this signs one per run (the gateway checks each
 * request's token all the same), so the publisher's CPU goes to HTTP, not to the SDK's pipeline.
 */
async function restSender(port: number, group: string, apiVersion: string, ids: readonly string[]): Promise<MessageSender> {
  const path = `/api/hubs/${HUB}/groups/${encodeURIComponent(group)}/:send?api-version=${apiVersion}`;
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setAudience(`http://127.0.0.1:${port}${path}`)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(new TextEncoder().encode(ACCESS_KEY));
  const agent = new Agent({ keepAlive: true, maxSockets: 16, noDelay: true } as ConstructorParameters<typeof Agent>[0]);
  const heads = ids.map(payloadHead);
  const errors: string[] = [];
  let failed = 0;
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const fail = (why: string) => {
    if (failed++ === 0) errors.push(why);
  };
  const done = () => {
    if (--inFlight === 0) idle?.();
  };
  return {
    send(device, ts) {
      const body = telemetryPayload(heads[device], ts);
      inFlight++;
      const req = request(
        {
          agent,
          host: '127.0.0.1',
          port,
          method: 'POST',
          path,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          if (res.statusCode !== 202) fail(`REST send answered ${res.statusCode}`);
          res.resume();
          res.on('end', done);
          res.on('error', done);
        },
      );
      req.on('error', (err) => {
        fail(`REST send failed: ${err.message}`);
        done();
      });
      req.end(body);
    },
    async flush() {
      if (inFlight === 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          fail(`${inFlight} REST sends unanswered 10 s after the last one`);
          resolve();
        }, 10_000);
        idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
    errors: () => (failed > 1 ? [...errors, `${failed} REST sends failed in all`] : errors),
    close: () => agent.destroy(),
  };
}

export async function azure(repoRoot: string, mqttUrl: string, sizes: AzureSizes, say: (l: string) => void): Promise<AzureResult> {
  const ids = deviceIds(1);
  const rows: AzureRow[] = [];
  const errors: string[] = [];
  const shape = { connections: sizes.clients, perConn: 1, devices: 1, encoding: 'json' as const };
  /** Rates at which an Azure route ran: the baselines run at the same ones. */
  const ranRates: number[] = [];

  const gateway = await startGateway({
    repoRoot,
    mqttUrl,
    logLevel: 'info',
    startTimeoutMs: 20_000,
    env: { GATEWAY_AZURE_ACCESS_KEY: ACCESS_KEY, GATEWAY_AZURE_HUBS: HUB, GATEWAY_AZURE_TOPIC: TOPIC, GATEWAY_CLUSTER_KEY: CLUSTER_KEY },
  }).catch((err: Error) => {
    throw new Error(`gateway (azure): ${err.message.split('\n').slice(0, 1).concat(err.message.split('\n').slice(-2)).join(' / ')}`);
  });
  try {
    const service = new WebPubSubServiceClient(`Endpoint=http://127.0.0.1:${gateway.port};AccessKey=${ACCESS_KEY};Version=1.0;`, HUB, {
      allowInsecureConnection: true,
      retryOptions: { maxRetries: 2, retryDelayInMs: 100 },
    });
    const target: RunningTarget = {
      spec: TARGET_SPECS.gateway,
      server: gateway,
      mqttUrl,
      stop: async () => {
        await gateway.stop();
      },
    };
    const lostMessages = () => gatewayCounter(gateway.port, 'gateway_azure_messages_lost_total');
    let step = 0;
    const stopped = new Set<AzureRoute>();
    for (const rate of sizes.rates) {
      const routes = (['azure-bus', 'azure-rest'] as const).filter((route) => !stopped.has(route));
      if (routes.length === 0) break;
      ranRates.push(rate);
      for (const route of routes) {
        const group = `bench-${++step}`;
        const { url } = await service.getClientAccessToken({ groups: [group] });
        const path = url.slice(url.indexOf('/client/'));
        say(`azure: ${sizes.clients} reliable clients in group ${group}, ${rate} msg/s via ${route === 'azure-bus' ? `the bus (${TOPIC}/${HUB})` : 'REST'}`);
        const azureTarget: RunningTarget = {
          ...target,
          spec: { ...TARGET_SPECS.gateway, label: AZURE_ROUTE_LABELS[route], path, dialect: 'azure', encodings: ['json'] },
        };
        try {
          const run = await measure(
            azureTarget,
            {
              ...shape,
              rate,
              ackEvery: sizes.ackEvery,
              ackIntervalMs: sizes.ackIntervalMs,
              serverCounters: lostMessages,
              sender: async () => {
                if (route === 'azure-bus') return busSender(mqttUrl, group, ids);
                // The official SDK first, once: the route answers it as the real service does (throws otherwise).
                await service.group(group).sendToAll({ bench: 'sdk check' });
                return restSender(gateway.port, group, service.apiVersion, ids);
              },
            },
            sizes,
            say,
          );
          rows.push({ route, run });
          if (!keptUp(run, sizes.clients)) {
            stopped.add(route);
            say(
              `azure: ${route} did not keep up at ${rate} msg/s (${Math.round(run.deliveriesPerS)} of ${sizes.clients * rate} deliveries/s, ${run.lost} lost); no higher rate for it`,
            );
          }
        } catch (err) {
          stopped.add(route);
          errors.push(`${route} at ${rate} msg/s: ${(err as Error).message.split('\n')[0]}`);
          const last = gateway.logTail().at(-1);
          if (last !== undefined) errors.push(`gateway's last log line: ${last.slice(0, 300)}`);
        } finally {
          // End the step's sessions (they outlive their sockets); their unacknowledged tail counts as lost there.
          await service.closeAllConnections().catch((err: Error) => errors.push(`closeAllConnections: ${err.message}`));
        }
      }
      say(`azure: baseline, the gateway's telemetry broadcast to ${sizes.clients} connections at ${rate} msg/s`);
      try {
        rows.push({ route: 'gateway-stream', run: await measure(target, { ...shape, rate }, sizes, say) });
      } catch (err) {
        errors.push(`gateway telemetry at ${rate} msg/s: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    await settle(target);
  } finally {
    await gateway.stop();
  }

  // The ceiling, on its own process after the gateway is gone.
  let bare: RunningTarget | undefined;
  try {
    bare = await startTarget('uws-bare', repoRoot, mqttUrl);
    for (const rate of ranRates) {
      say(`azure: baseline, bare uWS broadcast to ${sizes.clients} connections at ${rate} msg/s`);
      rows.push({ route: 'uws-bare', run: await measure(bare, { ...shape, rate }, sizes, say) });
    }
  } catch (err) {
    errors.push(`bare uWS: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await bare?.stop();
  }
  // Identical reasons (every worker keeps a few) once each, with their count.
  const seen = new Map<string, number>();
  for (const row of rows)
    for (const e of row.run.errors) {
      const key = `${row.route} at ${row.run.rate} msg/s: ${e}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  for (const [e, count] of seen) errors.push(count > 1 ? `${e} (×${count})` : e);
  return {
    clients: sizes.clients,
    rates: ranRates,
    payloadBytes: Buffer.byteLength(telemetryPayload(payloadHead(ids[0], 0), nowTs())),
    ackEvery: sizes.ackEvery,
    ackIntervalMs: sizes.ackIntervalMs,
    hub: HUB,
    rows,
    errors,
  };
}
