/**
 * Token checks as one interface with two implementations: inline (on the calling thread) and pool
 * (the main thread's Piscina pool, so a storm of connects does not stall the edge's event loop). Both run the same
 * code (TokenCheckCore) and pass the same contract test. Revocations are applied by the caller's
 * list, after the signature check, so a pool thread needs no shared state.
 */
import type { MessagePort } from 'node:worker_threads';
import type { PoolServiceReply } from '../pool/token-service.js';
import { GatewayError } from '../errors/gateway-error.js';
import { PortClient } from '../threads/port-rpc.js';
import type { JwtConfig } from './jwt-verifier.js';
import { JwtVerifier } from './jwt-verifier.js';
import type { Principal } from './principal.js';
import type { RevocationList } from './revocation-list.js';
import { ShareTokens, type ShareGrant, type ShareTokenConfig } from './share-tokens.js';
import { TokenError, type TokenRejection } from './token-error.js';

export interface TokenChecks {
  /** Verifies a JWT; throws TokenError. */
  jwt(token: string | undefined): Promise<Principal>;
  /** Verifies a share link, optionally for one device; throws TokenError. */
  share(token: string | undefined, forDevice?: string): Promise<ShareGrant>;
  close(): Promise<void>;
}

export interface TokenCheckConfig {
  readonly jwt: JwtConfig | undefined;
  readonly share: ShareTokenConfig;
}

/** The checks themselves, with no revocations (the caller applies them). */
export class TokenCheckCore {
  private constructor(
    private readonly verifier: JwtVerifier | undefined,
    private readonly shares: ShareTokens,
  ) {}

  static async create(config: TokenCheckConfig): Promise<TokenCheckCore> {
    const verifier = config.jwt ? await JwtVerifier.create(config.jwt) : undefined;
    return new TokenCheckCore(verifier, new ShareTokens(config.share, { isRevoked: () => false }));
  }

  async jwt(token: string | undefined): Promise<Principal> {
    // Without a configured key every token is refused (the gateway logs this at start).
    if (!this.verifier) throw new TokenError(token ? 'algorithm' : 'missing');
    return this.verifier.verify(token);
  }

  share(token: string | undefined, forDevice?: string): ShareGrant {
    return this.shares.verify(token, forDevice);
  }
}

function applyRevocations(grant: ShareGrant, revocations: RevocationList): ShareGrant {
  // Before the kept revocations arrived a revoked link would pass: refused as the node still starting.
  if (!revocations.loaded) throw new GatewayError('GW_ERR_NOT_READY', 'Share links are starting; retry shortly');
  if (revocations.isRevoked(grant.jti)) throw new TokenError('revoked');
  return grant;
}

class InlineTokenChecks implements TokenChecks {
  constructor(
    private readonly core: TokenCheckCore,
    private readonly revocations: RevocationList,
  ) {}

  jwt(token: string | undefined): Promise<Principal> {
    return this.core.jwt(token);
  }

  async share(token: string | undefined, forDevice?: string): Promise<ShareGrant> {
    return applyRevocations(this.core.share(token, forDevice), this.revocations);
  }

  async close(): Promise<void> {}
}

/** What a pool task returns: a plain object (errors do not cross threads with their class). */
export type PoolReply =
  { readonly ok: true; readonly principal?: Principal; readonly grant?: ShareGrant } | { readonly ok: false; readonly reason: TokenRejection };

export interface PoolTask {
  readonly kind: 'jwt' | 'share';
  readonly token: string | undefined;
  readonly forDevice?: string;
}

/**
 * Checks on the main thread's pool (pool/token-service.ts), reached over a MessagePort: the edge
 * thread only posts the token and awaits the answer.
 */
class PoolTokenChecks implements TokenChecks {
  private readonly client: PortClient<PoolTask, PoolServiceReply>;

  constructor(
    port: MessagePort,
    private readonly revocations: RevocationList,
  ) {
    this.client = new PortClient(port);
  }

  private async run(task: PoolTask): Promise<PoolReply & { ok: true }> {
    const reply = await this.client.call(task);
    if (!reply.ok) {
      if (reply.reason === 'internal') throw new Error('token check failed on the pool');
      throw new TokenError(reply.reason);
    }
    return reply;
  }

  async jwt(token: string | undefined): Promise<Principal> {
    return (await this.run({ kind: 'jwt', token })).principal!;
  }

  async share(token: string | undefined, forDevice?: string): Promise<ShareGrant> {
    return applyRevocations((await this.run({ kind: 'share', token, forDevice })).grant!, this.revocations);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/**
 * JWTs inline, share links on the pool (GATEWAY_TOKEN_CHECKS=auto): for deployments where viewer
 * storms are the concern and user connects are not. Not the default: on the 2-core machine the
 * storm benchmark measured, inline won for every kind of token.
 */
class SplitTokenChecks implements TokenChecks {
  constructor(
    private readonly inline: InlineTokenChecks,
    private readonly pool: PoolTokenChecks,
  ) {}

  jwt(token: string | undefined): Promise<Principal> {
    return this.inline.jwt(token);
  }

  share(token: string | undefined, forDevice?: string): Promise<ShareGrant> {
    return this.pool.share(token, forDevice);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

type TokenCheckMode = 'auto' | 'pool' | 'inline';

/** `pool` and `auto` need the port to the main thread's TokenService; `inline` needs none. */
export async function createTokenChecks(
  config: TokenCheckConfig,
  mode: TokenCheckMode,
  poolPort: MessagePort | undefined,
  revocations: RevocationList,
): Promise<TokenChecks> {
  if (mode === 'inline' || poolPort === undefined) return new InlineTokenChecks(await TokenCheckCore.create(config), revocations);
  const pool = new PoolTokenChecks(poolPort, revocations);
  if (mode === 'pool') return pool;
  return new SplitTokenChecks(new InlineTokenChecks(await TokenCheckCore.create(config), revocations), pool);
}
