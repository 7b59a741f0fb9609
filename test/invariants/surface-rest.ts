/**
 * REST requests on every route of src/edge/*-routes.ts: the entity collections (fixed fields and
 * free-form), the publish API, test events, trips and equipment, the Azure REST data plane,
 * share-location links, /ws/stats and the test broadcast, the operator routes, the pages, and paths
 * that exist nowhere. Bodies nested thousands deep, with __proto__/constructor/prototype keys, wrong
 * types, invalid JSON and UTF-8, over the size limits; paths with malformed percent-encoding. Each
 * request is written on a raw socket (any path, any bytes) and must be answered within 5 s, below
 * 500, with a catalogued error; nothing with a polluting key may be stored or echoed.
 */
import { BAD_UTF8, clip, deepDepth, deepJson, encodedPart, jsonValue, objectText, POLLUTING_KEYS, text } from './gen-values.js';
import { httpErrorProblems, pollutingKeyPath } from './oracles.js';
import type { Rng } from './prng.js';
import { rawHttp } from '../helpers/raw-ws.js';
import { decodeComponent } from '../../src/edge/request-encoding.js';
import { SECRET_MARK, SENTINEL_HUB, type FuzzNode } from './fuzz-node.js';
import type { FuzzInput, InputResult, Surface } from './runner.js';

const COLLECTIONS: Readonly<Record<string, () => Record<string, unknown>>> = {
  sensores: () => ({ tipo: 'fz', modelo: 'm' }),
  'test-sensors': () => ({ tipo: 'fz' }),
  lecturas: () => ({ sensor_id: 1, valor: 1.5 }),
  pets: () => ({ name: 'Luna', age: 3 }),
  reservations: () => ({ user_id: 1, status: 'pending' }),
  payments: () => ({ amount: 10, currency: 'CLP' }),
  invoices: () => ({ n: 1 }),
  medical_history: () => ({ note: 'x' }),
  services: () => ({ name: 's' }),
  employees: () => ({ name: 'e' }),
  activity_logs: () => ({ what: 'x' }),
  tareas: () => ({ titulo: 't', estado: 'pendiente' }),
  efectivos: () => ({ nombre: 'n', disponible: true }),
};
const FREE_FORM = new Set(['payments', 'invoices', 'medical_history', 'services', 'employees', 'activity_logs']);
/** Every channel but the bystanders' `sensors` (a user-addressed notification there would skip their offsets, by design). */
const PUBLISH_CHANNELS = ['general', 'pets', 'users', 'tasks', 'readings', 'viajes', 'nope'];
const IDS = ['1', '2', '3', '0', '-1', 'abc', '1.5', '99999999999999999999', '%ZZ', '1%', '%C0%AF', '%31'];
const STORE_ROUTE = new RegExp(
  `^(/api/v1/(${Object.keys(COLLECTIONS).join('|')})(/[^/]*)?|/api/v1/channels/[^/]+/events|/viaje(/[^/]+)?|/api/v1/equipment(/[^/]+)?)$`,
);

interface Request {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | null;
  /** A POST or PUT of an entity: a polluting key anywhere in the body must be refused. */
  readonly entityWrite: boolean;
  readonly azure: boolean;
  /** Sign an Azure REST token for the path when the request runs. */
  readonly azureToken: boolean;
}

