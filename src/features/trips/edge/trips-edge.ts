/** Trips on an edge thread: the trip and equipment REST routes, /ws/negotiate and the trips stats. */
import type { EdgeFeature } from '../../../edge/edge-feature.js';
import { AzureAccessTokens } from '../../azure/access-tokens.js';
import { registerTripRoutes } from './trip-routes.js';

export const trips: EdgeFeature = {
  name: 'trips',
  register({ app, config, store, checks, acl, stats, logger, nudgeRelay, shared, publicBase, nodeId }) {
    registerTripRoutes(app, {
      config,
      store,
      checks,
      acl,
      stats,
      logger: logger.child({ component: 'trips' }),
      nudgeRelay,
      tokens: new AzureAccessTokens(config.azure.accessKey),
      shared,
      baseUrl: publicBase,
      nodeId,
    });
    return { handlers: {} };
  },
};
