/**
 * The request's own origin, as a browser on a page served by this gateway would send it in
 * `Origin`: the scheme (http: the gateway speaks plain HTTP) and the Host header, lower-cased,
 * without the default port. Same-origin checks (browser-guard.ts) and the pages' CSP
 * (page-routes.ts) use it; behind a TLS proxy (X-Forwarded-Proto) or with native TLS this is the
 * one place that learns the scheme.
 */
import type { HttpRequest } from 'uWebSockets.js';

/** Host header values accepted as they are (host, IPv4, [IPv6], optional port); anything else has no origin. */
const HOST = /^[A-Za-z0-9.:[\]-]{1,255}$/;

/** `scheme://host[:port]` from a Host header value, or '' when it is missing or malformed. */
export function originFrom(scheme: 'http' | 'https', host: string): string {
  if (!HOST.test(host)) return '';
  const lower = host.toLowerCase();
  const defaultPort = scheme === 'https' ? ':443' : ':80';
  return `${scheme}://${lower.endsWith(defaultPort) ? lower.slice(0, -defaultPort.length) : lower}`;
}

/** The origin of the request itself (same-origin pages send exactly this). */
export function requestOrigin(req: HttpRequest): string {
  return originFrom('http', req.getHeader('host'));
}
