/**
 * Share-location links (docs/compat/gps-stream.md): a PASETO v4 token that names one
 * device and an expiry. The gateway mints `v4.local` tokens (encrypted with its k4.local key, what
 * the reference's viewers carry); `v4.public` tokens signed by another service are accepted when
 * its k4.public key is configured. A token names a `jti` so a link can be revoked.
 */
import { randomUUID } from 'node:crypto';
import { decrypt, encrypt, verify } from 'paseto-ts/v4';
import { isValidDeviceId } from '../features/telemetry/device-ids.js';
import { TokenError } from './token-error.js';

export interface ShareTokenConfig {
  /** PASERK `k4.local.…` key the gateway encrypts and decrypts with. */
  readonly localKey: string;
  /** PASERK `k4.public.…` key of another service allowed to mint `v4.public` links. */
  readonly publicKey?: string;
  /** Longest lifetime a link may be given, seconds. */
  readonly maxTtlS: number;
  readonly maxTokenBytes: number;
}

export interface ShareGrant {
  readonly deviceId: string;
  readonly jti: string;
  /** ms since the epoch */
  readonly expiresAt: number;
  /** Who minted it (the JWT subject), when the gateway did. */
  readonly createdBy?: string;
}

export interface Revocations {
  isRevoked(jti: string): boolean;
}

export class ShareTokens {
  constructor(
    private readonly config: ShareTokenConfig,
    private readonly revocations: Revocations,
    private readonly now: () => number = Date.now,
  ) {}

  /** Mints a `v4.local` link for one device; `ttlS` is capped at maxTtlS. */
  issue(deviceId: string, ttlS: number, createdBy: string): { token: string; grant: ShareGrant } {
    if (!isValidDeviceId(deviceId)) throw new RangeError('invalid device id');
    const ttl = Math.max(1, Math.min(Math.floor(ttlS), this.config.maxTtlS));
    const grant: ShareGrant = { deviceId, jti: randomUUID(), expiresAt: this.now() + ttl * 1000, createdBy };
    const token = encrypt(
      this.config.localKey,
      {
        device_id: deviceId,
        jti: grant.jti,
        sub: createdBy,
        iat: new Date(this.now()).toISOString(),
        exp: new Date(grant.expiresAt).toISOString(),
      },
      { addIat: false, addExp: false },
    );
    return { token, grant };
  }

  /** Checks a link; `forDevice`, when given, must be the device it names. Throws TokenError. */
  verify(token: string | undefined, forDevice?: string): ShareGrant {
    if (token === undefined || token === '') throw new TokenError('missing');
    if (token.length > this.config.maxTokenBytes) throw new TokenError('too_large');
    let payload: Record<string, unknown>;
    try {
      if (token.startsWith('v4.local.')) {
        ({ payload } = decrypt(this.config.localKey, token, { validatePayload: false }));
      } else if (token.startsWith('v4.public.') && this.config.publicKey) {
        ({ payload } = verify(this.config.publicKey, token, { validatePayload: false }));
      } else {
        throw new TokenError(token.startsWith('v4.public.') ? 'algorithm' : 'malformed');
      }
    } catch (err) {
      if (err instanceof TokenError) throw err;
      // Decryption or signature failure: tampered, truncated or made with another key.
      throw new TokenError('signature');
    }
    const grant = this.grantOf(payload);
    if (grant.expiresAt <= this.now()) throw new TokenError('expired');
    if (this.revocations.isRevoked(grant.jti)) throw new TokenError('revoked');
    if (forDevice !== undefined && forDevice !== grant.deviceId) throw new TokenError('wrong_device');
    return grant;
  }

  private grantOf(payload: Record<string, unknown>): ShareGrant {
    const deviceId = payload.device_id;
    const jti = payload.jti;
    const exp = typeof payload.exp === 'string' ? Date.parse(payload.exp) : Number.NaN;
    if (typeof deviceId !== 'string' || !isValidDeviceId(deviceId) || typeof jti !== 'string' || jti.length > 128 || !Number.isFinite(exp)) {
      throw new TokenError('claims');
    }
    const nbf = typeof payload.nbf === 'string' ? Date.parse(payload.nbf) : Number.NaN;
    if (Number.isFinite(nbf) && nbf > this.now()) throw new TokenError('not_yet_valid');
    return { deviceId, jti, expiresAt: exp, createdBy: typeof payload.sub === 'string' ? payload.sub : undefined };
  }
}
