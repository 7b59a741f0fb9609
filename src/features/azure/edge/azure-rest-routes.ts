/**
 * Azure Web PubSub's REST data plane, self-hosted: what `@azure/web-pubsub`'s
 * WebPubSubServiceClient calls (docs/compat/azure-webpubsub.md §2), under /api/hubs/{hub}/…, with
 * the status codes it expects (202 sends, 200 adds and grants, 204 removes, revokes and closes,
 * 200/404 existence checks) and an ErrorDetail body `{"code","message"}` on errors.
 *
 * Every call carries `Authorization: Bearer <jwt>` signed (HS256) with the access key; its `aud`
 * must name the request path. Sends, membership changes, closes and grants are published on the
 * bus (<GATEWAY_AZURE_TOPIC>/<hub>) and applied by every edge of every node; existence checks,
 * group listings and addConnectionToGroup's pre-check are answered from ingest's directory, which
 * holds the whole cluster's connections (azure-cluster-presence.ts).
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { AzureAccessTokens } from '../access-tokens.js';
import { checkPayload, encodeAzureMessage, isGroupName, MAX_MESSAGE_BYTES, servesHub, type AzureCommand } from '../commands.js';
import type { DataType } from '../frames.js';
import type { Target } from '../membership.js';
import { compileFilter } from '../odata-filter.js';
import { isPermission } from '../permissions.js';
import type { GatewayConfig } from '../../../config/config.js';
import { ERRORS } from '../../../errors/error-codes.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { AzureAnswer, AzureQuery } from '../messages.js';
import type { AzureUserGroupTask } from '../../../pool/store-protocol.js';
import { BoundedJsonError, parseJsonBytes } from '../../../protocol/bounded-json.js';
import { bearerToken, readBody } from '../../../edge/http-request.js';
import { sendBody, writeHead } from '../../../edge/http-response.js';
import { decodeComponent } from '../../../edge/request-encoding.js';

export interface AzureRestDeps {
  readonly config: GatewayConfig;
  readonly tokens: AzureAccessTokens;
  readonly stats: RowWriter<EdgeMetric>;
  readonly logger: Logger;
  readonly publish: (topic: string, payload: string | Uint8Array) => void;
  readonly query: (hub: string, query: AzureQuery) => Promise<AzureAnswer>;
  /**
   * Keeps a change of the user-group relation in the store (addUserToGroup and the removes), before
   * the command is published: a node started a moment later loads it (user-groups.ts). Throws the
   * store's refusal (GW_ERR_AZURE_USER_GROUPS_FULL past the bounds, GW_ERR_STORE_UNAVAILABLE).
   */
  readonly keepUserGroup: (task: AzureUserGroupTask) => Promise<void>;
  /** The base URL (`https://host:port`) of client URLs, read synchronously from the request (edge-worker.ts publicBase). */
  readonly baseUrl: (res: HttpResponse, req: HttpRequest) => string;
}

interface Reply {
  readonly status: number;
  readonly body?: string;
}

interface Call {
  readonly hub: string;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  readonly body: Promise<Buffer>;
  readonly contentType: string;
  /** The base of client URLs (read from the request before any await). */
  readonly base: string;
}

type Operation = (call: Call) => Promise<Reply>;

const ACCEPTED: Reply = { status: 202 };
const OK: Reply = { status: 200 };
const NO_CONTENT: Reply = { status: 204 };
const NOT_FOUND: Reply = { status: 404 };
const NO_BODY = Promise.resolve(Buffer.alloc(0));

function bad(why: string): never {
  throw new GatewayError('GW_ERR_AZURE_REQUEST_INVALID', why);
}

/** `text/plain` → text, `application/json` (or `+json`) → json, anything else → binary (§2.3). */
function dataTypeOf(contentType: string): DataType {
  const media = contentType.split(';')[0].trim().toLowerCase();
  if (media === 'text/plain') return 'text';
  if (media === 'application/json' || media.endsWith('+json')) return 'json';
  return 'binary';
}

function group(name: string): string {
  return isGroupName(name) ? name : bad('A group name must have 1-1024 characters, not only spaces');
}

function ttl(query: URLSearchParams): void {
  const value = query.get('messageTtlSeconds');
  if (value !== null && !(/^\d{1,3}$/.test(value) && Number(value) <= 300)) bad('messageTtlSeconds must be 0..300');
}

