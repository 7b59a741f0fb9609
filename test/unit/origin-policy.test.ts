import { describe, expect, it } from 'vitest';
import { OriginPolicy, parseOriginEntry } from '../../src/auth/origin-policy.js';
import { originFrom } from '../../src/edge/request-origin.js';
import { resolveClientImports } from '../../src/edge/page-routes.js';

describe('GATEWAY_ALLOWED_ORIGINS entries', () => {
  it('normalises exact origins and patterns as browsers write Origin', () => {
    expect(parseOriginEntry('HTTPS://App.Example.com:443')).toEqual({ exact: 'https://app.example.com' });
    expect(parseOriginEntry('http://localhost:3000')).toEqual({ exact: 'http://localhost:3000' });
    expect(parseOriginEntry('http://[::1]:3000')).toEqual({ exact: 'http://[::1]:3000' });
    expect(parseOriginEntry('https://*.example.com')).toEqual({ pattern: { scheme: 'https://', suffix: '.example.com' } });
    expect(parseOriginEntry('*.example.com')).toEqual({ pattern: { scheme: '', suffix: '.example.com' } });
    expect(parseOriginEntry('*')).toEqual({ any: true });
    expect(parseOriginEntry('null')).toEqual({ exact: 'null' }); // pages opened from disk
  });

  it('refuses what is not an origin', () => {
    for (const bad of [
      'app.example.com',
      'https://app.example.com/',
      'https://app.example.com/path',
      'https://*',
      'https://*.com',
      'ftp://a.example.com',
      'https://a*.example.com',
      'https://exa mple.com',
      'https://a.example.com:99999',
    ]) {
      expect(parseOriginEntry(bad), bad).toHaveProperty('invalid');
    }
  });

  it('matches subdomains at any depth, never the bare domain, another scheme, port or a look-alike', () => {
    const policy = new OriginPolicy(['https://*.example.com', '*.example.net', 'https://app.example.org']);
    const own = 'http://gw.local:8080';
    for (const ok of ['https://a.example.com', 'https://a.b.example.com', 'http://a.example.net', 'https://a.example.net', 'https://app.example.org', own])
      expect(policy.allows(ok, own), ok).toBe(true);
    for (const no of [
      'https://example.com',
      'http://a.example.com',
      'https://a.example.com:8443',
      'https://evilexample.com',
      'https://a.example.com.evil.io',
      'https://.example.com',
      'ftp://a.example.net',
      'https://app.example.org:444',
      'null',
      'http://gw.local',
    ])
      expect(policy.allows(no, own), no).toBe(false);
    expect(new OriginPolicy(['*']).allows('null', own)).toBe(true);
    expect(new OriginPolicy(['null']).allows('null', own)).toBe(true);
  });
});

describe("the request's own origin", () => {
  it('is the scheme and the Host header, lower-cased, without the default port; nothing for a malformed Host', () => {
    expect(originFrom('http', '127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    expect(originFrom('http', 'GW.Example.com:80')).toBe('http://gw.example.com');
    expect(originFrom('https', 'gw.example.com:443')).toBe('https://gw.example.com');
    expect(originFrom('http', '')).toBe('');
    expect(originFrom('http', 'a b')).toBe('');
  });
});

describe('the served client', () => {
  it("imports msgpackr from the gateway's copy, relative to /assets/client/", () => {
    expect(resolveClientImports("const { unpack } = await import('msgpackr');", 'codec.js')).toBe("const { unpack } = await import('../msgpackr/index.js');");
    expect(resolveClientImports('import { pack } from "msgpackr";', 'x.js')).toBe('import { pack } from "../msgpackr/index.js";');
    expect(resolveClientImports("import('msgpackr-extract')", 'x.js')).toBe("import('msgpackr-extract')");
  });
});
