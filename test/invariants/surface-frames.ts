/**
 * Client frames on open connections of every route: each route's own protocol (stream actions,
 * channel and /ws/connect frames, Azure json.webpubsub.azure.v1 requests, a simple Azure client's
 * raw frames), valid and mutated, as JSON and msgpack, nested thousands deep, with invalid UTF-8,
 * over every size limit, fragmented, and frames that break RFC 6455 itself. Written byte by byte
 * (raw-ws.ts), since `ws` refuses to send most of them. Afterwards the connection either still
 * answers a ping, or was closed with a close frame and a documented code.
 */
import { pack } from 'msgpackr';
import { CLOSE } from '../../src/errors/close-codes.js';
import { clip, deepDepth, deepJson, jsonValue, msgpackBytes, objectText, POLLUTING_KEYS, text, BAD_UTF8 } from './gen-values.js';
import { closeProblems, decodeMessages, errorCodeOf, socketProblems, UNCOUNTED_ERROR_FRAMES, type Format } from './oracles.js';
import type { Rng } from './prng.js';
import { isValidUtf8, OP, rawUpgrade, type RawWebSocket } from '../helpers/raw-ws.js';
import { SECRET_MARK, type FuzzNode } from './fuzz-node.js';
import type { FuzzInput, InputResult, Surface } from './runner.js';

type Family = 'stream' | 'share' | 'channel' | 'connect' | 'azure' | 'simple';

interface Connection {
  readonly family: Family;
  readonly path: (node: FuzzNode) => string;
  readonly protocol?: string;
  readonly format: Format;
}

const CONNECTIONS: readonly Connection[] = [
  { family: 'stream', path: () => '/api/v1/stream?device_ids=FZ-1,FZ-2', format: 'json' },
  { family: 'stream', path: () => '/api/v1/stream?device_ids=FZ-1', protocol: 'msgpack', format: 'msgpack' },
  { family: 'share', path: (n) => `/api/v1/public/share-location/stream?token=${n.shareToken}`, format: 'json' },
  { family: 'channel', path: () => '/api/v1/ws?channel=general', format: 'json' },
  { family: 'channel', path: () => '/ws/pets', protocol: 'msgpack', format: 'msgpack' },
  { family: 'connect', path: (n) => `/ws/connect?token=${n.adminToken}`, format: 'json' },
  { family: 'connect', path: (n) => `/ws/connect?token=${n.adminToken}`, protocol: 'msgpack', format: 'msgpack' },
  {
    family: 'azure',
    path: (n) => `/client/hubs/extraccion?access_token=${n.azureClientTokens.extraccion}`,
    protocol: 'json.webpubsub.azure.v1',
    format: 'azure',
  },
  { family: 'azure', path: (n) => `/client/hubs/chat?access_token=${n.azureClientTokens.chat}`, protocol: 'json.reliable.webpubsub.azure.v1', format: 'azure' },
  { family: 'simple', path: (n) => `/client/hubs/extraccion?access_token=${n.azureClientTokens.extraccion}`, format: 'raw' },
];

const READY: Record<Family, (f: any) => boolean> = {
  stream: (f) => f?.event === 'subscribed',
  share: (f) => f?.event === 'subscribed' || f?.event === 'message',
  channel: (f) => f?.type === 'connection_established',
  connect: (f) => f?.type === 'connection_established',
  azure: (f) => f?.type === 'system' && f.event === 'connected',
  simple: () => true,
};

const PING: Record<Family, object | null> = {
  stream: { action: 'ping' },
  share: { action: 'ping' },
  channel: { type: 'ping' },
  connect: { type: 'ping' },
  azure: { type: 'ping' },
  simple: null,
};
const isPong = (f: any) => f?.event === 'pong' || f?.type === 'pong';

/** One frame to send: an application message (`kind: app`), or one that breaks the WebSocket protocol. */
interface Frame {
  /**
   * `cut`: an application message uWS may refuse itself by closing TCP without a close frame (1006;
   * docs/reference/close-codes.md, "1006 from uWS": a text frame that is not UTF-8, a frame over the route's hard cap), so
   * 1006 is a documented answer to it, as to garbage.
   */
  readonly kind: 'app' | 'garbage' | 'cut';
  readonly label: string;
  send(ws: RawWebSocket): void;
}