/** A body for `valid`'s route: valid, polluted, deep, wrong, broken, huge. */
function body(rng: Rng, valid: () => Record<string, unknown>, deepField: string): Buffer {
  switch (
    rng.weighted<string>([
      [3, 'valid'],
      [2, 'proto'],
      [2, 'deep'],
      [2, 'random'],
      [1, 'broken'],
      [1, 'utf8'],
      [1, 'huge'],
      [0.5, 'empty'],
    ])
  ) {
    case 'valid':
      return Buffer.from(JSON.stringify(valid()));
    case 'proto': {
      const key = rng.pick(POLLUTING_KEYS);
      const nested = rng.chance(0.5);
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(valid())) fields[k] = JSON.stringify(v);
      if (nested) fields.extra = `{${JSON.stringify(key)}:{"polluted":true}}`;
      else fields[key] = key === '__proto__' ? '{"polluted":true,"isAdmin":true}' : '{"prototype":{"polluted":true}}';
      return Buffer.from(objectText(fields));
    }
    case 'deep': {
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(valid())) fields[k] = JSON.stringify(v);
      fields[deepField] = deepJson(rng, Math.min(deepDepth(rng), 10_000));
      return Buffer.from(objectText(fields));
    }
    case 'random':
      return Buffer.from(JSON.stringify(jsonValue(rng, 4)) ?? 'null');
    case 'broken': {
      const t = JSON.stringify(valid());
      return Buffer.from(rng.pick([t.slice(0, -1), `${t}}`, t.replace(':', ''), "{'a':1}", 'null', '[', '"\\u12"']));
    }
    case 'utf8': {
      const t = Buffer.from(JSON.stringify({ ...valid(), note: 'caf' }));
      const at = t.lastIndexOf('caf') + 3;
      return Buffer.concat([t.subarray(0, at), rng.pick(BAD_UTF8), t.subarray(at)]);
    }
    case 'huge':
      return Buffer.from(JSON.stringify({ ...valid(), pad: 'x'.repeat(rng.pick([60_000, 70_000, 1_100_000])) }));
    default:
      return Buffer.alloc(0);
  }
}

function auth(rng: Rng, node: FuzzNode): Record<string, string> {
  return rng.weighted<() => Record<string, string>>([
    [8, () => ({ authorization: `Bearer ${node.adminToken}` })],
    [1, () => ({})],
    [1, () => ({ authorization: `Bearer ${node.viewerToken}` })],
    [
      1,
      () => ({
        authorization: rng.pick([
          'Bearer x',
          'Basic YTpi',
          `Bearer ${node.adminToken}x`,
          'Bearer',
          `Bearer ${SECRET_MARK}${rng.int(0, 1e6)}.eyJzdWIiOiJ4In0.c2ln`,
        ]),
      }),
    ],
  ])();
}

const json = { 'content-type': 'application/json' };

function generateRequest(rng: Rng, node: FuzzNode): Request {
  const r = drawRequest(rng, node);
  // A request line holds no spaces or controls: what a client would percent-encode is encoded.
  return { ...r, path: r.path.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c.toWellFormed())) };
}

