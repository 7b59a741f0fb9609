/**
 * Checks that run before every route: each wrapper installed here sees every request and every
 * WebSocket upgrade registered after it, once (never per frame), so no route can be added around it.
 * The edge installs two: the origin checks (browser-guard.ts) and the encoding check
 * (request-encoding.ts).
 */
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocketBehavior } from 'uWebSockets.js';

type Handler = (res: HttpResponse, req: HttpRequest) => void | Promise<void>;

const HTTP_METHODS = ['get', 'post', 'options', 'del', 'patch', 'put', 'head', 'connect', 'trace', 'any'] as const;

/** A check run before a route's handler: true lets the request through; false means it answered. */
type RouteCheck = (res: HttpResponse, req: HttpRequest, upgrade: boolean) => boolean;

/**
 * Makes every route registered on `app` from now on run `passes` first, once per request or
 * upgrade (never per frame). Routes do nothing for it, so none can be registered around it. Every
 * WebSocket route must have an `upgrade` handler: the check runs there. Checks wrapped later run
 * first.
 */
export function guardEveryRoute(app: TemplatedApp, passes: RouteCheck): TemplatedApp {
  const target = app as unknown as Record<string, unknown>;
  for (const method of HTTP_METHODS) {
    const register = (target[method] as (pattern: string, handler: Handler) => TemplatedApp).bind(app);
    target[method] = (pattern: string, handler: Handler) => register(pattern, (res, req) => (passes(res, req, false) ? handler(res, req) : undefined));
  }
  const registerWs = (target.ws as TemplatedApp['ws']).bind(app);
  target.ws = <T>(pattern: string, behavior: WebSocketBehavior<T>) => {
    const upgrade = behavior.upgrade;
    if (upgrade === undefined) throw new Error(`WebSocket route ${pattern} has no upgrade handler (the request check runs there)`);
    return registerWs(pattern, { ...behavior, upgrade: (res, req, context) => (passes(res, req, true) ? upgrade(res, req, context) : undefined) });
  };
  return app;
}