const GROUPS = ['g1', 'excavadoras', 'sentinel-x', '', ' ', 'x'.repeat(1025)];
const IDS = ['FZ-1', 'FZ-2', 'SENTINEL-1', 'bad id', '', 'x'.repeat(129), 7];

/** An action of the route's own protocol, valid or mutated, as a JS value. */
function action(rng: Rng, family: Family, node: FuzzNode): unknown {
  const junk = () => jsonValue(rng, 3);
  switch (family) {
    case 'stream':
    case 'share':
      return rng.weighted<() => unknown>([
        [3, () => ({ action: rng.pick(['subscribe', 'unsubscribe']), device_ids: Array.from({ length: rng.int(0, 3) }, () => rng.pick(IDS)) })],
        [1, () => ({ action: 'subscribe', device_ids: Array.from({ length: rng.pick([1001, 5000]) }, (_, i) => `D${i}`) })],
        [2, () => ({ action: 'ping' })],
        [1, () => ({ action: 'refresh_token', token: rng.pick([node.adminToken, 'x', '']) })],
        [2, () => ({ action: rng.chance(0.5) ? text(rng) : junk(), device_ids: junk() })],
        [1, junk],
      ])();
    case 'channel':
    case 'connect':
      return rng.weighted<() => unknown>([
        [3, () => ({ type: rng.pick(['ping', 'pong']) })],
        [1, () => ({ type: 'refresh_token', token: rng.pick([node.adminToken, node.viewerToken, 'x', '', 5]) })],
        [2, () => ({ type: rng.chance(0.5) ? text(rng) : junk(), token: junk() })],
        [1, junk],
      ])();
    case 'azure':
    case 'simple':
      return rng.weighted<() => unknown>([
        [
          2,
          () => ({
            type: rng.pick(['joinGroup', 'leaveGroup']),
            group: rng.pick(GROUPS),
            ...(rng.chance(0.5) ? { ackId: rng.pick([1, 2, -1, 1.5, 'a']) } : {}),
          }),
        ],
        [
          3,
          () => ({
            type: 'sendToGroup',
            group: rng.pick(GROUPS),
            dataType: rng.pick(['json', 'text', 'binary', 'protobuf', 'xml', undefined]),
            data: rng.pick([junk(), 'AAEC', 'not base64!', undefined]),
            noEcho: rng.chance(0.5),
            ...(rng.chance(0.5) ? { ackId: rng.int(0, 3) } : {}),
          }),
        ],
        [2, () => ({ type: 'event', event: rng.pick(['e1', 'bad event', '', 'x'.repeat(200)]), dataType: rng.pick(['json', 'text', 'binary']), data: junk() })],
        [1, () => ({ type: 'sequenceAck', sequenceId: rng.pick([0, 1, 99, -1, 1.5, 'x']) })],
        [1, () => ({ type: rng.pick(['ping', 'invoke', 'cancelInvocation']), invocationId: rng.pick(['i1', 5]) })],
        [1, junk],
      ])();
  }
}

/** `{…action, "pad": <nested>}` as JSON text: the action's fields plus nesting thousands deep. */
function deepAction(rng: Rng, value: unknown): string {
  const base = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { type: 'ping' };
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) fields[k] = JSON.stringify(v) ?? 'null';
  fields[rng.pick(['data', 'device_ids', 'token', 'pad', 'group'])] = deepJson(rng, deepDepth(rng));
  return objectText(fields);
}

