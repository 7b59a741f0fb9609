/**
 * A REST call answered by the store pool, the one way every such route does it (collections, the
 * publish API, trips, equipment): headers and the body reader are taken synchronously, then the
 * token and its ACL grant (when the route is guarded), the task, the store call, and the reply. A
 * write that produced an event nudges the relay (ingest) so the event leaves at once.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { Acl, AclKind } from '../auth/acl.js';
import type { TokenChecks } from '../auth/token-checks.js';
import { tokenFailure } from '../auth/token-error-codes.js';
import type { GatewayConfig } from '../config/config.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import type { StoreReply, StoreTask } from '../pool/store-protocol.js';
import type { LogRow } from '../store/store.js';
import type { PortClient } from '../threads/port-rpc.js';
import { bearerToken, readJsonBody } from './http-request.js';
import { handleAsync } from './http-response.js';
import { pathParameter } from './request-encoding.js';

export interface StoreCallDeps {
  readonly config: GatewayConfig;
  readonly store: PortClient<StoreTask, StoreReply>;
  readonly checks: TokenChecks;
  readonly acl: Acl;
  readonly stats: RowWriter<EdgeMetric>;
  readonly logger: Logger;
  /** Tells the relay that the outbox has new rows (with the rows, when the reply has them: ingest delivers them at once). */
  readonly nudgeRelay: (events?: readonly LogRow[]) => void;
}

/** Who may do what: a token with this ACL grant on the channel, or nobody checks (null). */
export interface Guard {
  readonly kind: AclKind;
  readonly channel: string;
}

/** Builds the store task from the parsed body and the route's first parameter (may throw GatewayError). */
export type Build = (body: unknown, id: string | undefined) => StoreTask;

const MAX_LIMIT = 1000;

/** `skip` and `limit` of a list request, read while the request is valid; an error is thrown later, in the handler. */
export function pageQuery(req: HttpRequest): { skip: number; limit: number } | GatewayError {
  const read = (name: string, fallback: number, max: number) => {
    const text = req.getQuery(name);
    if (text === undefined || text === '') return fallback;
    if (!/^\d{1,9}$/.test(text) || Number(text) > max) throw new GatewayError('GW_ERR_QUERY_INVALID', `${name} must be a whole number from 0 to ${max}`);
    return Number(text);
  };
  try {
    return { skip: read('skip', 0, 1e9), limit: read('limit', 100, MAX_LIMIT) };
  } catch (err) {
    return err as GatewayError;
  }
}

/**
 * One request: headers and the body reader are taken synchronously (uWS invalidates the request
 * when the handler returns, and body chunks can come at once), then the token, validation, the
 * store call, and the reply.
 */
export function serveStoreCall(res: HttpResponse, req: HttpRequest, deps: StoreCallDeps, guard: Guard | null, withBody: boolean, build: Build): void {
  const { config, store, checks, acl, stats, logger } = deps;
  stats.inc('rest_requests_total');
  const token = guard ? bearerToken(req.getHeader('authorization')) : undefined;
  const id = pathParameter(req, 0);
  handleAsync(
    res,
    async () => {
      const body = withBody ? readJsonBody(res, { maxBytes: config.events.maxBodyBytes, maxDepth: config.limits.maxJsonDepth }) : Promise.resolve(undefined);
      body.catch(() => undefined); // awaited below; never an unhandled rejection if auth fails first
      if (guard) {
        let principal;
        try {
          principal = await checks.jwt(token);
        } catch (err) {
          throw tokenFailure(err);
        }
        if (!acl.allows(principal, guard.kind, guard.channel)) {
          throw new GatewayError('GW_ERR_FORBIDDEN', `Not allowed to ${guard.kind === 'publish' ? 'write to' : 'read'} channel ${guard.channel}`);
        }
      }
      const reply = await store.call(build(await body, id === '' ? undefined : id));
      if (!reply.ok) throw new GatewayError(reply.code, reply.message);
      if (reply.wroteEvent) deps.nudgeRelay(reply.events);
      return { status: reply.status, contentType: 'application/json', body: reply.body };
    },
    (err) => logger.error({ err }, 'REST request failed'),
    () => stats.inc('rest_errors_total'),
  );
}
