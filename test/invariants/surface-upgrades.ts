/**
 * Upgrade requests on every WebSocket route (and next to them), with paths and queries full of
 * percent-encodings valid and malformed, huge query strings, odd subprotocol headers and tokens.
 * Each must be answered: a refusal with a catalogued error, or 101 and then either a refusal frame
 * and a documented close, or a working connection; never an abort, a reset or silence. A request
 * whose path or read parameters hold malformed percent-encoding must not be taken as something else.
 */
import { CLOSE } from '../../src/errors/close-codes.js';
import { clip, encodedPart, malformedPercent, text } from './gen-values.js';
import { closeProblems, decodeMessages, errorCodeOf, httpErrorProblems, socketProblems, type Format } from './oracles.js';
import type { Rng } from './prng.js';
import { rawUpgrade } from '../helpers/raw-ws.js';
import { SECRET_MARK, type FuzzNode } from './fuzz-node.js';
import type { FuzzInput, InputResult, Surface } from './runner.js';

type Route = 'stream' | 'share' | 'channel-query' | 'channel-path' | 'connect' | 'azure-path' | 'azure-query' | 'other';

interface Request {
  readonly route: Route;
  readonly path: string;
  readonly protocols: string[];
  /** The parts the route reads (path parameter, query values): malformed percent-encoding in one must be refused. */
  readonly read: string[];
  /** A request head this long may be refused by uWS itself (431 or a closed connection). */
  readonly huge: boolean;
}

const CHANNELS = ['sensors', 'readings', 'pets', 'general', 'tasks', 'users', 'nope', ''];
const DEVICES = ['SIM-1', 'FZ-1', '*', 'A,B', 'bad%20id', 'x'.repeat(129)];

/** A token for the route: the node's valid one most of the time, else malformed, percent-encoded or a marked secret. */
function tokenFor(rng: Rng, node: FuzzNode, kind: 'jwt' | 'share' | 'azure'): string {
  const choice = rng.int(0, 4);
  if (choice === 0) return encodedPart(rng, 'tok');
  if (choice === 1) return rng.chance(0.5) ? `${SECRET_MARK}${rng.int(0, 1e6)}.eyJzdWIiOiJ4In0.c2ln` : text(rng, 60).replace(/[^\x21-\x7e]/g, '');
  return kind === 'share' ? node.shareToken : kind === 'jwt' ? node.adminToken : '';
}

function query(params: [string, string][]): string {
  return params.length === 0 ? '' : `?${params.map(([k, v]) => (k === '' ? v : `${k}=${v}`)).join('&')}`;
}

const PROTOCOLS = [
  'json',
  'msgpack',
  'mqtt',
  'json, msgpack',
  'bearer.x',
  'json.webpubsub.azure.v1',
  'json.reliable.webpubsub.azure.v1',
  'protobuf.webpubsub.azure.v1',
  ',,,',
  'json;q=1',
  'JSON',
];

