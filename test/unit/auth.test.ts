/** Token checks: every kind of bad token the authentication issue names is refused for the right reason. */
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeys } from 'paseto-ts/v4';
import { sign as signPaseto } from 'paseto-ts/v4';
import { JwtVerifier, type JwtConfig } from '../../src/auth/jwt-verifier.js';
import { ShareTokens } from '../../src/auth/share-tokens.js';
import { RevocationList } from '../../src/auth/revocation-list.js';
import { Acl } from '../../src/auth/acl.js';
import { TokenError } from '../../src/auth/token-error.js';
import type { Principal } from '../../src/auth/principal.js';
import { AUDIENCE, hs256WithPublicKey, ISSUER, keyPairs, mintJwt, SECRET, unsecuredJwt, type KeyPairs } from '../helpers/tokens.js';

const BASE: JwtConfig = { issuer: ISSUER, audience: AUDIENCE, clockToleranceS: 5, rolesClaim: 'roles', maxTokenBytes: 4096 };

async function refused(verifier: JwtVerifier, token: string | undefined): Promise<TokenError> {
  const err = await verifier.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenError);
  // Nothing is leaked: the message never carries the token or a library's text.
  if (token) expect((err as Error).message).not.toContain(token.slice(0, 20));
  return err as TokenError;
}

describe('JwtVerifier', () => {
  let keys: KeyPairs;
  let verifier: JwtVerifier;
  let withJwks: JwtVerifier;
  beforeAll(async () => {
    keys = await keyPairs();
    verifier = await JwtVerifier.create({
      ...BASE,
      secret: SECRET,
      publicKeys: [
        { alg: 'RS256', kid: 'kid-RS256', pem: keys.pem.RS256 },
        { alg: 'ES256', pem: keys.pem.ES256 },
      ],
    });
    withJwks = await JwtVerifier.create({ ...BASE, jwks: keys.jwks });
  });

  it('accepts HS256, RS256 and ES256 with their pinned keys, and EdDSA from a JWKS', async () => {
    const hs = await verifier.verify(await mintJwt('123', { roles: ['LEVEL_1'], role: 'ops', devices: ['SIM-1'] }));
    expect(hs).toMatchObject({ userId: '123', roles: ['LEVEL_1', 'ops'], devices: ['SIM-1'], channels: [] });
    expect(hs.expiresAt).toBeGreaterThan(Date.now());
    expect((await verifier.verify(await mintJwt('u', {}, { alg: 'RS256', keys }))).userId).toBe('u');
    expect((await verifier.verify(await mintJwt('u', {}, { alg: 'ES256', keys }))).userId).toBe('u');
    expect((await withJwks.verify(await mintJwt('u', {}, { alg: 'EdDSA', keys }))).userId).toBe('u');
    expect((await withJwks.verify(await mintJwt('u', {}, { alg: 'RS256', keys }))).userId).toBe('u');
  });

  it('refuses missing, malformed, truncated and oversized tokens', async () => {
    const good = await mintJwt('123');
    expect((await refused(verifier, undefined)).reason).toBe('missing');
    expect((await refused(verifier, '')).reason).toBe('missing');
    expect((await refused(verifier, 'not a jwt')).reason).toBe('malformed');
    expect((await refused(verifier, 'a.b.c')).reason).toBe('malformed');
    // Truncated: refused as malformed or as a bad signature, depending on where the cut falls.
    for (const cut of [1, 7, 10, 30]) expect(['malformed', 'signature']).toContain((await refused(verifier, good.slice(0, good.length - cut))).reason);
    expect((await refused(verifier, good.split('.').slice(0, 2).join('.'))).reason).toBe('malformed');
    expect((await refused(verifier, `${good}.${'A'.repeat(5000)}`)).reason).toBe('too_large');
  });

  it('refuses alg none and the HS256-with-the-RS256-public-key confusion', async () => {
    expect((await refused(verifier, unsecuredJwt('admin'))).reason).toBe('algorithm');
    expect((await refused(verifier, hs256WithPublicKey('admin', keys.pem.RS256))).reason).toBe('signature');
    // Without an HS256 secret, no HS256 token is even considered.
    expect((await refused(withJwks, hs256WithPublicKey('admin', keys.pem.RS256))).reason).toBe('algorithm');
  });

  it('refuses expired, not-yet-valid, wrong issuer, wrong audience and unknown kid', async () => {
    expect((await refused(verifier, await mintJwt('1', {}, { expiresInS: -60 }))).reason).toBe('expired');
    expect((await refused(verifier, await mintJwt('1', {}, { notBeforeS: 600 }))).reason).toBe('not_yet_valid');
    expect((await refused(verifier, await mintJwt('1', {}, { issuer: 'https://evil.test' }))).reason).toBe('issuer');
    expect((await refused(verifier, await mintJwt('1', {}, { audience: 'someone-else' }))).reason).toBe('audience');
    expect((await refused(withJwks, await mintJwt('1', {}, { alg: 'RS256', keys, kid: 'kid-unknown' }))).reason).toBe('unknown_key');
    expect((await refused(verifier, await mintJwt('1', {}, { alg: 'RS256', keys, kid: 'kid-unknown' }))).reason).toBe('unknown_key');
    // Within the clock tolerance, a just-expired token still passes.
    expect((await verifier.verify(await mintJwt('1', {}, { expiresInS: -2 }))).userId).toBe('1');
  });

  it('refuses a token signed by a key of the right algorithm that is not configured', async () => {
    const other = await keyPairs();
    expect((await refused(verifier, await mintJwt('1', {}, { alg: 'ES256', keys: other }))).reason).toBe('signature');
    expect((await refused(verifier, await mintJwt('1', {}, { alg: 'EdDSA', keys }))).reason).toBe('algorithm');
  });

  it('refuses to start with a short secret, no key, or a JWKS key without alg', async () => {
    await expect(JwtVerifier.create({ ...BASE, secret: 'short' })).rejects.toThrow(/at least 32 bytes/);
    await expect(JwtVerifier.create({ ...BASE })).rejects.toThrow(/no JWT key/);
    const { alg: _alg, ...noAlg } = keys.jwks.keys[0];
    await expect(JwtVerifier.create({ ...BASE, jwks: { keys: [noAlg] } })).rejects.toThrow(/must name its alg/);
  });
});