function appFrame(rng: Rng, c: Connection, node: FuzzNode): Frame {
  const value = action(rng, c.family, node);
  const json = () => JSON.stringify(value) ?? 'null';
  const make = (label: string, opcode: number, payload: Buffer | string): Frame => ({ kind: 'app', label, send: (ws) => ws.send(opcode, payload) });
  const cut = (label: string, opcode: number, payload: Buffer | string): Frame => ({ kind: 'cut', label, send: (ws) => ws.send(opcode, payload) });
  const choice = rng.weighted<string>([
    [6, 'json'],
    [c.format === 'msgpack' ? 4 : 1, 'msgpack'],
    [2, 'deep'],
    [2, 'utf8'],
    [1, 'proto'],
    [1, 'junk'],
    [1, 'big'],
    [1, 'huge'],
    [1, 'secret'],
    [c.family === 'azure' || c.family === 'simple' ? 0.3 : 0, 'azure-huge'],
    [1, 'fragmented'],
  ]);
  switch (choice) {
    case 'json':
      return make(`text ${clip(json(), 120)}`, OP.text, json());
    case 'msgpack': {
      const bytes = rng.chance(0.6) ? Buffer.from(pack(value)) : msgpackBytes(rng, () => jsonValue(rng, 3));
      return make(`binary msgpack ${clip(bytes, 60)}`, OP.binary, bytes);
    }
    case 'deep': {
      const body = deepAction(rng, value);
      return make(`text nested ${clip(body, 60)}`, OP.text, body);
    }
    case 'utf8': {
      const body = json();
      const at = rng.int(0, body.length);
      const bytes = Buffer.concat([Buffer.from(body.slice(0, at)), rng.pick(BAD_UTF8), Buffer.from(body.slice(at))]);
      return cut(`text with invalid UTF-8 ${clip(bytes, 100)}`, OP.text, bytes);
    }
    case 'proto': {
      const body = `{"${rng.pick(POLLUTING_KEYS)}":{"type":"ping","action":"ping"},"type":"ping","action":"ping"}`;
      return make(`text ${body}`, OP.text, body);
    }
    case 'junk': {
      const bytes = rng.bytes(rng.size(300));
      const asText = rng.chance(0.5);
      return (asText && !isValidUtf8(bytes) ? cut : make)(`${asText ? 'text' : 'binary'} junk ${clip(bytes, 60)}`, asText ? OP.text : OP.binary, bytes);
    }
    case 'secret': {
      // A token sent by mistake, as a frame or in a refresh: the log may say what was wrong, not what it was.
      const secret = `${SECRET_MARK}${rng.int(0, 1e6)}.eyJzdWIiOiJ4In0.c2lnbmF0dXJl`;
      const body = rng.chance(0.5)
        ? secret
        : JSON.stringify(c.family === 'stream' || c.family === 'share' ? { action: 'refresh_token', token: secret } : { type: 'refresh_token', token: secret });
      return make(`text ${body}`, OP.text, body);
    }
    case 'big': {
      const n = rng.int(4097, 65_000);
      return make(`text of ${n} bytes (over GATEWAY_MAX_FRAME_BYTES)`, OP.text, `{"type":"ping","action":"ping","pad":"${'x'.repeat(n)}"}`);
    }
    case 'huge': {
      const n = rng.int(65_537, 200_000);
      return cut(
        `text of ${n} bytes (over 64 KiB: 1009, or cut by uWS past the route's limit + 64 KiB)`,
        OP.text,
        `{"type":"ping","action":"ping","pad":"${'x'.repeat(n)}"}`,
      );
    }
    case 'azure-huge': {
      const n = rng.int(1_048_577, 1_200_000);
      return cut(
        `text of ${n} bytes (over Azure's 1 MB: 1009, or cut by uWS past 1 MB + 64 KiB)`,
        OP.text,
        `{"type":"sendToGroup","group":"g1","dataType":"text","data":"${'x'.repeat(n)}"}`,
      );
    }
    default: {
      const body = Buffer.from(json());
      const cut = rng.int(0, body.length);
      const pingBetween = rng.chance(0.5); // a control frame between fragments is allowed
      return {
        kind: 'app',
        label: `text in two fragments ${clip(json(), 100)}`,
        send: (ws) => {
          ws.send(OP.text, body.subarray(0, cut), { fin: false });
          if (pingBetween) ws.send(OP.ping, 'p');
          ws.send(OP.continuation, body.subarray(cut));
        },
      };
    }
  }
}

