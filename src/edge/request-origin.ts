/**
 * The request's own origin, as a browser on a page served by this gateway would send it in
 * `Origin`: the scheme and host the client addressed (client-address.ts: https with native TLS,
 * or what a trusted proxy forwarded in X-Forwarded-Proto/Host or Forwarded; else http and the
 * Host header), lower-cased, without the default port. Same-origin checks (browser-guard.ts) and
 * the pages' CSP (page-routes.ts) use it.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { ClientAddresses } from './client-address.js';

/** Host header values accepted as they are (host, IPv4, [IPv6], optional port); anything else has no origin. */
const HOST = /^[A-Za-z0-9.:[\]-]{1,255}$/;

/** `scheme://host[:port]` from a Host header value, or '' when it is missing or malformed. */
export function originFrom(scheme: 'http' | 'https', host: string): string {
  if (!HOST.test(host)) return '';
  const lower = host.toLowerCase();
  const defaultPort = scheme === 'https' ? ':443' : ':80';
  return `${scheme}://${lower.endsWith(defaultPort) ? lower.slice(0, -defaultPort.length) : lower}`;
}

/** The origin of the request itself (same-origin pages send exactly this). Call before the handler's first await. */
export type OwnOrigin = (res: HttpResponse, req: HttpRequest) => string;

/** requestOrigin for this gateway's TLS and trusted proxies. */
export function ownOrigin(clients: ClientAddresses): OwnOrigin {
  return (res, req) => {
    const { scheme, host } = clients.origin(res, req);
    return originFrom(scheme, host);
  };
}