function drawRequest(rng: Rng, node: FuzzNode): Request {
  const plain = (method: string, path: string, b: Buffer | null = null, headers: Record<string, string> = {}): Request => ({
    method,
    path,
    headers: { ...json, ...headers },
    body: b,
    entityWrite: false,
    azure: false,
    azureToken: false,
  });
  switch (
    rng.weighted<string>([
      [6, 'collection'],
      [3, 'publish'],
      [2, 'trips'],
      [3, 'azure'],
      [1, 'share'],
      [1, 'misc'],
      [1, 'unknown'],
    ])
  ) {
    case 'collection': {
      const name = rng.pick(Object.keys(COLLECTIONS));
      const id = rng.chance(0.7) ? rng.pick(IDS) : encodedPart(rng, '1');
      const form = rng.int(0, 5);
      const deepField = FREE_FORM.has(name) ? rng.pick(['x', 'data']) : Object.keys(COLLECTIONS[name]())[0];
      if (form <= 1)
        return {
          ...plain('POST', `/api/v1/${name}${rng.chance(0.8) ? '/' : ''}`, body(rng, COLLECTIONS[name], deepField), auth(rng, node)),
          entityWrite: true,
        };
      if (form === 2) return { ...plain('PUT', `/api/v1/${name}/${id}`, body(rng, COLLECTIONS[name], deepField), auth(rng, node)), entityWrite: true };
      if (form === 3) return plain('DELETE', `/api/v1/${name}/${id}`, null, auth(rng, node));
      if (form === 4) return plain('GET', `/api/v1/${name}/${id}`, null, auth(rng, node));
      return plain(
        'GET',
        `/api/v1/${name}/?skip=${rng.pick(['0', '5', '-1', 'x', encodedPart(rng, '1')])}&limit=${rng.pick(['1', '100', '1001', '', encodedPart(rng, '2')])}`,
        null,
        auth(rng, node),
      );
    }
    case 'publish': {
      const channel = rng.chance(0.8) ? rng.pick(PUBLISH_CHANNELS) : encodedPart(rng, 'general');
      const envelope = rng.pick<() => Record<string, unknown>>([
        () => ({ type: 'entity_event', entity_type: 'fz', event_type: 'created', entity_id: 1, data: { n: 1 }, metadata: { a: 1 } }),
        () => ({ type: 'realtime_update', entity_type: 'pets', action: 'updated', data: { pet_id: 1 } }),
        () => ({ type: 'notification', notification_type: 'fz', user_id: rng.pick(['123', 'sentinel-user']), data: { a: 1 } }),
        () => ({ type: rng.pick(['shout', '']), origin: { node: 'x', seq: 1 } }),
      ]);
      if (rng.chance(0.2))
        return plain(
          'POST',
          '/api/v1/ws/test-event',
          body(rng, () => ({ channel: rng.pick([...PUBLISH_CHANNELS, 'sensors']), message: text(rng, 30) }), 'message'),
        );
      return plain('POST', `/api/v1/channels/${channel}/events`, body(rng, envelope, 'data'), auth(rng, node));
    }
    case 'trips': {
      const step = rng.pick(['crear', 'actualizar', 'finalizar-carga', 'en-descarga', 'finalizar', 'cancelar']);
      const trip = () =>
        step === 'crear'
          ? {
              equipo: rng.pick(['CAM-101', 'CAM-102', 'EXC-001', 'NOPE']),
              patente: 'ABCD12',
              id_jornada: rng.int(1, 9),
              [rng.pick(['hora_inicio', 'latitud_carga', 'Patente', 'unknown_field'])]: jsonValue(rng, 1),
            }
          : { id_movimiento: rng.int(1, 5), hora_carga: new Date().toISOString(), motivo: text(rng, 20) };
      return rng.pick<() => Request>([
        () => plain(step === 'actualizar' ? rng.pick(['PATCH', 'PUT', 'POST']) : 'POST', `/viaje/${step}`, body(rng, trip, 'trip_data'), auth(rng, node)),
        () =>
          plain(
            'GET',
            `/viaje${rng.chance(0.5) ? `/${rng.pick(IDS)}` : `?skip=${rng.pick(['0', 'x'])}&limit=${rng.pick(['10', '5000'])}`}`,
            null,
            auth(rng, node),
          ),
        () =>
          plain(
            rng.pick(['GET', 'PUT', 'DELETE']),
            `/api/v1/equipment/${rng.chance(0.5) ? rng.pick(['CAM-999', 'FZ-EQ', 'bad code!']) : encodedPart(rng, 'CAM-9')}`,
            body(rng, () => ({ kind: rng.pick(['truck', 'excavator', 'boat']), active: rng.chance(0.5) }), 'kind'),
            auth(rng, node),
          ),
        () => plain('GET', `/ws/negotiate?user_id=${rng.pick(['EXC-001', 'EXC-009', 'NOPE', encodedPart(rng, 'EXC-001')])}`),
        () => plain('GET', rng.pick(['/api/v1/trips/stats', '/api/v1/equipment'])),
      ])();
    }
    case 'azure': {
      const hub = rng.weighted<string>([
        [6, 'extraccion'],
        [1, SENTINEL_HUB],
        [1, 'nohub'],
        [1, encodedPart(rng, 'extraccion')],
      ]);
      const seg = () => (rng.chance(0.7) ? rng.pick(['g1', 'excavadoras', 'u1', 'c1']) : encodedPart(rng, 'g1'));
      const [method, op] = rng.pick<() => [string, string]>([
        () => ['POST', ':send'],
        () => ['POST', `users/${seg()}/:send`],
        () => ['POST', `connections/${seg()}/:send`],
        () => ['POST', `groups/${seg()}/:send`],
        () => ['PUT', `groups/${seg()}/connections/${seg()}`],
        () => ['DELETE', `groups/${seg()}/connections/${seg()}`],
        () => ['PUT', `users/${seg()}/groups/${seg()}`],
        () => ['DELETE', `users/${seg()}/groups`],
        () => ['POST', ':addToGroups'],
        () => ['POST', ':removeFromGroups'],
        () => ['DELETE', `connections/${seg()}`],
        () => ['POST', ':closeConnections'],
        () => ['HEAD', `groups/${seg()}`],
        () => ['HEAD', `users/${seg()}`],
        () => ['HEAD', `connections/${seg()}`],
        () => ['PUT', `permissions/${rng.pick(['sendToGroup', 'joinLeaveGroup', 'x'])}/connections/${seg()}`],
        () => ['GET', `groups/${seg()}/connections`],
        () => ['POST', ':generateToken'],
        () => [rng.pick(['GET', 'PATCH', 'OPTIONS']), `${seg()}/${seg()}`],
      ])();
      const query = [
        ...(rng.chance(0.3)
          ? [
              `filter=${encodeURIComponent(rng.pick(["userId eq 'u1'", "'g1' in groups", 'userId eq', "groups/any(g: g eq 'x')", text(rng, 40).toWellFormed()]))}`,
            ]
          : []),
        ...(rng.chance(0.2) ? [`excluded=${seg()}`] : []),
        ...(rng.chance(0.2) ? [`${rng.pick(['messageTtlSeconds', 'top', 'minutesToExpire'])}=${rng.pick(['0', '5', '-1', '301', 'x', '1e3'])}`] : []),
      ];
      const type = rng.pick(['application/json', 'text/plain', 'application/octet-stream', 'application/x+json', 'text/plain; charset=utf-8', '']);
      const b =
        method === 'POST'
          ? op.endsWith('Groups') && rng.chance(0.7)
            ? Buffer.from(JSON.stringify({ groups: rng.pick([['g1'], 'g1', [''], [1]]), filter: rng.pick(["userId eq 'u1'", '', 5]) }))
            : body(rng, () => ({ a: 1 }), 'a')
          : null;
      return {
        method,
        path: `/api/hubs/${hub}/${op}${query.length > 0 ? `?${query.join('&')}` : ''}`,
        headers: type === '' ? {} : { 'content-type': type },
        body: b,
        entityWrite: false,
        azure: true,
        azureToken: hub !== SENTINEL_HUB && rng.chance(0.85),
      };
    }
    case 'share':
      return rng.chance(0.5)
        ? plain(
            'POST',
            '/api/v1/public/share-location/init',
            body(rng, () => ({ device_id: rng.pick(['FZ-1', 'bad id', 'SIM-1']), ttl_seconds: rng.pick([60, 0, -1, 1.5, 10 ** 9]) }), 'device_id'),
            auth(rng, node),
          )
        : plain(
            'DELETE',
            `/api/v1/public/share-location/${rng.pick(['%ZZ', '%', 'v4.local.xyz', encodedPart(rng, 'v4.local.a'), 'x'.repeat(9000)])}`,
            null,
            auth(rng, node),
          );
    case 'misc':
      return rng.pick<() => Request>([
        () =>
          plain(
            'GET',
            rng.pick([
              '/ws/stats',
              '/api/v1/ws/stats',
              `/api/v1/ws/stats/${encodedPart(rng, 'general')}`,
              '/api/v1/stream/stats',
              '/metrics',
              '/healthz',
              '/readyz',
              '/api/health',
            ]),
          ),
        () =>
          plain(
            'POST',
            '/ws/_test/broadcast',
            body(rng, () => ({ title: 't', content: text(rng, 20), level: rng.pick(['info', 'x', 5]) }), 'content'),
          ),
        () => plain('GET', rng.pick(['/', '/console', '/share-location?token=x', '/style.css', '/nope.js', `/share-location?token=${encodedPart(rng, 't')}`])),
      ])();
    default:
      return plain(
        rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'FOO']),
        rng.pick([
          `/${encodedPart(rng, 'x')}`,
          `/api/v1/${encodedPart(rng, 'sensores')}/`,
          '/api/v1//',
          '/api/v1/sensores/1/2',
          '/%2e%2e/%2e%2e/etc/passwd',
          '/healthz/',
          `/api/v1/${'a'.repeat(5000)}`,
        ]),
        rng.chance(0.3) ? Buffer.from(JSON.stringify(jsonValue(rng, 3)) ?? '') : null,
      );
  }
}

