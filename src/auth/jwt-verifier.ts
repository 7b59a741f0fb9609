/**
 * JWT verification with jose. Algorithms are pinned per key: HS256 tokens are checked only against
 * the shared secret, RS256/ES256/EdDSA tokens only against public keys declared for that algorithm
 * (PEM with its algorithm, or a JWKS whose keys each name their `alg`), so an HS256 token "signed"
 * with a public key, or `alg: none`, can never pass. Issuer, audience, expiry and not-before are
 * checked with a small clock tolerance.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  importJWK,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type KeyObject,
} from 'jose';
import type { Principal } from './principal.js';
import { TokenError } from './token-error.js';

export type AsymmetricAlg = 'RS256' | 'ES256' | 'EdDSA';
export const ASYMMETRIC_ALGS: readonly AsymmetricAlg[] = ['RS256', 'ES256', 'EdDSA'];

export interface PemKey {
  readonly alg: AsymmetricAlg;
  /** Matched against the token's `kid` when the token has one. */
  readonly kid?: string;
  readonly pem: string;
}

export interface JwtConfig {
  /** HS256 shared secret; undefined: HS256 tokens are refused. */
  readonly secret?: string;
  readonly publicKeys?: readonly PemKey[];
  /** A JWKS document (e.g. read from a file); every key must name its `alg`. */
  readonly jwks?: JSONWebKeySet;
  /** A JWKS URL, fetched and cached by jose. */
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
  readonly clockToleranceS: number;
  /** Claim holding the roles (array of strings); a string `role` claim is also read. */
  readonly rolesClaim: string;
  readonly maxTokenBytes: number;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

type Key = CryptoKey | KeyObject | Uint8Array;

export class JwtVerifier {
  private constructor(
    private readonly config: JwtConfig,
    private readonly secret: Uint8Array | undefined,
    private readonly pemKeys: ReadonlyArray<{ alg: AsymmetricAlg; kid?: string; key: Key }>,
    private readonly keySet: JWTVerifyGetKey | undefined,
  ) {}

  static async create(config: JwtConfig): Promise<JwtVerifier> {
    const secret = config.secret === undefined ? undefined : new TextEncoder().encode(config.secret);
    if (secret !== undefined && secret.length < 32) throw new Error('the HS256 secret must be at least 32 bytes');
    const pemKeys = await Promise.all((config.publicKeys ?? []).map(async (k) => ({ alg: k.alg, kid: k.kid, key: await importSPKI(k.pem, k.alg) })));
    let keySet: JWTVerifyGetKey | undefined;
    if (config.jwks) {
      for (const jwk of config.jwks.keys) {
        if (!ASYMMETRIC_ALGS.includes(jwk.alg as AsymmetricAlg))
          throw new Error(`every JWKS key must name its alg (${ASYMMETRIC_ALGS.join(', ')}); kid ${jwk.kid ?? '(none)'} does not`);
        await importJWK(jwk, jwk.alg); // fails now, not on the first token, if a key is unusable
      }
      keySet = createLocalJWKSet(config.jwks);
    } else if (config.jwksUrl) {
      keySet = createRemoteJWKSet(new URL(config.jwksUrl));
    }
    if (!secret && pemKeys.length === 0 && !keySet) throw new Error('no JWT key configured (secret, public keys or JWKS)');
    return new JwtVerifier(config, secret, pemKeys, keySet);
  }

  /** Verifies a token; throws TokenError with the reason. */
  async verify(token: string | undefined): Promise<Principal> {
    if (token === undefined || token === '') throw new TokenError('missing');
    if (token.length > this.config.maxTokenBytes) throw new TokenError('too_large');
    if (!JWT_SHAPE.test(token)) throw new TokenError('malformed');
    let alg: string | undefined;
    let kid: string | undefined;
    try {
      ({ alg, kid } = decodeProtectedHeader(token));
    } catch {
      throw new TokenError('malformed');
    }
    let payload: JWTPayload;
    try {
      if (alg === 'HS256') {
        if (!this.secret) throw new TokenError('algorithm');
        ({ payload } = await jwtVerify(token, this.secret, this.options('HS256')));
      } else if (ASYMMETRIC_ALGS.includes(alg as AsymmetricAlg)) {
        ({ payload } = await this.verifyAsymmetric(token, alg as AsymmetricAlg, kid));
      } else {
        throw new TokenError('algorithm'); // none, HS384, PS256, anything not configured
      }
    } catch (err) {
      throw toTokenError(err);
    }
    return principalOf(payload, this.config.rolesClaim);
  }

  private async verifyAsymmetric(token: string, alg: AsymmetricAlg, kid: string | undefined) {
    const candidates = this.pemKeys.filter((k) => k.alg === alg && (kid === undefined || k.kid === undefined || k.kid === kid));
    if (candidates.length > 0) {
      let last: unknown;
      for (const candidate of candidates) {
        try {
          return await jwtVerify(token, candidate.key, this.options(alg));
        } catch (err) {
          last = err;
          if (!(err instanceof errors.JWSSignatureVerificationFailed)) throw err;
        }
      }
      throw last;
    }
    if (this.keySet) return jwtVerify(token, this.keySet, this.options(alg));
    throw new TokenError(this.pemKeys.some((k) => k.alg === alg) ? 'unknown_key' : 'algorithm');
  }

  private options(alg: string) {
    return {
      algorithms: [alg],
      issuer: this.config.issuer,
      audience: this.config.audience,
      clockTolerance: this.config.clockToleranceS,
      requiredClaims: ['sub', 'exp'],
    };
  }
}

function toTokenError(err: unknown): TokenError {
  if (err instanceof TokenError) return err;
  if (err instanceof errors.JWTExpired) return new TokenError('expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
        return new TokenError('not_yet_valid');
      case 'iss':
        return new TokenError('issuer');
      case 'aud':
        return new TokenError('audience');
      default:
        return new TokenError('claims');
    }
  }
  if (err instanceof errors.JWKSNoMatchingKey) return new TokenError('unknown_key');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenError('signature');
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return new TokenError('algorithm');
  return new TokenError('malformed');
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

function principalOf(payload: JWTPayload, rolesClaim: string): Principal {
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub === '' || sub.length > 256) throw new TokenError('claims');
  const roles = strings(payload[rolesClaim]);
  if (typeof payload.role === 'string') roles.push(payload.role);
  return {
    userId: sub,
    roles: [...new Set(roles)],
    expiresAt: payload.exp! * 1000,
    devices: strings(payload.devices),
    channels: strings(payload.channels),
    groups: strings(payload.groups),
  };
}