describe('ShareTokens (PASETO v4)', () => {
  const localKey = generateKeys('local');
  const other = generateKeys('public');
  const revocations = new RevocationList();
  const shares = new ShareTokens({ localKey, publicKey: other.publicKey, maxTtlS: 3600, maxTokenBytes: 4096 }, revocations);

  it('mints v4.local links for one device, capped in lifetime, and verifies them', () => {
    const { token, grant } = shares.issue('0848086072', 999_999, 'user-1');
    expect(token).toMatch(/^v4\.local\./);
    expect(grant.expiresAt - Date.now()).toBeLessThanOrEqual(3600 * 1000);
    expect(shares.verify(token, '0848086072')).toMatchObject({ deviceId: '0848086072', jti: grant.jti, createdBy: 'user-1' });
  });

  it('accepts v4.public links signed by the configured service key', () => {
    const token = signPaseto(other.secretKey, { device_id: 'D9', jti: 'j-1', exp: new Date(Date.now() + 60_000).toISOString() }, { addExp: false });
    expect(shares.verify(token)).toMatchObject({ deviceId: 'D9', jti: 'j-1' });
  });

  it('refuses tampered, foreign, expired, revoked and wrong-device links', () => {
    const { token, grant } = shares.issue('DEV-1', 60, 'u');
    const tampered = token.slice(0, -6) + (token.endsWith('A') ? 'BBBBBB' : 'AAAAAA');
    const reason = (t: string | undefined, device?: string) => {
      try {
        shares.verify(t, device);
      } catch (err) {
        expect(err).toBeInstanceOf(TokenError);
        if (t) expect((err as Error).message).not.toContain(t.slice(10, 30));
        return (err as TokenError).reason;
      }
      return 'accepted';
    };
    expect(reason(tampered)).toBe('signature');
    expect(reason(token.slice(0, 40))).toBe('signature');
    expect(reason('v4.local.' + 'x'.repeat(5000))).toBe('too_large');
    expect(reason('v2.local.abc')).toBe('malformed');
    expect(reason(undefined)).toBe('missing');
    const foreign = new ShareTokens({ localKey: generateKeys('local'), maxTtlS: 60, maxTokenBytes: 4096 }, revocations).issue('DEV-1', 60, 'u').token;
    expect(reason(foreign)).toBe('signature');
    const unknownPublic = signPaseto(
      generateKeys('public').secretKey,
      { device_id: 'D9', jti: 'j', exp: new Date(Date.now() + 60_000).toISOString() },
      { addExp: false },
    );
    expect(reason(unknownPublic)).toBe('signature');
    expect(reason(token, 'DEV-2')).toBe('wrong_device');
    let clock = Date.now();
    const timed = new ShareTokens({ localKey, maxTtlS: 60, maxTokenBytes: 4096 }, revocations, () => clock);
    const short = timed.issue('DEV-1', 1, 'u').token;
    clock += 1500;
    expect(
      (() => {
        try {
          timed.verify(short);
          return 'accepted';
        } catch (e) {
          return (e as TokenError).reason;
        }
      })(),
    ).toBe('expired');
    revocations.revoke(grant.jti, grant.expiresAt);
    expect(reason(token)).toBe('revoked');
  });

  it('forgets revocations once the link would have expired anyway', () => {
    let clock = 1_000;
    const list = new RevocationList(() => clock);
    list.revoke('a', 2_000);
    expect(list.isRevoked('a')).toBe(true);
    clock = 3_000;
    list.purge();
    expect(list.size).toBe(0);
  });
});

