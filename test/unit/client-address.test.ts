import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClientAddresses, forwardedNode, parseForwarded, parseProxyEntry } from '../../src/edge/client-address.js';
import { loadConfig } from '../../src/config/load-config.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { selfSignedCertificate } from '../helpers/certificate.js';

function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return (err as Error).message;
  }
  throw new Error('expected loadConfig to throw');
}

describe('GATEWAY_TRUSTED_PROXIES entries', () => {
  it('parses IPv4 and IPv6 addresses and CIDRs', () => {
    expect(parseProxyEntry('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseProxyEntry('192.168.1.7')).toEqual({ address: '192.168.1.7', prefix: 32, family: 'ipv4' });
    expect(parseProxyEntry('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
    expect(parseProxyEntry('2001:db8::/32')).toEqual({ address: '2001:db8::', prefix: 32, family: 'ipv6' });
    expect(parseProxyEntry('fd00::/8')).toEqual({ address: 'fd00::', prefix: 8, family: 'ipv6' });
    expect(parseProxyEntry('::ffff:10.0.0.0/104')).toEqual({ address: '::ffff:10.0.0.0', prefix: 104, family: 'ipv6' });
    expect(parseProxyEntry('0.0.0.0/0').prefix).toBe(0);
  });

  it.each(['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/', '10.0.0.0/x', '10.0.0.256', 'proxy.local', '[::1]', '::1%eth0', '10.0.0.1:80', '2001:db8::/-1'])(
    'refuses %s',
    (entry) => {
      expect(() => parseProxyEntry(entry)).toThrow();
    },
  );

  it('matches peers inside IPv6 CIDRs, in any spelling (uWS writes every group in full)', () => {
    const clients = new ClientAddresses(['2001:db8::/32', '::1', '10.0.0.0/8'], false);
    expect(clients.isTrusted('2001:db8:ffff::1')).toBe(true);
    expect(clients.isTrusted('2001:0db8:0000:0000:0000:0000:0000:0005')).toBe(true);
    expect(clients.isTrusted('2001:db9::1')).toBe(false);
    expect(clients.isTrusted('0000:0000:0000:0000:0000:0000:0000:0001')).toBe(true);
    expect(clients.isTrusted('10.200.0.1')).toBe(true);
    expect(clients.isTrusted('11.0.0.1')).toBe(false);
    expect(clients.isTrusted('unknown')).toBe(false);
  });

  it('regression: a bad GATEWAY_TRUSTED_PROXIES entry stops the start naming the variable', () => {
    expect(configError({ GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8, 2001:db8::/200' })).toMatch(
      /^GATEWAY_TRUSTED_PROXIES has a prefix length that is not 0-128 \(got "2001:db8::\/200"\)/,
    );
    expect(configError({ GATEWAY_TRUSTED_PROXIES: 'lb.internal' })).toMatch(/^GATEWAY_TRUSTED_PROXIES must list IPv4 or IPv6 addresses/);
    expect(loadConfig({ GATEWAY_TRUSTED_PROXIES: ' 10.0.0.0/8 , fd00::/8 ' }).edge.trustedProxies).toEqual(['10.0.0.0/8', 'fd00::/8']);
    expect(loadConfig({}).edge.trustedProxies).toEqual([]);
  });
});

describe('the client address behind trusted proxies', () => {
  const clients = new ClientAddresses(['10.0.0.0/8', 'fd00::/8'], false);

  it('is the right-most X-Forwarded-For entry that is not a trusted proxy', () => {
    expect(clients.clientFrom('10.0.0.1', { xff: '203.0.113.7', forwarded: '' })).toBe('203.0.113.7');
    // The client forged the left entries; the proxies appended the right ones.
    expect(clients.clientFrom('10.0.0.1', { xff: '1.1.1.1, 6.6.6.6, 203.0.113.7, 10.0.0.9', forwarded: '' })).toBe('203.0.113.7');
    expect(clients.clientFrom('10.0.0.1', { xff: '2001:db8::7,fd00::3', forwarded: '' })).toBe('2001:db8::7');
    expect(clients.clientFrom('10.0.0.1', { xff: '::ffff:198.51.100.2', forwarded: '' })).toBe('198.51.100.2');
  });

  it('is the left-most entry when every entry is a trusted proxy, and the last proxy when the next entry is not an address', () => {
    expect(clients.clientFrom('10.0.0.1', { xff: '10.1.1.1, 10.2.2.2', forwarded: '' })).toBe('10.1.1.1');
    expect(clients.clientFrom('10.0.0.1', { xff: 'unknown', forwarded: '' })).toBe('10.0.0.1');
    expect(clients.clientFrom('10.0.0.1', { xff: 'garbage, 10.2.2.2', forwarded: '' })).toBe('10.2.2.2');
    expect(clients.clientFrom('10.0.0.1', { xff: '', forwarded: '' })).toBe('10.0.0.1');
  });

  it('reads Forwarded: for= (RFC 7239) when there is no X-Forwarded-For', () => {
    expect(clients.clientFrom('10.0.0.1', { xff: '', forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43' })).toBe('192.0.2.60');
    expect(clients.clientFrom('10.0.0.1', { xff: '', forwarded: 'for=198.51.100.1, for="[2001:db8:cafe::17]:4711", for=10.0.0.5' })).toBe('2001:db8:cafe::17');
    expect(clients.clientFrom('10.0.0.1', { xff: '', forwarded: 'for=_hidden, for=10.0.0.5' })).toBe('10.0.0.5');
    expect(clients.clientFrom('10.0.0.1', { xff: '198.51.100.9', forwarded: 'for=192.0.2.60' })).toBe('198.51.100.9');
  });

  it('parses Forwarded elements and their parameters, quoted or not', () => {
    const elements = parseForwarded('for="_gazonk", For="[2001:db8:cafe::17]:4711";proto=https;host="gps.example.com:8443", for=192.0.2.43');
    expect(elements.map((e) => Object.fromEntries(e))).toEqual([
      { for: '_gazonk' },
      { for: '[2001:db8:cafe::17]:4711', proto: 'https', host: 'gps.example.com:8443' },
      { for: '192.0.2.43' },
    ]);
    expect(forwardedNode('"[2001:db8:cafe::17]:4711"')).toBe('2001:db8:cafe::17');
    expect(forwardedNode('192.0.2.43:47011')).toBe('192.0.2.43');
    expect(forwardedNode('[1.2.3.4]')).toBeUndefined();
    expect(forwardedNode('_hidden')).toBeUndefined();
  });
});

describe('GATEWAY_TLS_*', () => {
  const certificate = () => selfSignedCertificate();

  it('loads a certificate and its key', () => {
    const { cert, key } = certificate();
    expect(loadConfig({ GATEWAY_TLS_CERT: cert, GATEWAY_TLS_KEY: key }).edge.tls).toEqual({
      certFile: cert,
      keyFile: key,
      passphrase: undefined,
      caFile: undefined,
    });
    expect(loadConfig({}).edge.tls).toBeUndefined();
  });

  it('regression: a bad certificate or key path stops the start naming the variable', () => {
    const { dir, cert, key } = certificate();
    expect(configError({ GATEWAY_TLS_CERT: join(dir, 'missing.pem'), GATEWAY_TLS_KEY: key })).toMatch(
      /^GATEWAY_TLS_CERT names a file that cannot be read \(ENOENT\)/,
    );
    expect(configError({ GATEWAY_TLS_CERT: cert, GATEWAY_TLS_KEY: join(dir, 'missing.pem') })).toMatch(
      /^GATEWAY_TLS_KEY names a file that cannot be read \(ENOENT\)/,
    );
    expect(configError({ GATEWAY_TLS_CERT: key, GATEWAY_TLS_KEY: key })).toMatch(/^GATEWAY_TLS_CERT is not a PEM certificate/);
    expect(configError({ GATEWAY_TLS_CERT: cert, GATEWAY_TLS_KEY: cert })).toMatch(/^GATEWAY_TLS_KEY is not a PEM private key/);
    expect(configError({ GATEWAY_TLS_CERT: cert })).toMatch(/^GATEWAY_TLS_KEY must be set with GATEWAY_TLS_CERT/);
    expect(configError({ GATEWAY_TLS_KEY: key })).toMatch(/^GATEWAY_TLS_CERT must be set with GATEWAY_TLS_KEY/);
    expect(configError({ GATEWAY_TLS_CA: cert })).toMatch(/^GATEWAY_TLS_CA needs GATEWAY_TLS_CERT and GATEWAY_TLS_KEY/);
    expect(configError({ GATEWAY_TLS_CERT: cert, GATEWAY_TLS_KEY: key, GATEWAY_TLS_CA: key })).toMatch(/^GATEWAY_TLS_CA is not a PEM certificate/);
  });

  it("regression: a key that is not the certificate's, or an encrypted key without its passphrase, stops the start", () => {
    const one = certificate();
    const other = certificate();
    expect(configError({ GATEWAY_TLS_CERT: one.cert, GATEWAY_TLS_KEY: other.key })).toMatch(/^GATEWAY_TLS_KEY is not the private key of GATEWAY_TLS_CERT/);
    const encrypted = join(one.dir, 'encrypted.pem');
    execFileSync('openssl', ['pkey', '-in', one.key, '-aes256', '-passout', 'pass:open sesame', '-out', encrypted], { stdio: 'ignore' });
    expect(configError({ GATEWAY_TLS_CERT: one.cert, GATEWAY_TLS_KEY: encrypted })).toMatch(
      /^GATEWAY_TLS_KEY cannot be decrypted: GATEWAY_TLS_PASSPHRASE is missing or wrong/,
    );
    expect(configError({ GATEWAY_TLS_CERT: one.cert, GATEWAY_TLS_KEY: encrypted, GATEWAY_TLS_PASSPHRASE: 'wrong' })).toMatch(
      /^GATEWAY_TLS_KEY cannot be decrypted/,
    );
    expect(loadConfig({ GATEWAY_TLS_CERT: one.cert, GATEWAY_TLS_KEY: encrypted, GATEWAY_TLS_PASSPHRASE: 'open sesame' }).edge.tls?.passphrase).toBe(
      'open sesame',
    );
    writeFileSync(join(one.dir, 'empty.pem'), '');
    expect(configError({ GATEWAY_TLS_CERT: join(one.dir, 'empty.pem'), GATEWAY_TLS_KEY: one.key })).toMatch(/^GATEWAY_TLS_CERT is not a PEM certificate/);
  });
});
