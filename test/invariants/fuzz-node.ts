/**
 * The node under fuzz: the real gateway process (embedded broker, SQLite, every thread), with
 * well-behaved clients on every route family, and the invariant check run after each batch:
 *
 *   - the process lives; /healthz and /readyz answer 200;
 *   - every thread makes progress: a sentinel position (MQTT → ingest → edge) reaches the stream
 *     clients in JSON and msgpack, a sentinel entity event (REST → store pool → outbox → bus →
 *     ingest → edge) reaches the channel clients with the next offset and no gap, a sentinel
 *     notification reaches the /ws/connect user, a sentinel Azure group message its member, and a
 *     share-location viewer is let in (its link checked on the token pool);
 *   - the well-behaved clients were never disconnected and decoded every frame they got;
 *   - the counters add up: every telemetry message received is processed or rejected, every
 *     channel message is published, rejected or dropped as a copy, the connection gauges come back
 *     to the bystanders' count, and rejections the batch caused are counted.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { SignJWT } from 'jose';
import { onTestFinished } from 'vitest';
import { ACCESS_KEY, EQUIPMENT } from '../helpers/azure.js';
import { channelEnv } from '../helpers/channels.js';
import { startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';
import { signControl } from '../helpers/control-key.js';
import { BACKEND_LOGIN } from '../helpers/publisher.js';
import { mintJwt } from '../helpers/tokens.js';
import { Bystander } from './bystander.js';

export const SENTINEL_DEVICE = 'SENTINEL-1';
export const SENTINEL_USER = 'sentinel-user';
/** The hub and group of the Azure bystander; the fuzzer never sends valid closes or leaves there. */
export const SENTINEL_HUB = 'chat';
export const SENTINEL_GROUP = 'sentinel';
/** The channel the channel bystanders watch; the fuzzer publishes no user-addressed events on it (they would skip offsets for the bystanders, by design). */
export const SENTINEL_CHANNEL = 'sensors';
/**
 * Put in tokens and frames the fuzzer sends: what a client sends must never reach the log (tokens
 * never do, docs/guide/authentication.md; a bad frame's warning describes it without its content).
 */
export const SECRET_MARK = 'FZSECRET';

/** What a batch did that the counters must show. */
export interface Expectations {
  /** Messages published on telemetry topics (gps/…). */
  telemetry: number;
  /** Messages published on gateway/channels/… by the fuzzer. */
  channelMessages: number;
  /** Messages published on gateway/azure/<hub>. */
  azureCommands: number;
  /** Event and revocation messages that are certainly malformed. */
  controlRejected: number;
  /** Control messages without a valid tag (GATEWAY_CLUSTER_KEY): dropped before any handler. */
  unauthenticated: number;
  /** Error frames for bad frames the fuzz clients received (each one counted). */
  badFramesAtLeast: number;
  /** Client frames the fuzz clients sent (bad_frames_total cannot pass it). */
  framesSent: number;
  /** Upgrades answered 400 GW_ERR_UNSUPPORTED_SUBPROTOCOL. */
  subprotocolRefusals: number;
  /** Connections refused after the upgrade (error frame, then 4500 or 1008) on the stream and channel routes. */
  refusedAtOpen: number;
  /** Answered requests to the routes the store pool serves (collections, publish API, trips, equipment). */
  storeCalls: number;
  /** Those answered with an error status. */
  storeErrors: number;
  /** Requests answered 404 GW_ERR_NOT_FOUND by the catch-all route. */
  notFound: number;
  /** Requests and upgrades answered 400 GW_ERR_ENCODING_INVALID (refused before any route sees them). */
  encodingRefusals: number;
}

export const noExpectations = (): Expectations => ({
  telemetry: 0,
  channelMessages: 0,
  azureCommands: 0,
  controlRejected: 0,
  unauthenticated: 0,
  badFramesAtLeast: 0,
  framesSent: 0,
  subprotocolRefusals: 0,
  refusedAtOpen: 0,
  storeCalls: 0,
  storeErrors: 0,
  notFound: 0,
  encodingRefusals: 0,
});

export function addExpectations(into: Expectations, more: Partial<Expectations>): void {
  for (const [k, v] of Object.entries(more) as [keyof Expectations, number][]) into[k] += v;
}

export type Counters = Readonly<Record<string, number>>;

const GAUGES = ['gateway_connections', 'gateway_channel_connections', 'gateway_user_connections', 'gateway_azure_connections'] as const;