/** The largest body a route reads: 1 MB on the Azure data plane (its message limit), GATEWAY_MAX_BODY_BYTES (64 KiB) elsewhere. */
const bodyLimit = (path: string) => (path.startsWith('/api/hubs/') ? 1024 * 1024 : 64 * 1024);

async function runRequest(node: FuzzNode, r: Request): Promise<InputResult> {
  const headers = r.azureToken ? { ...r.headers, authorization: `Bearer ${await node.azureRestToken(r.path.split('?')[0])}` } : r.headers;
  const outcome = await rawHttp(node.port, r.method, r.path, r.body, headers, 5000);
  if (outcome.kind === 'timeout') return { problems: ['no answer within 5 s'] };
  if (outcome.kind === 'reset') {
    // A head past uWS's buffer is cut by uWS. A request refused for its path's encoding (400) or for
    // a body over its route's limit (413) is answered before its body is all read (RFC 9112 §9.6 lets
    // a server answer early and close): with a body larger than the socket buffers take, the client's
    // write can fail (EPIPE, reset) before it reads the answer, depending on timing (seen in CI: a
    // 1.1 MB body to /api/v1/ws/test-event).
    const bodyBytes = r.body?.length ?? 0;
    const answeredEarly = bodyBytes > 64 * 1024 && (decodeComponent(r.path.split('?')[0]) === null || bodyBytes > bodyLimit(r.path));
    return { problems: r.path.length > 4000 || answeredEarly ? [] : [`the connection closed without an answer (${outcome.error})`] };
  }
  const answer = outcome.answer;
  // A request head past uWS's buffer is refused by uWS itself (with 431, or 505 for a request line it cannot read).
  if (r.path.length > 4000 && answer.status >= 400) return { problems: [] };
  const problems = httpErrorProblems(answer, { azure: r.azure, head: r.method === 'HEAD' });
  let parsed: unknown;
  if (answer.status < 300 && /json/.test(answer.headers['content-type'] ?? '') && answer.body.length > 0) {
    try {
      parsed = JSON.parse(answer.body.toString('utf8'));
    } catch {
      problems.push(`a ${answer.status} JSON reply that is not JSON: ${answer.body.toString('utf8').slice(0, 120)}`);
    }
    const echoed = pollutingKeyPath(parsed);
    if (echoed !== null) problems.push(`a ${answer.status} reply echoes the key ${echoed}`);
  }
  if (r.entityWrite && answer.status < 300 && r.body !== null) {
    let sent: unknown;
    try {
      sent = JSON.parse(r.body.toString('utf8'));
    } catch {
      sent = undefined;
    }
    const key = pollutingKeyPath(sent);
    if (key !== null) problems.push(`an entity body with the key ${key} was accepted (${answer.status}), not refused with 400 GW_ERR_BODY_INVALID`);
  }
  const errorCode = (() => {
    try {
      return JSON.parse(answer.body.toString('utf8'))?.error?.code as string | undefined;
    } catch {
      return undefined;
    }
  })();
  // A request refused for its encoding never reaches a route: it counts in encoding_refusals_total only.
  const refusedEncoding = errorCode === 'GW_ERR_ENCODING_INVALID' || (r.azure && answer.status === 400 && answer.body.includes('GW_ERR_ENCODING_INVALID'));
  const storeRoute = !r.azure && STORE_ROUTE.test(r.path.split('?')[0]) && errorCode !== 'GW_ERR_NOT_FOUND' && !refusedEncoding;
  return {
    problems,
    expect: {
      storeCalls: storeRoute ? 1 : 0,
      storeErrors: storeRoute && answer.status >= 400 ? 1 : 0,
      notFound: !r.azure && errorCode === 'GW_ERR_NOT_FOUND' ? 1 : 0,
      encodingRefusals: refusedEncoding ? 1 : 0,
    },
  };
}

export const rest: Surface = {
  name: 'rest',
  file: 'test/invariants/fuzz-rest.test.ts',
  concurrency: 6,
  generate(rng, node) {
    return Array.from({ length: 30 }, () => {
      const r = generateRequest(rng, node);
      const label = `${r.method} ${clip(r.path, 160)}${r.headers.authorization ? ` (${r.headers.authorization.slice(0, 12)}…)` : r.azureToken ? ' (Azure token)' : ''}${r.body !== null ? ` body ${clip(r.body, 160)}` : ''}`;
      return { label, run: (n: FuzzNode) => runRequest(n, r) } satisfies FuzzInput;
    });
  },
};
