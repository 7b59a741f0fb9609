/**
 * Who a request comes from and which scheme and host it was sent to, behind reverse proxies
 * (GATEWAY_TRUSTED_PROXIES). Every address the per-IP limits key on and every base URL of a link
 * the gateway hands out is read here, once per request, synchronously in the uWS handler (the
 * request is invalid after it returns or awaits).
 *
 * Only when the TCP peer is a trusted proxy are the forwarding headers read:
 * - the client address is the right-most `X-Forwarded-For` entry that is not itself a trusted
 *   proxy (each proxy appends its peer, so entries left of it may be forged by the client); without
 *   `X-Forwarded-For`, the `for=` parameters of `Forwarded` (RFC 7239) are read the same way. An
 *   entry that is not an address (`unknown`, `_hidden`, garbage) stops the walk: the last proxy
 *   that named it is taken as the client, never the text itself.
 * - the scheme and host are the left-most `X-Forwarded-Proto` / `X-Forwarded-Host` values (what
 *   the first proxy was asked), else `Forwarded`'s `proto=` and `host=`.
 * From any other peer these headers are ignored. The scheme defaults to https when the gateway
 * serves TLS itself (GATEWAY_TLS_CERT).
 */
import { BlockList, isIP } from 'node:net';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

interface RequestOrigin {
  readonly scheme: 'http' | 'https';
  /** The Host (or forwarded host) as sent; the caller validates it before using it in a URL. */
  readonly host: string;
}