function generateRequest(rng: Rng, node: FuzzNode): Request {
  const route = rng.weighted<Route>([
    [3, 'stream'],
    [1, 'share'],
    [2, 'channel-query'],
    [3, 'channel-path'],
    [2, 'connect'],
    [2, 'azure-path'],
    [1, 'azure-query'],
    [1, 'other'],
  ]);
  const protocols = rng.chance(0.6) ? [] : Array.from({ length: rng.int(1, 2) }, () => rng.pick(PROTOCOLS));
  const extra: [string, string][] = rng.chance(0.2) ? [[encodedPart(rng, 'k'), encodedPart(rng, 'v')]] : [];
  if (rng.chance(0.05)) extra.push(['pad', 'x'.repeat(rng.pick([1000, 3000, 5000, 100_000]))]);
  const read: string[] = [];
  const param = (name: string, value: string): [string, string] => {
    read.push(value);
    return [name, value];
  };
  let path: string;
  switch (route) {
    case 'stream': {
      const ids = rng.chance(0.5) ? encodedPart(rng, rng.pick(DEVICES)) : rng.pick(DEVICES);
      const params = [param('device_ids', ids), ...(rng.chance(0.2) ? [param('batch', rng.pick(['1', '0', '2', encodedPart(rng, '1')]))] : [])];
      path = `/api/v1/stream${query([...params, ...extra])}`;
      break;
    }
    case 'share': {
      const t = tokenFor(rng, node, 'share');
      path = `/api/v1/public/share-location/stream${query([param('token', t), ...(rng.chance(0.3) ? [param('device_id', encodedPart(rng, 'SENTINEL-1'))] : []), ...extra])}`;
      break;
    }
    case 'channel-query':
    case 'channel-path': {
      const channel = rng.chance(0.6) ? encodedPart(rng, rng.pick(CHANNELS)) : rng.pick(CHANNELS);
      const params: [string, string][] = [];
      if (rng.chance(0.3))
        params.push(param('since', rng.pick(['0', '1', '-1', 'abc', encodedPart(rng, '1')])), param('epoch', encodedPart(rng, 'ffffffffffff')));
      if (rng.chance(0.2)) params.push(param('user_id', encodedPart(rng, 'u1')));
      if (route === 'channel-query') path = `/api/v1/ws${query([param('channel', channel), ...params, ...extra])}`;
      else {
        read.push(channel);
        path = `/ws/${channel}${query([...params, ...extra])}`;
      }
      break;
    }
    case 'connect': {
      const t = tokenFor(rng, node, 'jwt');
      path = `/ws/connect${query([...(rng.chance(0.8) ? [param('token', t)] : []), ...extra])}`;
      break;
    }
    case 'azure-path':
    case 'azure-query': {
      const hub = rng.chance(0.5) ? encodedPart(rng, rng.pick(['extraccion', 'chat', 'nohub'])) : rng.pick(['extraccion', 'chat', 'nohub', '']);
      const hubName = (() => {
        try {
          return decodeURIComponent(hub);
        } catch {
          return 'extraccion';
        }
      })();
      const token = rng.chance(0.6) ? (node.azureClientTokens[hubName] ?? node.azureClientTokens.extraccion) : tokenFor(rng, node, 'azure');
      const params: [string, string][] = [['access_token', token]];
      if (rng.chance(0.2)) params.push(param('awps_connection_id', encodedPart(rng, 'c1')), param('awps_reconnection_token', encodedPart(rng, 't1')));
      if (rng.chance(0.2)) params.push(param('webpubsub_mode', 'sendToGroup'), param('group', encodedPart(rng, 'g')));
      if (route === 'azure-path') {
        read.push(hub);
        path = `/client/hubs/${hub}${query([...params, ...extra])}`;
      } else path = `/client${query([param('hub', hub), ...params, ...extra])}`;
      if (rng.chance(0.5)) protocols.splice(0, protocols.length, rng.pick(['json.webpubsub.azure.v1', 'json.reliable.webpubsub.azure.v1']));
      break;
    }
    case 'other':
      path =
        rng.pick([
          '/',
          '/ws',
          '/ws/',
          '/ws/a/b',
          '//ws/general',
          '/api/v1/ws/secure',
          '/api/v1/stream/',
          '/client/hubs/',
          `/${encodedPart(rng, 'x')}`,
          '/api/v1/ws/../ws',
          '/%2e%2e/ws/general',
          `/ws/${'c'.repeat(3000)}`,
        ]) + query(extra);
  }
  // A request line holds no spaces or controls: what a client would percent-encode is encoded.
  path = path.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c.toWellFormed()));
  return { route, path, protocols, read, huge: path.length > 4000 };
}

const FORMAT: Record<Route, Format> = {
  stream: 'json',
  share: 'json',
  'channel-query': 'json',
  'channel-path': 'json',
  connect: 'json',
  'azure-path': 'azure',
  'azure-query': 'azure',
  other: 'json',
};

const isAccepted = (route: Route, f: any) =>
  route === 'stream' || route === 'share'
    ? f?.event === 'subscribed' || f?.event === 'message'
    : route === 'azure-path' || route === 'azure-query'
      ? f?.type === 'system' && f.event === 'connected'
      : f?.type === 'connection_established';

