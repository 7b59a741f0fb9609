/**
 * Share-location links (docs/compat/gps-stream.md), the HTTP half:
 *   POST   /api/v1/public/share-location/init      Bearer JWT; {"device_id", "ttl_seconds"?} → a link
 *   DELETE /api/v1/public/share-location/<token>   Bearer JWT; revokes the link everywhere
 * The WebSocket half is the `share` variant of stream-route.ts.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { Acl } from '../../../auth/acl.js';
import type { Principal } from '../../../auth/principal.js';
import type { ShareTokens } from '../../../auth/share-tokens.js';
import type { TokenChecks } from '../../../auth/token-checks.js';
import { tokenFailure } from '../../../auth/token-error-codes.js';
import type { GatewayConfig } from '../../../config/config.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { isValidDeviceId } from '../../telemetry/device-ids.js';
import { handleAsync, jsonReply } from '../../../edge/http-response.js';
import { bearerToken, readJsonBody } from '../../../edge/http-request.js';
import { pathParameter } from '../../../edge/request-encoding.js';
import { SHARE_STREAM_PATH } from '../../telemetry/stream-paths.js';

const INIT_PATH = '/api/v1/public/share-location/init';
const MAX_BODY = 4096;

export interface ShareRoutesDeps {
  readonly config: GatewayConfig;
  /** The base of links handed out (GATEWAY_PUBLIC_URL, else the scheme and host the request came to), read synchronously (edge-worker.ts publicBase). */
  readonly baseUrl: (res: HttpResponse, req: HttpRequest) => string;
  readonly checks: TokenChecks;
  readonly shares: ShareTokens;
  readonly acl: Acl;
  /** Writes a revocation to the store, then publishes it to the bus; the edges apply it when it comes back. */
  readonly publishRevocation: (jti: string, expiresAt: number) => Promise<void>;
  readonly logger: Logger;
}

export function registerShareLocationRoutes(app: TemplatedApp, deps: ShareRoutesDeps): void {
  const { config, checks, shares, acl, logger } = deps;

  /** Runs an authenticated handler: onAborted first, the JWT checked, errors mapped to the catalogue. */
  function authenticated(res: HttpResponse, authorization: string, handle: (principal: Principal) => Promise<{ status: number; body: unknown }>): void {
    handleAsync(
      res,
      async () => {
        let principal: Principal;
        try {
          principal = await checks.jwt(bearerToken(authorization));
        } catch (err) {
          throw tokenFailure(err);
        }
        const reply = await handle(principal);
        return jsonReply(reply.status, reply.body);
      },
      (err) => logger.error({ err }, 'share-location request failed'),
    );
  }

  app.post(INIT_PATH, (res, req) => {
    const authorization = req.getHeader('authorization');
    const base = deps.baseUrl(res, req);
    const body = readJsonBody(res, { maxBytes: MAX_BODY, maxDepth: config.limits.maxJsonDepth });
    body.catch(() => undefined); // observed below; avoid an unhandled rejection while the token is checked
    authenticated(res, authorization, async (principal) => {
      const value = (await body) as Record<string, unknown> | null;
      const deviceId = value?.device_id;
      if (typeof deviceId !== 'string' || !isValidDeviceId(deviceId))
        throw new GatewayError('GW_ERR_BODY_INVALID', '"device_id" must be a device id (1-128 characters of A-Z a-z 0-9 _ - . :)');
      const ttl = value?.ttl_seconds ?? config.share.defaultTtlS;
      if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1)
        throw new GatewayError('GW_ERR_BODY_INVALID', '"ttl_seconds" must be a positive whole number');
      if (!acl.allows(principal, 'devices', deviceId)) throw new GatewayError('GW_ERR_FORBIDDEN', `Not allowed to share device ${JSON.stringify(deviceId)}`);
      const { token, grant } = shares.issue(deviceId, ttl, principal.userId);
      logger.info({ deviceId, jti: grant.jti, by: principal.userId, expiresAt: new Date(grant.expiresAt).toISOString() }, 'share link issued');
      return {
        status: 200,
        body: {
          token,
          device_id: deviceId,
          expires_at: new Date(grant.expiresAt).toISOString(),
          expires_in: Math.round((grant.expiresAt - Date.now()) / 1000),
          viewer_url: `${base}/share-location?token=${token}`,
          stream_url: `${base.replace(/^http/, 'ws')}${SHARE_STREAM_PATH}?token=${token}`,
        },
      };
    });
  });

  app.del(`${INIT_PATH.replace('/init', '')}/:token`, (res, req) => {
    const authorization = req.getHeader('authorization');
    const link = pathParameter(req, 0);
    authenticated(res, authorization, async (principal) => {
      let grant;
      try {
        grant = await checks.share(link);
      } catch (err) {
        throw tokenFailure(err);
      }
      const mayRevoke = grant.createdBy === principal.userId || acl.allows(principal, 'devices', grant.deviceId);
      if (!mayRevoke) throw new GatewayError('GW_ERR_FORBIDDEN', 'Not allowed to revoke this link');
      await deps.publishRevocation(grant.jti, grant.expiresAt);
      logger.info({ jti: grant.jti, deviceId: grant.deviceId, by: principal.userId }, 'share link revoked');
      return { status: 200, body: { status: 'revoked', jti: grant.jti, device_id: grant.deviceId } };
    });
  });
}