export interface FuzzNode {
  readonly gw: GatewayProcess;
  readonly port: number;
  readonly bus: MqttClient;
  readonly adminToken: string;
  readonly viewerToken: string;
  /** A share-location link for SENTINEL_DEVICE. */
  readonly shareToken: string;
  readonly stderr: () => string;
  azureRestToken(path: string): Promise<string>;
  azureClientToken(hub: string, o?: { userId?: string; roles?: string[]; groups?: string[] }): Promise<string>;
  /** Client tokens for the hubs `extraccion`, `chat` and `nohub` (user `fz`, may join and send anywhere), signed at start. */
  readonly azureClientTokens: Readonly<Record<string, string>>;
  counters(): Promise<Counters>;
  alive(): boolean;
  /**
   * When the process (or the thread serving the bystanders) went away, ms since the epoch: the
   * first of its exit and the bystanders' disconnections with 1006; null while all is well.
   */
  diedAt(): number | null;
  /** The invariants after a batch; [] when all hold. */
  check(before: Counters, expected: Expectations): Promise<string[]>;
  stop(): Promise<void>;
}

export function parseMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return out;
}

async function within<T>(ms: number, work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` until it returns [] (all good) or the time is up; returns the last problems. */
async function settle(probe: () => Promise<string[]>, ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const problems = await probe();
    if (problems.length === 0 || Date.now() > deadline) return problems;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const isChannelEvent = (f: any) => typeof f?.offset === 'number' && f.type !== 'connection_established';

/** The offsets a channel client saw must be 1, 2, 3, … with no hole and no copy. */
function offsetProblems(b: Bystander): string[] {
  const offsets = b.frames.filter(isChannelEvent).map((f) => f.offset as number);
  for (let i = 0; i < offsets.length; i++) {
    if (offsets[i] !== i + 1) return [`${b.name} saw offsets out of sequence at position ${i}: …${JSON.stringify(offsets.slice(Math.max(0, i - 3), i + 3))}`];
  }
  return [];
}

export async function startFuzzNode(extraEnv: Record<string, string> = {}): Promise<FuzzNode> {
  const dir = tempDataDir();
  const equipment = join(dir, 'equipment.json');
  writeFileSync(equipment, JSON.stringify(EQUIPMENT));
  const gw = await startGateway({
    env: channelEnv({
      GATEWAY_DATA_DIR: dir,
      GATEWAY_AZURE_ACCESS_KEY: ACCESS_KEY,
      GATEWAY_EQUIPMENT_FILE: equipment,
      GATEWAY_AZURE_HUBS: 'extraccion,chat',
      // The fuzzer is one address sending many upgrades and frames: lift the limits it would hit
      // at once, so the inputs reach the code behind them (rate limits have their own tests).
      GATEWAY_CONNECT_RATE_PER_IP: '100000',
      GATEWAY_CONNECT_BURST_PER_IP: '100000',
      GATEWAY_FRAME_RATE: '100000',
      GATEWAY_FRAME_BURST: '100000',
      GATEWAY_MAX_BAD_FRAMES: '6',
      // Share links are checked on the token pool (JWTs inline): the sentinel viewer shows that thread moves too.
      GATEWAY_TOKEN_CHECKS: 'auto',
      ...extraEnv,
    }),
  });
  let died: number | null = null;
  gw.child.once('exit', () => {
    died = Date.now();
  });
  let stderr = '';
  gw.child.stderr!.on('data', (chunk: string) => {
    // uWS's cork warning (docs/guide/deployment.md, "uWebSockets.js: where it comes from") says nothing about a failure: leave it out.
    stderr = (
      stderr +
      chunk
        .split('\n')
        .filter((l) => !l.includes('writes must be made from within a corked callback'))
        .join('\n')
    ).slice(-4000);
  });
  const key = new TextEncoder().encode(ACCESS_KEY);
  const azureRestToken = (path: string) =>
    new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setAudience(`${gw.http}${path}`).setIssuedAt().setExpirationTime('1h').sign(key);
  const azureClientToken = (hub: string, o: { userId?: string; roles?: string[]; groups?: string[] } = {}) => {
    const jwt = new SignJWT({ ...(o.roles ? { role: o.roles } : {}), ...(o.groups ? { 'webpubsub.group': o.groups } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setAudience(`${gw.http}/client/hubs/${hub}`)
      .setIssuedAt()
      .setExpirationTime('1h');
    if (o.userId) jwt.setSubject(o.userId);
    return jwt.sign(key);
  };

  const azureClientTokens: Record<string, string> = {};
  for (const hub of ['extraccion', SENTINEL_HUB, 'nohub'])
    azureClientTokens[hub] = await azureClientToken(hub, { userId: 'fz', roles: ['webpubsub.joinLeaveGroup', 'webpubsub.sendToGroup'] });
  const adminToken = await mintJwt('admin-1', { roles: ['admin'] });
  const viewerToken = await mintJwt('viewer-1', { roles: ['viewer'] });
  const bus = await connectAsync(gw.mqttUrl, { reconnectPeriod: 0, ...BACKEND_LOGIN });
  onTestFinished(async () => {
    await bus.endAsync(true);
  });

  const shareReply = await fetch(`${gw.http}/api/v1/public/share-location/init`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ device_id: SENTINEL_DEVICE }),
  });
  const shareToken = ((await shareReply.json()) as { token: string }).token;

  const ws = gw.ws;
  const isEvent = (name: string) => (f: any) => f?.event === name;
  const type = (name: string) => (f: any) => f?.type === name;
  const userToken = await mintJwt(SENTINEL_USER, { roles: ['admin'] });
  const stream = [
    await Bystander.open('stream json client', `${ws}/api/v1/stream?device_ids=${SENTINEL_DEVICE}`, 'json', isEvent('subscribed')),
    await Bystander.open('stream msgpack client', `${ws}/api/v1/stream?device_ids=${SENTINEL_DEVICE}`, 'msgpack', isEvent('subscribed')),
    await Bystander.open('device_ids=* json client', `${ws}/api/v1/stream?device_ids=*`, 'json', isEvent('subscribed')),
    await Bystander.open('device_ids=* msgpack client', `${ws}/api/v1/stream?device_ids=*`, 'msgpack', isEvent('subscribed')),
  ];
  const channels = [
    await Bystander.open(
      `/api/v1/ws?channel=${SENTINEL_CHANNEL} json client`,
      `${ws}/api/v1/ws?channel=${SENTINEL_CHANNEL}`,
      'json',
      type('connection_established'),
    ),
    await Bystander.open(`/ws/${SENTINEL_CHANNEL} msgpack client`, `${ws}/ws/${SENTINEL_CHANNEL}`, 'msgpack', type('connection_established')),
  ];
  const user = await Bystander.open('/ws/connect user', `${ws}/ws/connect?token=${userToken}`, 'json', type('connection_established'));
  const azureToken = await azureClientToken(SENTINEL_HUB, {
    userId: 'sentinel-azure',
    roles: ['webpubsub.joinLeaveGroup', 'webpubsub.sendToGroup'],
    groups: [SENTINEL_GROUP],
  });
  const azure = await Bystander.open(
    'Azure json.webpubsub.azure.v1 client',
    `${ws}/client/hubs/${SENTINEL_HUB}?access_token=${azureToken}`,
    'json.webpubsub.azure.v1',
    (f) => f?.type === 'system' && f.event === 'connected',
  );
  const everyone = [...stream, ...channels, user, azure];

  const counters = async (): Promise<Counters> =>
    parseMetrics(
      await within(
        5000,
        fetch(`${gw.http}/metrics`).then((r) => r.text()),
        'GET /metrics',
      ),
    );
  // The connection gauges with only the bystanders connected: after each batch they must be back here.
  const baseline = await counters();
  let round = 0;
  let logsRead = 0;

  const alive = () => gw.child.exitCode === null && gw.child.signalCode === null;

  async function sentinels(): Promise<string[]> {
    const n = ++round;
    const mark = `sentinel-${n}`;
    const problems: string[] = [];
    const wait = async (b: Bystander, predicate: (f: any) => boolean, what: string) => {
      if (!(await b.waitFor(predicate, 6000))) problems.push(`${b.name} did not receive ${what}`);
    };
    const position = bus
      .publishAsync(`gps/${SENTINEL_DEVICE}`, JSON.stringify({ DEVICE_ID: SENTINEL_DEVICE, SEQ: n, LAT: -33.45, LON: -70.66 }), { qos: 1 })
      .then(() =>
        Promise.all(
          stream.map((b) =>
            wait(b, (f) => f?.event === 'message' && f.data?.data?.DEVICE_ID === SENTINEL_DEVICE && f.data.data.SEQ === n, `sentinel position ${n}`),
          ),
        ),
      );
    const entity = within(
      6000,
      fetch(`${gw.http}/api/v1/sensores/`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tipo: mark }),
      }),
      'the sentinel REST write',
    ).then(async (res) => {
      if (res.status !== 201) {
        problems.push(`the sentinel REST write answered ${res.status} ${(await res.text()).slice(0, 200)}`);
        return;
      }
      await Promise.all([...channels, user].map((b) => wait(b, (f) => isChannelEvent(f) && f.data?.tipo === mark, `sentinel entity event ${mark}`)));
    });
    const notification = bus
      .publishAsync(
        `gateway/events/user/${SENTINEL_USER}`,
        signControl(`gateway/events/user/${SENTINEL_USER}`, JSON.stringify({ type: 'notification', data: { mark } })),
        { qos: 1 },
      )
      .then(() => wait(user, (f) => f?.type === 'notification' && f.data?.mark === mark, `sentinel notification ${mark}`));
    const path = `/api/hubs/${SENTINEL_HUB}/groups/${SENTINEL_GROUP}/:send`;
    const group = within(
      6000,
      azureRestToken(path).then((token) =>
        fetch(`${gw.http}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ mark }),
        }),
      ),
      'the sentinel Azure REST send',
    ).then(async (res) => {
      if (res.status !== 202) {
        problems.push(`the sentinel Azure REST send answered ${res.status}`);
        return;
      }
      await wait(azure, (f) => f?.type === 'message' && f.group === SENTINEL_GROUP && f.data?.mark === mark, `sentinel group message ${mark}`);
    });
    const viewer = Bystander.open(
      'share-location viewer',
      `${ws}/api/v1/public/share-location/stream?token=${shareToken}`,
      'json',
      isEvent('subscribed'),
      6000,
    ).then(
      (b) => b.ws.terminate(),
      (err: Error) => {
        problems.push(`the sentinel share-location viewer (token pool): ${err.message}`);
      },
    );
    const results = await Promise.allSettled(
      ([position, entity, notification, group, viewer] as Promise<unknown>[]).map((p, i) =>
        within(
          10_000,
          p,
          ['the sentinel position', 'the sentinel entity event', 'the sentinel notification', 'the sentinel group message', 'the sentinel viewer'][i],
        ),
      ),
    );
    for (const r of results) if (r.status === 'rejected') problems.push((r.reason as Error).message);
    for (const b of channels) problems.push(...offsetProblems(b));
    return problems;
  }

  function counterProblems(before: Counters, now: Counters, e: Expectations): string[] {
    const d = (name: string) => (now[name] ?? 0) - (before[name] ?? 0);
    const out: string[] = [];
    // Telemetry: the batch's messages and the sentinel position, each processed or rejected exactly once.
    const received = d('gateway_mqtt_messages_received_total');
    if (received !== e.telemetry + 1) out.push(`telemetry messages received: ${received}, published: ${e.telemetry + 1}`);
    const rejected = Object.keys(now)
      .filter((k) => k.startsWith('gateway_telemetry_rejected_'))
      .reduce((s, k) => s + d(k), 0);
    const processed = d('gateway_telemetry_messages_processed_total');
    if (processed + rejected !== received) out.push(`telemetry: ${received} received but ${processed} processed + ${rejected} rejected`);
    // Channel messages: each published with an offset, rejected, or dropped as a copy (an own gap is published again later).
    const channelIn = d('gateway_events_received_total');
    // Outcomes: published, rejected, duplicates, and any other gateway_events_*_total a message can end in (a dead letter, say).
    // Not events_local_total: it counts this node's own writes taken from its store before their bus
    // copy came back; such an event is counted published once, and its bus copy (received) ends there.
    const skip = new Set(['gateway_events_received_total', 'gateway_events_gaps_total', 'gateway_events_local_total']);
    const outcomes = Object.keys(now).filter((k) => /^gateway_events_\w+_total$/.test(k) && !skip.has(k));
    const accounted = outcomes.reduce((sum, k) => sum + d(k), 0);
    if (channelIn < e.channelMessages + 1) out.push(`channel messages received: ${channelIn}, published to the bus: at least ${e.channelMessages + 1}`);
    if (accounted > channelIn || channelIn > accounted + d('gateway_events_gaps_total')) {
      out.push(
        `channel messages: ${channelIn} received but ${accounted} published, rejected or dropped as copies (+${d('gateway_events_gaps_total')} gaps; ${outcomes.join(', ')})`,
      );
    }
    if (d('gateway_azure_commands_total') < e.azureCommands + 1)
      out.push(`Azure commands received: ${d('gateway_azure_commands_total')}, published: at least ${e.azureCommands + 1}`);
    if (d('gateway_control_unauthenticated_total') !== e.unauthenticated)
      out.push(`control messages dropped unauthenticated: ${d('gateway_control_unauthenticated_total')}, published without a valid tag: ${e.unauthenticated}`);
    if (d('gateway_control_rejected_total') < e.controlRejected)
      out.push(`control messages rejected: ${d('gateway_control_rejected_total')}, malformed ones published: ${e.controlRejected}`);
    const bad = d('gateway_bad_frames_total');
    if (bad < e.badFramesAtLeast || bad > e.framesSent)
      out.push(`bad frames counted: ${bad}; error frames received for bad frames: ${e.badFramesAtLeast}, frames sent: ${e.framesSent}`);
    if (d('gateway_upgrades_rejected_total') < e.subprotocolRefusals)
      out.push(`upgrades rejected: ${d('gateway_upgrades_rejected_total')}, refused for their subprotocol: ${e.subprotocolRefusals}`);
    const refusedAtOpen = d('gateway_invalid_requests_total') + d('gateway_auth_failures_total');
    if (refusedAtOpen < e.refusedAtOpen)
      out.push(`invalid requests + auth failures counted: ${refusedAtOpen}, connections refused after the upgrade: ${e.refusedAtOpen}`);
    if (d('gateway_rest_requests_total') < e.storeCalls + 1)
      out.push(`REST requests counted: ${d('gateway_rest_requests_total')}, answered: at least ${e.storeCalls + 1}`);
    if (d('gateway_rest_errors_total') < e.storeErrors)
      out.push(`REST errors counted: ${d('gateway_rest_errors_total')}, answered with an error: ${e.storeErrors}`);
    if (d('gateway_encoding_refusals_total') < e.encodingRefusals)
      out.push(`encoding refusals counted: ${d('gateway_encoding_refusals_total')}, answered 400 GW_ERR_ENCODING_INVALID: ${e.encodingRefusals}`);
    if (d('gateway_http_not_found_total') < e.notFound)
      out.push(`not-found requests counted: ${d('gateway_http_not_found_total')}, answered 404 GW_ERR_NOT_FOUND: ${e.notFound}`);
    for (const g of GAUGES) if (now[g] !== baseline[g]) out.push(`${g} is ${now[g]} with only the bystanders connected (${baseline[g]})`);
    return out;
  }

  async function check(before: Counters, expected: Expectations): Promise<string[]> {
    if (!alive()) return [`the gateway process died (exit ${gw.child.exitCode}, signal ${gw.child.signalCode}); stderr: ${stderr.slice(-1500)}`];
    const problems: string[] = [];
    for (const route of ['/healthz', '/readyz']) {
      const status = await within(
        5000,
        fetch(`${gw.http}${route}`).then((r) => r.status),
        `GET ${route}`,
      ).catch((err: Error) => err.message);
      if (status !== 200) problems.push(`GET ${route} answered ${status}`);
    }
    problems.push(...(await sentinels()));
    const leaked = gw.logs.slice(logsRead).find((l) => JSON.stringify(l).includes(SECRET_MARK));
    logsRead = gw.logs.length;
    if (leaked !== undefined) problems.push(`the log holds what a client sent: ${JSON.stringify(leaked).slice(0, 300)}`);
    for (const b of everyone) problems.push(...b.violations());
    if (!alive())
      return [
        `the gateway process died during the check (exit ${gw.child.exitCode}, signal ${gw.child.signalCode}); stderr: ${stderr.slice(-1500)}`,
        ...problems,
      ];
    // Counters move a moment after the deliveries they count: let them settle, briefly.
    problems.push(...(await settle(async () => counterProblems(before, await counters().catch(() => ({})), expected), 3000)));
    return problems;
  }

  return {
    gw,
    port: gw.port,
    bus,
    adminToken,
    viewerToken,
    shareToken,
    stderr: () => stderr,
    azureRestToken,
    azureClientToken,
    azureClientTokens,
    counters,
    alive,
    check,
    diedAt: () => {
      // One bystander cut may be its own story (a frame it refused); most of them at once is the gateway going away.
      const cuts = everyone.filter((b) => b.closedWith?.code === 1006).map((b) => b.closedAt!);
      const times = [...(cuts.length > everyone.length / 2 ? cuts : []), ...(died === null ? [] : [died])];
      return times.length === 0 ? null : Math.min(...times);
    },
    async stop() {
      for (const b of everyone) b.ws.terminate();
      await within(3000, bus.endAsync(true), 'closing the MQTT client').catch(() => undefined);
      await gw.stop('SIGKILL');
    },
  };
}