function filterOf(query: URLSearchParams): string | undefined {
  const filter = query.get('filter') ?? undefined;
  if (filter !== undefined && filter !== '') compileFilter(filter); // 400 now rather than dropped on the bus
  return filter === '' ? undefined : filter;
}

/** Where the data plane's routes are; their errors have the service's format (sendAzureError). */
export const AZURE_REST_PREFIX = '/api/hubs/';

/** The service's error: an ErrorDetail body `{"code","message"}` and `x-ms-error-code` (no body for HEAD). */
export function sendAzureError(res: HttpResponse, status: number, code: string, message: string, head: boolean): void {
  res.cork(() => {
    writeHead(res, status).writeHeader('x-ms-error-code', code).writeHeader('access-control-expose-headers', 'x-ms-error-code');
    if (head) res.end();
    else res.writeHeader('content-type', 'application/json').end(JSON.stringify({ code, message }));
  });
}

export function registerAzureRestRoutes(app: TemplatedApp, deps: AzureRestDeps): void {
  const { config, tokens, stats, logger } = deps;
  const publish = (hub: string, command: AzureCommand, payload?: Uint8Array) =>
    deps.publish(`${config.azure.topic}/${hub}`, encodeAzureMessage(command, payload));

  const send =
    (to: (c: Call) => Target, options: { excluded: boolean; filter: boolean }): Operation =>
    async (c) => {
      ttl(c.query);
      const filter = options.filter ? filterOf(c.query) : undefined;
      const excluded = options.excluded ? c.query.getAll('excluded') : [];
      const bytes = await c.body;
      const dataType = dataTypeOf(c.contentType);
      checkPayload(dataType, bytes, config.limits.maxJsonDepth);
      publish(c.hub, { op: 'send', to: to(c), dataType, ...(excluded.length > 0 ? { excluded } : {}), ...(filter ? { filter } : {}) }, bytes);
      return ACCEPTED;
    };

  const membership =
    (command: (c: Call) => AzureCommand, reply: Reply): Operation =>
    async (c) => {
      publish(c.hub, command(c));
      return reply;
    };

  /**
   * The user-group relation: kept in the store (bounded), then the command crosses the bus, so the
   * user's connections join or leave now and its future ones, on any node, join at connect.
   */
  const bounds = { perUser: config.azure.userGroups.perUser, max: config.azure.userGroups.max };
  const userGroup =
    (task: (c: Call) => AzureUserGroupTask): Operation =>
    async (c) => {
      const t = task(c);
      if (t.userId.length > 1024) bad('A user id must have at most 1024 characters'); // as the bus takes it (commands.ts)
      await deps.keepUserGroup(t);
      const who: Target = { kind: 'user', name: t.userId };
      if (t.op === 'azure-user-group-add') publish(c.hub, { op: 'join', group: t.group, who });
      else if (t.op === 'azure-user-group-remove') publish(c.hub, { op: 'leave', group: t.group, who });
      else publish(c.hub, { op: 'leaveAll', who });
      return t.op === 'azure-user-group-add' ? OK : NO_CONTENT;
    };

  const exists =
    (query: (c: Call) => AzureQuery): Operation =>
    async (c) =>
      (await deps.query(c.hub, query(c))) === true ? OK : NOT_FOUND;

  const close =
    (who: (c: Call) => Target): Operation =>
    async (c) => {
      const excluded = c.query.getAll('excluded');
      publish(c.hub, { op: 'close', who: who(c), ...(excluded.length > 0 ? { excluded } : {}), reason: c.query.get('reason') ?? undefined });
      return NO_CONTENT;
    };

  const permission = (c: Call) => (isPermission(c.params[0]) ? c.params[0] : bad('The permission must be joinLeaveGroup or sendToGroup'));
  const targetName = (c: Call) => c.query.get('targetName') ?? undefined;
  const connection = (c: Call, i = 0): Target => ({ kind: 'connection', name: c.params[i] });
  const user = (c: Call): Target => ({ kind: 'user', name: c.params[0] });

  const filtered =
    (op: 'joinFiltered' | 'leaveFiltered'): Operation =>
    async (c) => {
      let value: unknown;
      try {
        value = parseJsonBytes(await c.body, { maxDepth: config.limits.maxJsonDepth, forbidKeys: true });
      } catch (err) {
        bad(`The body must be JSON: {"groups":[…],"filter":"…"} (it ${err instanceof BoundedJsonError ? err.detail : 'is not'})`);
      }
      const { groups, filter } = (value ?? {}) as { groups?: unknown; filter?: unknown };
      if (!Array.isArray(groups) || !groups.every(isGroupName)) bad('"groups" must be a list of group names');
      if (typeof filter !== 'string' || filter === '') bad('"filter" must be an OData filter');
      compileFilter(filter);
      publish(c.hub, { op, groups, filter });
      return OK;
    };

  /** [method, path under /api/hubs/{hub}/ with {} for a parameter, operation] */
  const ROUTES: readonly (readonly [string, string, Operation])[] = [
    ['post', ':send', send(() => ({ kind: 'all' }), { excluded: true, filter: true })],
    ['post', 'users/{}/:send', send(user, { excluded: false, filter: true })],
    ['post', 'connections/{}/:send', send((c) => connection(c), { excluded: false, filter: false })],
    ['post', 'groups/{}/:send', send((c) => ({ kind: 'group', name: group(c.params[0]) }), { excluded: true, filter: true })],
    [
      'put',
      'groups/{}/connections/{}',
      async (c) => {
        if ((await deps.query(c.hub, { kind: 'connection', name: c.params[1] })) !== true) {
          throw new GatewayError('GW_ERR_AZURE_CONNECTION_NOT_FOUND', `Connection ${c.params[1]} does not exist`);
        }
        publish(c.hub, { op: 'join', group: group(c.params[0]), who: connection(c, 1) });
        return OK;
      },
    ],
    ['delete', 'groups/{}/connections/{}', membership((c) => ({ op: 'leave', group: group(c.params[0]), who: connection(c, 1) }), NO_CONTENT)],
    ['put', 'users/{}/groups/{}', userGroup((c) => ({ op: 'azure-user-group-add', hub: c.hub, userId: c.params[0], group: group(c.params[1]), ...bounds }))],
    ['delete', 'users/{}/groups/{}', userGroup((c) => ({ op: 'azure-user-group-remove', hub: c.hub, userId: c.params[0], group: group(c.params[1]) }))],
    ['delete', 'users/{}/groups', userGroup((c) => ({ op: 'azure-user-group-remove-user', hub: c.hub, userId: c.params[0] }))],
    ['delete', 'connections/{}/groups', membership((c) => ({ op: 'leaveAll', who: connection(c) }), NO_CONTENT)],
    ['post', ':addToGroups', filtered('joinFiltered')],
    ['post', ':removeFromGroups', filtered('leaveFiltered')],
    ['delete', 'connections/{}', close((c) => connection(c))],
    ['post', ':closeConnections', close(() => ({ kind: 'all' }))],
    ['post', 'groups/{}/:closeConnections', close((c) => ({ kind: 'group', name: group(c.params[0]) }))],
    ['post', 'users/{}/:closeConnections', close(user)],
    ['head', 'connections/{}', exists((c) => ({ kind: 'connection', name: c.params[0] }))],
    ['head', 'groups/{}', exists((c) => ({ kind: 'group', name: c.params[0] }))],
    ['head', 'users/{}', exists((c) => ({ kind: 'user', name: c.params[0] }))],
    [
      'put',
      'permissions/{}/connections/{}',
      membership((c) => ({ op: 'grant', permission: permission(c), connectionId: c.params[1], targetName: targetName(c) }), OK),
    ],
    [
      'delete',
      'permissions/{}/connections/{}',
      membership((c) => ({ op: 'revoke', permission: permission(c), connectionId: c.params[1], targetName: targetName(c) }), NO_CONTENT),
    ],
    [
      'head',
      'permissions/{}/connections/{}',
      exists((c) => ({ kind: 'permission', permission: permission(c), connectionId: c.params[1], targetName: targetName(c) })),
    ],
    [
      'get',
      'groups/{}/connections',
      async (c) => {
        const members = (await deps.query(c.hub, { kind: 'groupMembers', name: group(c.params[0]) })) as { connectionId: string; userId: string | null }[];
        const top = Number(c.query.get('top') ?? members.length);
        const value = members
          .slice(0, Number.isSafeInteger(top) && top > 0 ? top : members.length)
          .map((m) => (m.userId === null ? { connectionId: m.connectionId } : m));
        return { status: 200, body: JSON.stringify({ value }) };
      },
    ],
    [
      'post',
      ':generateToken',
      async (c) => {
        const minutes = Number(c.query.get('minutesToExpire') ?? 60);
        if (!Number.isInteger(minutes) || minutes < 1) bad('minutesToExpire must be a whole number of minutes, at least 1');
        const token = await tokens.signClient(c.base, c.hub, {
          userId: c.query.get('userId') ?? undefined,
          roles: c.query.getAll('role'),
          groups: c.query.getAll('group'),
          minutes,
        });
        return { status: 200, body: JSON.stringify({ token }) };
      },
    ],
  ];
  const compiled = ROUTES.map(([method, path, run]) => ({ method, parts: path.split('/'), run }));

  function match(method: string, segments: readonly string[]): { run: Operation; params: string[] } | null {
    for (const route of compiled) {
      if (route.method !== method || route.parts.length !== segments.length) continue;
      const params: string[] = [];
      let ok = true;
      for (let i = 0; i < segments.length && ok; i++) {
        if (route.parts[i] === '{}') params.push(decodeComponent(segments[i]) ?? '');
        else ok = route.parts[i] === segments[i];
      }
      if (ok && params.every((p) => p !== '')) return { run: route.run, params };
    }
    return null;
  }

  function reply(res: HttpResponse, r: Reply): void {
    if (r.body !== undefined) sendBody(res, r.status, 'application/json', r.body);
    else res.cork(() => writeHead(res, r.status).end());
  }

  function error(res: HttpResponse, status: number, code: string, message: string, head: boolean): void {
    stats.inc('azure_rest_errors_total');
    sendAzureError(res, status, code, message, head);
  }

  app.any(`${AZURE_REST_PREFIX}*`, (res, req) => {
    stats.inc('azure_rest_requests_total');
    const method = req.getMethod();
    const head = method === 'head';
    const path = req.getUrl();
    const [hub, ...segments] = path.slice(AZURE_REST_PREFIX.length).split('/');
    const hubName = decodeComponent(hub) ?? '';
    const query = new URLSearchParams(req.getQuery() ?? '');
    const token = bearerToken(req.getHeader('authorization'));
    const contentType = req.getHeader('content-type');
    const base = deps.baseUrl(res, req);
    const route = match(method, segments);
    const body = method === 'post' && route !== null ? readBody(res, MAX_MESSAGE_BYTES) : NO_BODY;
    body.catch(() => undefined); // awaited by the operation; never unhandled when auth fails first
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    (async (): Promise<Reply> => {
      await tokens.verifyRest(token, path);
      if (!servesHub(config.azure.hubs, hubName))
        throw new GatewayError('GW_ERR_HUB_UNKNOWN', `Hub ${JSON.stringify(hubName.slice(0, 130))} is not served here (GATEWAY_AZURE_HUBS)`);
      if (route === null) throw new GatewayError('GW_ERR_NOT_FOUND', `No operation ${method.toUpperCase()} ${path}`);
      return route.run({ hub: hubName, params: route.params, query, body, contentType, base });
    })().then(
      (r) => {
        if (!aborted) reply(res, r);
      },
      (err: unknown) => {
        if (aborted) return;
        if (err instanceof GatewayError) {
          const code = err.code === 'GW_ERR_BODY_TOO_LARGE' ? 'GW_ERR_MESSAGE_TOO_LARGE' : err.code;
          const message = code === 'GW_ERR_MESSAGE_TOO_LARGE' ? `Message Too Large: the body is over ${MAX_MESSAGE_BYTES} bytes (1 MB)` : err.message;
          error(res, ERRORS[code].status, code, message, head);
          return;
        }
        logger.error({ err }, 'azure REST request failed');
        error(res, 500, 'GW_ERR_INTERNAL', 'Internal error', head);
      },
    );
  });

  app.any('/api/health', (res, req) => {
    const method = req.getMethod();
    if (method !== 'head' && method !== 'get') {
      error(res, 404, 'GW_ERR_NOT_FOUND', 'No such operation', false);
      return;
    }
    reply(res, OK);
  });
}