interface ProxyRange {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/**
 * One GATEWAY_TRUSTED_PROXIES entry: an IPv4 or IPv6 address, optionally `/prefix` (a bare address
 * is /32 or /128). Throws an Error saying what is wrong (load-config.ts names the variable).
 */
export function parseProxyEntry(text: string): ProxyRange {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = address.includes('%') ? 0 : isIP(address);
  if (version === 0) throw new Error('must list IPv4 or IPv6 addresses or CIDRs such as 10.0.0.0/8 or fd00::/8 (no brackets, ports or zone ids)');
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const bits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) throw new Error(`has a prefix length that is not 0-${max}`);
    prefix = Number(bits);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** The TCP peer's IP as text, IPv4-mapped IPv6 normalised (docs/notes/uws.md). */
function peerIp(res: HttpResponse): string {
  return unmapV4(Buffer.from(res.getRemoteAddressAsText()).toString());
}

/** `::ffff:1.2.3.4` and uWS's expanded `0000:…:ffff:0102:0304` → `1.2.3.4`; anything else unchanged. */
function unmapV4(text: string): string {
  const mapped = /^(?:0000:){5}ffff:([0-9a-f]{4}):([0-9a-f]{4})$/i.exec(text);
  if (mapped) {
    const hi = parseInt(mapped[1], 16);
    const lo = parseInt(mapped[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  const dotted = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(text);
  return dotted ? dotted[1] : text;
}

/**
 * A node of `X-Forwarded-For` or `Forwarded: for=` as an address: quotes, IPv6 brackets and a port
 * removed, IPv4-mapped IPv6 made IPv4. undefined when it is not an IP address.
 */
export function forwardedNode(raw: string): string | undefined {
  let text = raw.trim();
  if (text.length > 1 && text.startsWith('"') && text.endsWith('"')) text = text.slice(1, -1);
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0 || (end + 1 < text.length && text[end + 1] !== ':')) return undefined;
    text = text.slice(1, end);
    return isIP(text) === 6 && !text.includes('%') ? unmapV4(text) : undefined;
  }
  const colon = text.indexOf(':');
  if (colon >= 0 && text.indexOf(':', colon + 1) < 0) text = text.slice(0, colon); // 192.0.2.1:4711
  return isIP(text) === 0 || text.includes('%') ? undefined : unmapV4(text);
}

interface Forwarding {
  xff: string;
  forwarded: string;
  proto: string;
  host: string;
}

/** The parameters of `Forwarded` elements: `for=a, for=b;proto=https` → [{for: 'a'}, {for: 'b', proto: 'https'}]. */
export function parseForwarded(header: string): Map<string, string>[] {
  const elements: Map<string, string>[] = [];
  // Commas and semicolons inside quoted strings ("[2001:db8::1]:80" has none, but be exact).
  let current = new Map<string, string>();
  let i = 0;
  const n = header.length;
  while (i < n) {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
    const eq = header.indexOf('=', i);
    if (eq < 0) break;
    const key = header.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    let value: string;
    if (header[i] === '"') {
      let j = i + 1;
      let out = '';
      while (j < n && header[j] !== '"') {
        if (header[j] === '\\' && j + 1 < n) j++;
        out += header[j++];
      }
      value = out;
      i = j + 1;
    } else {
      let j = i;
      while (j < n && header[j] !== ';' && header[j] !== ',') j++;
      value = header.slice(i, j).trim();
      i = j;
    }
    if (key !== '' && !current.has(key)) current.set(key, value);
    while (i < n && header[i] !== ';' && header[i] !== ',') i++;
    if (header[i] === ',') {
      elements.push(current);
      current = new Map();
    }
    i++;
  }
  if (current.size > 0) elements.push(current);
  return elements;
}

const firstValue = (list: string) => {
  const comma = list.indexOf(',');
  return (comma < 0 ? list : list.slice(0, comma)).trim();
};

export class ClientAddresses {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  /** `entries`: validated GATEWAY_TRUSTED_PROXIES; `tls`: the gateway serves https/wss itself. */
  constructor(
    entries: readonly string[],
    private readonly tls: boolean,
  ) {
    for (const entry of entries) {
      const range = parseProxyEntry(entry);
      this.trusted.addSubnet(range.address, range.prefix, range.family);
    }
    this.any = entries.length > 0;
  }

  isTrusted(ip: string): boolean {
    const version = isIP(ip);
    return version !== 0 && this.trusted.check(ip, version === 4 ? 'ipv4' : 'ipv6');
  }

  /** The client's address (per-IP limits, logs). Call before the handler's first await. */
  ip(res: HttpResponse, req: HttpRequest): string {
    const peer = peerIp(res);
    if (!this.any || !this.isTrusted(peer)) return peer;
    return this.clientFrom(peer, this.forwarding(req));
  }

  /** The scheme and host the client addressed (links the gateway builds). Call before the handler's first await. */
  origin(res: HttpResponse, req: HttpRequest): RequestOrigin {
    const scheme = this.tls ? 'https' : 'http';
    if (!this.any || !this.isTrusted(peerIp(res))) return { scheme, host: req.getHeader('host') };
    const f = this.forwarding(req);
    let proto = f.proto === '' ? '' : firstValue(f.proto).toLowerCase();
    let host = f.host === '' ? '' : firstValue(f.host);
    if ((proto === '' || host === '') && f.forwarded !== '') {
      const first = parseForwarded(f.forwarded)[0];
      if (proto === '') proto = first?.get('proto')?.toLowerCase() ?? '';
      if (host === '') host = first?.get('host') ?? '';
    }
    return {
      scheme: proto === 'https' || proto === 'wss' ? 'https' : proto === 'http' || proto === 'ws' ? 'http' : scheme,
      host: host === '' ? req.getHeader('host') : host,
    };
  }

  /** The forwarding headers, repeated ones joined with commas (RFC 9110 5.3). */
  private forwarding(req: HttpRequest): Forwarding {
    const f: Forwarding = { xff: '', forwarded: '', proto: '', host: '' };
    req.forEach((name, value) => {
      switch (name) {
        case 'x-forwarded-for':
          f.xff = f.xff === '' ? value : `${f.xff},${value}`;
          break;
        case 'forwarded':
          f.forwarded = f.forwarded === '' ? value : `${f.forwarded},${value}`;
          break;
        case 'x-forwarded-proto':
          if (f.proto === '') f.proto = value;
          break;
        case 'x-forwarded-host':
          if (f.host === '') f.host = value;
          break;
        default:
      }
    });
    return f;
  }

  /** Walks the chain right to left from the (trusted) peer. */
  clientFrom(peer: string, f: Pick<Forwarding, 'xff' | 'forwarded'>): string {
    const chain = f.xff !== '' ? f.xff.split(',') : f.forwarded !== '' ? parseForwarded(f.forwarded).map((e) => e.get('for') ?? '') : [];
    let client = peer;
    for (let i = chain.length - 1; i >= 0; i--) {
      const node = forwardedNode(chain[i]);
      if (node === undefined) return client;
      client = node;
      if (!this.isTrusted(node)) return node;
    }
    return client;
  }
}