function garbageFrame(rng: Rng): Frame {
  const g = (label: string, send: (ws: RawWebSocket) => void): Frame => ({ kind: 'garbage', label, send });
  switch (rng.int(0, 6)) {
    case 0:
      return g('text with a reserved bit set', (ws) => ws.send(OP.text, '{"type":"ping"}', { rsv: rng.int(1, 7) }));
    case 1: {
      const op = rng.pick([3, 4, 7, 11, 15]);
      return g(`reserved opcode ${op}`, (ws) => ws.send(op, 'x'));
    }
    case 2:
      return g('an unmasked client frame', (ws) => ws.send(OP.text, '{"type":"ping"}', { masked: false }));
    case 3:
      return g('a continuation with no message started', (ws) => ws.send(OP.continuation, 'x'));
    case 4:
      return g('a ping of 200 bytes (control frames hold 125)', (ws) => ws.send(OP.ping, Buffer.alloc(200, 1)));
    case 5:
      return g('a frame header announcing 2^62 bytes', (ws) => ws.writeRaw(Buffer.from([0x81, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])));
    default: {
      const code = rng.pick([0, 999, 1004, 1005, 1006, 1015, 2999, 5000]);
      return g(`a close frame with code ${code}`, (ws) => {
        const payload = Buffer.alloc(2);
        payload.writeUInt16BE(code);
        ws.send(OP.close, Buffer.concat([payload, rng.chance(0.5) ? Buffer.from([0xff]) : Buffer.alloc(0)]));
      });
    }
  }
}

async function runConnection(node: FuzzNode, c: Connection, frames: readonly Frame[]): Promise<InputResult> {
  const outcome = await rawUpgrade(node.port, { path: c.path(node), protocols: c.protocol === undefined ? [] : [c.protocol] });
  if (outcome.kind !== 'open')
    return {
      problems: [
        `a well-formed upgrade was not accepted: ${outcome.kind === 'http' ? `${outcome.answer.status} ${outcome.answer.body.toString().slice(0, 200)}` : outcome.kind}`,
      ],
    };
  const ws = outcome.ws;
  const ready = (m: { opcode: number; data: Buffer }) => READY[c.family](decodeMessages([m], c.format).frames[0]);
  if (c.family !== 'simple' && (await ws.waitMessage(ready, 5000)) === null) {
    ws.destroy();
    return { problems: [`the connection did not open (${ws.messages.length} frames, closing: ${ws.closing})`] };
  }
  let framesSent = 0;
  for (const f of frames) {
    if (ws.closing) break;
    f.send(ws);
    framesSent++;
    if (f.kind !== 'app') break; // the server may drop the connection: nothing after it would be read
    await new Promise((r) => setImmediate(r));
  }
  const garbage = frames.some((f) => f.kind !== 'app');
  const problems: string[] = [];
  const ping = PING[c.family];
  if (!ws.closing && ping !== null && !garbage) {
    const from = ws.messages.length;
    ws.send(c.format === 'msgpack' ? OP.binary : OP.text, c.format === 'msgpack' ? Buffer.from(pack(ping)) : JSON.stringify(ping));
    framesSent++;
    const pong = await ws.waitMessage((m) => isPong(decodeMessages([m], c.format).frames[0]), 4000, from);
    if (pong === null && !ws.closing) problems.push('the connection stopped answering: no pong within 4 s');
  }
  if (!ws.closing) await ws.waitClosing(garbage ? 1000 : 50);
  const closedByServer = ws.closing;
  const info = closedByServer ? await ws.finish() : await ws.close(CLOSE.NORMAL.code);
  const decoded = decodeMessages(ws.messages, c.format);
  problems.push(...decoded.problems, ...socketProblems(ws));
  if (!closedByServer && info.code === 1006 && !garbage) problems.push("the server did not answer the client's close frame");
  problems.push(...closeProblems(info, decoded.frames, { garbage, format: c.format }));
  const counted =
    c.family === 'azure' || c.family === 'simple'
      ? 0
      : decoded.frames.filter((f) => errorCodeOf(f) !== undefined && !UNCOUNTED_ERROR_FRAMES.has(errorCodeOf(f)!)).length;
  return { problems, expect: { framesSent, badFramesAtLeast: counted } };
}

export const frames: Surface = {
  name: 'frames',
  file: 'test/invariants/fuzz-frames.test.ts',
  concurrency: 6,
  generate(rng, node) {
    return Array.from({ length: 14 }, () => {
      const c = rng.pick(CONNECTIONS);
      const list = Array.from({ length: rng.int(1, 8) }, () => (rng.chance(0.06) ? garbageFrame(rng) : appFrame(rng, c, node)));
      const label = `${c.family} ${c.protocol ?? '(no subprotocol)'}: ${list.map((f) => f.label).join(' | ')}`;
      return { label: clip(label, 600), run: (n: FuzzNode) => runConnection(n, c, list) } satisfies FuzzInput;
    });
  },
};
