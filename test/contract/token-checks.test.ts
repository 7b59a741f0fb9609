/**
 * One contract, every implementation: inline checks and the Piscina pool answer the same tokens the
 * same way. Runs against the built modules (the pool loads its task file from dist/).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import { generateKeys } from 'paseto-ts/v4';
import type * as Checks from '../../src/auth/token-checks.js';
import { AUDIENCE, ISSUER, mintJwt, SECRET, unsecuredJwt } from '../helpers/tokens.js';

/** A built module: the Piscina pool loads its task file from dist/, so these tests use the built modules throughout. */
const built = (path: string): Promise<unknown> => import(new URL(`../../dist/src/${path}`, import.meta.url).href);
const { createTokenChecks } = (await built('auth/token-checks.js')) as typeof Checks;
const { TokenService } = (await built('pool/token-service.js')) as typeof import('../../src/pool/token-service.js');
const { RevocationList } = (await built('auth/revocation-list.js')) as typeof import('../../src/auth/revocation-list.js');
const { ShareTokens } = (await built('auth/share-tokens.js')) as typeof import('../../src/auth/share-tokens.js');
const { createLogger } = (await built('log/logger.js')) as typeof import('../../src/log/logger.js');

const localKey = generateKeys('local');
const config: Checks.TokenCheckConfig = {
  jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE, clockToleranceS: 5, rolesClaim: 'roles', maxTokenBytes: 4096 },
  share: { localKey, maxTtlS: 3600, maxTokenBytes: 4096 },
};

describe.each(['inline', 'pool', 'auto'] as const)('TokenChecks (%s)', (mode) => {
  const revocations = new RevocationList();
  let checks: Checks.TokenChecks;
  let service: InstanceType<typeof TokenService> | undefined;
  beforeAll(async () => {
    const channel = mode !== 'inline' ? new MessageChannel() : undefined;
    if (channel) service = new TokenService(config, 1, [channel.port1], createLogger('warn', 'test'));
    checks = await createTokenChecks(config, mode, channel?.port2, revocations);
  });
  afterAll(async () => {
    await checks.close();
    await service?.close();
  });
  const reason = (p: Promise<unknown>) =>
    p.then(
      () => 'accepted',
      (e: { reason?: string; name: string }) => `${e.name}:${e.reason}`,
    );

  it('accepts a valid JWT and returns its principal', async () => {
    expect(await checks.jwt(await mintJwt('42', { roles: ['LEVEL_1'] }))).toMatchObject({ userId: '42', roles: ['LEVEL_1'] });
  });

  it('refuses bad JWTs with TokenError reasons', async () => {
    expect(await reason(checks.jwt(undefined))).toBe('TokenError:missing');
    expect(await reason(checks.jwt(unsecuredJwt('x')))).toBe('TokenError:algorithm');
    expect(await reason(checks.jwt(await mintJwt('1', {}, { expiresInS: -60 })))).toBe('TokenError:expired');
  });

  it("checks share links, their device, and the caller's revocations", async () => {
    const issuer = new ShareTokens(config.share, revocations);
    const { token, grant } = issuer.issue('DEV-7', 60, 'u');
    // Until the revocations kept in the store are loaded, no link passes (the node is still starting).
    expect(await checks.share(token, 'DEV-7').then(String, (e: { code?: string }) => e.code)).toBe('GW_ERR_NOT_READY');
    revocations.load([]);
    expect(await checks.share(token, 'DEV-7')).toMatchObject({ deviceId: 'DEV-7', jti: grant.jti });
    expect(await reason(checks.share(token, 'DEV-8'))).toBe('TokenError:wrong_device');
    expect(await reason(checks.share(`${token.slice(0, -4)}AAAA`))).toBe('TokenError:signature');
    revocations.revoke(grant.jti, grant.expiresAt);
    expect(await reason(checks.share(token))).toBe('TokenError:revoked');
  });
});
