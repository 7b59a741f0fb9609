/**
 * The reference's `token_factory`: mints JWTs the gateway accepts (HS256 with the shared secret,
 * RS256/ES256/EdDSA with generated key pairs) and the bad ones it must refuse.
 */
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { createHmac } from 'node:crypto';
import type { AsymmetricAlg } from '../../src/auth/jwt-verifier.js';

export const SECRET = 'test-secret-with-at-least-32-bytes!!';
export const ISSUER = 'https://auth.example.test';
export const AUDIENCE = 'gateway';

export interface KeyPairs {
  readonly pem: Record<AsymmetricAlg, string>;
  readonly jwks: { keys: JWK[] };
  readonly privateKeys: Record<AsymmetricAlg, CryptoKey>;
}

export async function keyPairs(): Promise<KeyPairs> {
  const pem = {} as Record<AsymmetricAlg, string>;
  const privateKeys = {} as Record<AsymmetricAlg, CryptoKey>;
  const keys: JWK[] = [];
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    const pair = await generateKeyPair(alg, { extractable: true });
    pem[alg] = await exportSPKI(pair.publicKey);
    privateKeys[alg] = pair.privateKey;
    keys.push({ ...(await exportJWK(pair.publicKey)), alg, kid: `kid-${alg}` });
  }
  return { pem, jwks: { keys }, privateKeys };
}

export interface MintOptions {
  readonly alg?: 'HS256' | AsymmetricAlg;
  readonly keys?: KeyPairs;
  readonly kid?: string;
  readonly expiresInS?: number;
  readonly notBeforeS?: number;
  readonly issuer?: string;
  readonly audience?: string;
}

/** `token_factory(user_id, role=...)`: a valid token unless the options say otherwise. */
export async function mintJwt(sub: string, claims: JWTPayload = {}, o: MintOptions = {}): Promise<string> {
  const alg = o.alg ?? 'HS256';
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ ...claims })
    .setProtectedHeader({ alg, ...(o.kid ? { kid: o.kid } : alg !== 'HS256' ? { kid: `kid-${alg}` } : {}) })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + (o.expiresInS ?? 3600))
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? AUDIENCE);
  if (o.notBeforeS !== undefined) jwt.setNotBefore(now + o.notBeforeS);
  if (alg === 'HS256') return jwt.sign(new TextEncoder().encode(SECRET));
  if (!o.keys) throw new Error(`mintJwt: ${alg} needs key pairs`);
  return jwt.sign(o.keys.privateKeys[alg]);
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** An unsecured JWT (`alg: none`), which must never pass. */
export function unsecuredJwt(sub: string): string {
  const now = Math.floor(Date.now() / 1000);
  return `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub, exp: now + 3600, iss: ISSUER, aud: AUDIENCE }))}.`;
}

/** The HS/RS confusion attack: an HS256 token whose HMAC key is the server's RS256 public key PEM. */
export function hs256WithPublicKey(sub: string, publicPem: string): string {
  const now = Math.floor(Date.now() / 1000);
  const signingInput = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub, exp: now + 3600, iss: ISSUER, aud: AUDIENCE }))}`;
  return `${signingInput}.${createHmac('sha256', publicPem).update(signingInput).digest('base64url')}`;
}