async function runRequest(node: FuzzNode, r: Request): Promise<InputResult> {
  const outcome = await rawUpgrade(node.port, { path: r.path, protocols: r.protocols });
  if (outcome.kind === 'timeout') return { problems: ['no answer to the upgrade within 5 s'] };
  if (outcome.kind === 'reset') return { problems: r.huge ? [] : [`the upgrade was not answered: ${outcome.error}`] };
  if (outcome.kind === 'http') {
    // A request head past uWS's buffer is refused by uWS itself (with 431, or 505 for a request line it cannot read).
    if (r.huge && outcome.answer.status >= 400) return { problems: [] };
    const problems = outcome.answer.status === 101 ? [] : httpErrorProblems(outcome.answer);
    // Off the WebSocket routes a server may ignore the Upgrade header (RFC 9110 §7.8) and answer the GET.
    if (outcome.answer.status < 400 && r.route !== 'other') problems.push(`answered ${outcome.answer.status} to an upgrade`);
    const code = (() => {
      try {
        return JSON.parse(outcome.answer.body.toString('utf8'))?.error?.code;
      } catch {
        return undefined;
      }
    })();
    return {
      problems,
      expect: { subprotocolRefusals: code === 'GW_ERR_UNSUPPORTED_SUBPROTOCOL' && r.route !== 'azure-path' && r.route !== 'azure-query' ? 1 : 0 },
    };
  }
  const ws = outcome.ws;
  const problems: string[] = [];
  const echoed = outcome.answer.headers['sec-websocket-protocol'];
  const offered = r.protocols.flatMap((p) => p.split(',').map((x) => x.trim())).filter((x) => x !== '');
  if (echoed !== undefined && !offered.includes(echoed)) problems.push(`echoed subprotocol ${JSON.stringify(echoed)}, which was not offered`);
  const format: Format = FORMAT[r.route] === 'json' && echoed === 'msgpack' ? 'msgpack' : FORMAT[r.route];
  // A simple Azure client is sent nothing at open; every other route says something at once.
  await ws.waitMessage(() => true, format === 'azure' && (echoed === undefined || echoed === '') ? 300 : 2000);
  // Give a refusal its close; a working connection answers nothing more, so this only waits on refusals.
  const first = decodeMessages(ws.messages.slice(0, 1), format).frames[0];
  if (errorCodeOf(first) !== undefined) await ws.waitClosing(3000);
  const accepted = isAccepted(r.route, first);
  const malformed = r.read.filter(malformedPercent);
  if (accepted && malformed.length > 0)
    problems.push(`accepted ${clip(malformed.join(' '), 60)} (malformed percent-encoding) as ${clip(JSON.stringify(first), 120)}`);
  const closedByServer = ws.closing;
  const info = closedByServer ? await ws.finish() : await ws.close(CLOSE.NORMAL.code);
  const { frames, problems: decodeProblems } = decodeMessages(ws.messages, format);
  problems.push(...decodeProblems, ...socketProblems(ws));
  if (!closedByServer && info.code === 1006) problems.push("the server did not answer the client's close frame");
  problems.push(...closeProblems(info, frames, { garbage: false, format }));
  const refusedAtOpen = closedByServer && errorCodeOf(first) !== undefined && r.route !== 'azure-path' && r.route !== 'azure-query' ? 1 : 0;
  return { problems, expect: { refusedAtOpen } };
}

export const upgrades: Surface = {
  name: 'upgrades',
  file: 'test/invariants/fuzz-upgrades.test.ts',
  concurrency: 8,
  generate(rng, node) {
    return Array.from({ length: 30 }, () => {
      const r = generateRequest(rng, node);
      const label = `${r.route}: GET ${clip(r.path, 200)}${r.protocols.length > 0 ? ` protocols=${JSON.stringify(r.protocols)}` : ''}`;
      return { label, run: (n: FuzzNode) => runRequest(n, r) } satisfies FuzzInput;
    });
  },
};