describe('Acl', () => {
  const acl = Acl.parse(
    JSON.stringify({ roles: { admin: { devices: ['*'], channels: ['*'] }, LEVEL_1: { channels: ['tasks', 'system'], devices: ['SIM-*'] } } }),
  );
  const principal = (roles: string[], extra: Partial<Principal> = {}): Principal => ({
    userId: 'u',
    roles,
    expiresAt: 0,
    devices: [],
    channels: [],
    groups: [],
    ...extra,
  });

  it("grants by role pattern and by the token's own claims, and nothing else", () => {
    expect(acl.allows(principal(['admin']), 'channels', 'payments')).toBe(true);
    expect(acl.allows(principal(['LEVEL_1']), 'channels', 'tasks')).toBe(true);
    expect(acl.allows(principal(['LEVEL_1']), 'devices', 'SIM-0001')).toBe(true);
    expect(acl.allows(principal(['LEVEL_1']), 'channels', 'payments')).toBe(false);
    expect(acl.allows(principal(['LEVEL_1']), 'devices', 'TRUCK-1')).toBe(false);
    expect(acl.allows(principal(['LEVEL_1']), 'groups', 'excavadoras')).toBe(false);
    expect(acl.allows(principal([], { groups: ['excavadoras'] }), 'groups', 'excavadoras')).toBe(true);
    expect(acl.allows(principal(['nobody']), 'devices', 'SIM-0001')).toBe(false);
  });

  it('refuses a malformed table with a clear error', () => {
    expect(() => Acl.parse('{')).toThrow(/not valid JSON/);
    expect(() => Acl.parse('[]')).toThrow(/"roles" object/);
    expect(() => Acl.parse('{"roles":{"x":{"rooms":["a"]}}}')).toThrow(/unknown kind "rooms"/);
    expect(() => Acl.parse('{"roles":{"x":{"devices":"a"}}}')).toThrow(/list of names/);
  });
});
