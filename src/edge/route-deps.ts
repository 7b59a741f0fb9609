import type { ClientAddresses } from './client-address.js';
import type { Logger } from 'pino';
import type { Acl } from '../auth/acl.js';
import type { TokenChecks } from '../auth/token-checks.js';
import type { GatewayConfig } from '../config/config.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import type { KeyedBuckets } from '../util/token-bucket.js';
import type { SessionExpiry } from './session-expiry.js';

/** What every subscribing WebSocket route of an edge needs (each route adds its topics and registry). */
export interface SocketRouteDeps {
  readonly config: GatewayConfig;
  readonly expiry: SessionExpiry;
  readonly checks: TokenChecks;
  readonly acl: Acl;
  readonly ipBuckets: KeyedBuckets;
  /** The client address behind trusted proxies (client-address.ts). */
  readonly clients: ClientAddresses;
  readonly stats: RowWriter<EdgeMetric>;
  readonly logger: Logger;
}
