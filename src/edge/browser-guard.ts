/**
 * What browsers from other origins may do, checked once per request or upgrade before every route
 * (guardEveryRoute): the gateway's own origin (request-origin.ts) and GATEWAY_ALLOWED_ORIGINS
 * (auth/origin-policy.ts) are allowed, every other `Origin` is not. Requests without `Origin`
 * (native clients, devices, plain navigations) pass untouched.
 *
 * - WebSocket upgrades from an origin not allowed: 403 GW_ERR_ORIGIN_FORBIDDEN (browsers do not
 *   apply CORS to WebSockets, so this is the only thing that keeps other sites' pages off the streams).
 * - CORS preflights (`OPTIONS` with `Access-Control-Request-Method`), on any path: 204 with the
 *   allowed methods and headers for an allowed origin, 403 GW_ERR_ORIGIN_FORBIDDEN without CORS
 *   headers otherwise.
 * - Other requests from an allowed origin: their answer carries `Access-Control-Allow-Origin`
 *   (echoing the origin) through writeHead (http-response.ts). From an origin not allowed: GET and
 *   HEAD are answered without CORS headers (the browser keeps the answer from the page); anything
 *   else, which a page may send without a preflight (a form POST), is refused with 403.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { OriginPolicy } from '../auth/origin-policy.js';
import { markCors, writeHead } from './http-response.js';
import { guardEveryRoute } from './route-guard.js';
import type { OwnOrigin } from './request-origin.js';
import { AZURE_REST_PREFIX } from '../features/azure/edge/azure-rest-routes.js';

const CORS_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
const CORS_HEADERS = 'Authorization, Content-Type';
/** What @azure/web-pubsub's pipeline adds in a browser, offered on the Azure data plane only. */
const AZURE_CORS_HEADERS = `${CORS_HEADERS}, x-ms-client-request-id, x-ms-useragent, x-ms-date`;
/** How long a browser may cache a preflight answer (seconds). */
const CORS_MAX_AGE_S = 600;

export interface BrowserGuardDeps {
  readonly policy: OriginPolicy;
  /** GATEWAY_CORS_CREDENTIALS. */
  readonly credentials: boolean;
  /** The request's own origin (same-origin pages are always allowed). */
  readonly ownOrigin: OwnOrigin;
  /** Counts and answers 403 GW_ERR_ORIGIN_FORBIDDEN in the route family's error format. */
  readonly refuse: (res: HttpResponse, req: HttpRequest, origin: string, upgrade: boolean) => void;
}

function answerPreflight(res: HttpResponse, url: string): void {
  res.cork(() => {
    writeHead(res, 204)
      .writeHeader('access-control-allow-methods', CORS_METHODS)
      .writeHeader('access-control-allow-headers', url.startsWith(AZURE_REST_PREFIX) ? AZURE_CORS_HEADERS : CORS_HEADERS)
      .writeHeader('access-control-max-age', String(CORS_MAX_AGE_S))
      .end();
  });
}

/** Makes every route registered on `app` from now on pass the origin checks first. */
export function guardBrowsers(app: TemplatedApp, deps: BrowserGuardDeps): TemplatedApp {
  const { policy, credentials, refuse, ownOrigin } = deps;
  return guardEveryRoute(app, (res, req, upgrade) => {
    const origin = req.getHeader('origin');
    if (origin === '') {
      if (!upgrade) markCors(res, undefined, false);
      return true;
    }
    const allowed = policy.allows(origin, ownOrigin(res, req));
    if (upgrade) {
      if (!allowed) refuse(res, req, origin, true);
      return allowed;
    }
    markCors(res, allowed ? origin : undefined, credentials);
    const method = req.getMethod();
    if (method === 'options' && req.getHeader('access-control-request-method') !== '') {
      if (allowed) answerPreflight(res, req.getUrl());
      else refuse(res, req, origin, false);
      return false;
    }
    if (allowed || method === 'get' || method === 'head') return true;
    refuse(res, req, origin, false);
    return false;
  });
}
