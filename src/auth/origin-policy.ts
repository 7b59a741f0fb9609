/**
 * Which browser origins may use the gateway (GATEWAY_ALLOWED_ORIGINS): WebSocket upgrades and
 * state-changing requests whose `Origin` is not allowed are refused, and only allowed origins get
 * CORS headers (edge/browser-guard.ts). The request's own origin is always allowed (same-origin
 * pages: the dashboard, viewer and console).
 *
 * Entries: `*` (any origin), an exact origin `scheme://host[:port]` (http or https, no path), or a
 * subdomain pattern `https://*.example.com[:port]` (any subdomain at any depth, not the bare
 * domain; without a scheme, `*.example.com` matches http and https), or `null`: the opaque origin
 * of pages opened from disk (file://) and of sandboxed frames (any site can make one, so this is for
 * development). Browsers send `Origin`
 * lower-case and without a default port, so entries are lower-cased and `:443`/`:80` dropped.
 */

interface OriginPattern {
  /** `https://` etc.; '' matches http and https. */
  readonly scheme: string;
  /** `.example.com` or `.example.com:8443`. */
  readonly suffix: string;
}

const HOST = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$|^\[[0-9a-f:.]+\]$/;

/** Drops the default port of the scheme, as browsers do in `Origin`. */
function withoutDefaultPort(scheme: string, hostPort: string): string {
  if (scheme === 'https://' && hostPort.endsWith(':443')) return hostPort.slice(0, -4);
  if (scheme === 'http://' && hostPort.endsWith(':80')) return hostPort.slice(0, -3);
  return hostPort;
}

function validHostPort(hostPort: string): boolean {
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(hostPort);
  return m !== null && HOST.test(m[1]) && (m[2] === undefined || Number(m[2]) <= 65535);
}

/** An entry, normalised, or the reason it is invalid. */
export function parseOriginEntry(entry: string): { exact: string } | { pattern: OriginPattern } | { any: true } | { invalid: string } {
  const text = entry.trim().toLowerCase();
  if (text === '*') return { any: true };
  if (text === 'null') return { exact: 'null' };
  const m = /^(?:(https?):\/\/)?(.*)$/.exec(text)!;
  const scheme = m[1] === undefined ? '' : `${m[1]}://`;
  const rest = m[2];
  if (rest.includes('/')) return { invalid: 'must be an origin without a path or trailing / (scheme://host[:port])' };
  if (rest.startsWith('*.')) {
    const hostPort = rest.slice(2);
    if (!validHostPort(hostPort) || !hostPort.includes('.'))
      return { invalid: 'a pattern must be *.domain with at least two labels, e.g. https://*.example.com' };
    return { pattern: { scheme, suffix: `.${scheme === '' ? hostPort : withoutDefaultPort(scheme, hostPort)}` } };
  }
  if (scheme === '') return { invalid: 'an exact origin needs its scheme (http:// or https://)' };
  if (rest.includes('*') || !validHostPort(rest)) return { invalid: 'is not an origin (scheme://host[:port]) nor a pattern (https://*.domain)' };
  return { exact: `${scheme}${withoutDefaultPort(scheme, rest)}` };
}

/** The compiled GATEWAY_ALLOWED_ORIGINS (entries already validated by load-config.ts). */
export class OriginPolicy {
  readonly any: boolean;
  private readonly exact = new Set<string>();
  private readonly patterns: OriginPattern[] = [];

  constructor(entries: readonly string[], ownOrigins: readonly string[] = []) {
    let any = false;
    for (const entry of [...entries, ...ownOrigins]) {
      const parsed = parseOriginEntry(entry);
      if ('any' in parsed) any = true;
      else if ('exact' in parsed) this.exact.add(parsed.exact);
      else if ('pattern' in parsed) this.patterns.push(parsed.pattern);
      else throw new Error(`origin ${JSON.stringify(entry)} ${parsed.invalid}`);
    }
    this.any = any;
  }

  /** True when a page on `origin` may connect; `own` is the request's own origin (always allowed). */
  allows(origin: string, own: string): boolean {
    if (origin === own || this.any || this.exact.has(origin)) return true;
    for (const p of this.patterns) {
      if (!origin.endsWith(p.suffix)) continue;
      const scheme = p.scheme !== '' ? p.scheme : origin.startsWith('https://') ? 'https://' : 'http://';
      if (!origin.startsWith(scheme)) continue;
      const label = origin.slice(scheme.length, origin.length - p.suffix.length);
      if (label !== '' && /^[a-z0-9.-]+$/.test(label) && !label.startsWith('.') && !label.endsWith('.')) return true;
    }
    return false;
  }
}
