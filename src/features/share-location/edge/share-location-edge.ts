/**
 * Share-location on an edge thread: the routes that make and revoke share links (their stream is
 * telemetry's /api/v1/public/share-location/stream), and the revocations: those kept in the store at
 * start, then those that come back over the bus.
 */
import { ShareTokens } from '../../../auth/share-tokens.js';
import type { EdgeFeature } from '../../../edge/edge-feature.js';
import type { ShareLocationToEdge } from '../messages.js';
import { registerShareLocationRoutes } from './share-location-routes.js';
import { GatewayError } from '../../../errors/gateway-error.js';

export const shareLocation: EdgeFeature<ShareLocationToEdge> = {
  name: 'share-location',
  register(context) {
    const { config, checks, acl, logger, revocations, expiry, publish } = context;
    registerShareLocationRoutes(context.app, {
      config,
      checks,
      acl,
      logger: logger.child({ component: 'share' }),
      baseUrl: context.publicBase,
      shares: new ShareTokens(config.share.tokens, revocations),
      publishRevocation: async (jti, expiresAt) => {
        // Kept in the store before the 200, so a node started a moment later refuses the link too.
        const reply = await context.store.call({ op: 'revocation-put', jti, expiresAt });
        if (!reply.ok) throw new GatewayError(reply.code, reply.message);
        publish(config.share.revocationsTopic, JSON.stringify({ jti, expires_at: new Date(expiresAt).toISOString() }));
      },
    });
    return {
      handlers: {
        'revocations-init': (message) => revocations.load(message.revocations),
        revoked: (message) => {
          revocations.revoke(message.jti, message.expiresAt);
          expiry.revoke(message.jti);
        },
      },
    };
  },
};
