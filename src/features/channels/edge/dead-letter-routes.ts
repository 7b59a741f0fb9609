/**
 * The outbox's dead letters, for operators (store/dead-letters.ts):
 *
 *   GET /api/v1/outbox/dead-letters?skip=0&limit=100
 *     {"total","skip","limit","dead_letters":[{"id","channel","reason","bytes","created_at","dead_lettered_at"},…]}
 *
 * Oldest first, at most 1000 a page, read through the store pool. Like /metrics it is behind the
 * operator auth (GATEWAY_OPERATOR_TOKEN, edge/operator-auth.ts) only when that is set, so it lists no payload: the rows stay whole in gateway.sqlite's `dead_letters` table.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import type { OperatorGuard } from '../../../edge/operator-auth.js';
import { pageQuery, serveStoreCall, type StoreCallDeps } from '../../../edge/store-call.js';

const DEAD_LETTERS_PATH = '/api/v1/outbox/dead-letters';

export function registerDeadLetterRoutes(app: TemplatedApp, deps: StoreCallDeps, operatorGuard: OperatorGuard): void {
  app.get(DEAD_LETTERS_PATH, (res, req) => {
    if (!operatorGuard(res, req)) return;
    const page = pageQuery(req);
    serveStoreCall(res, req, deps, null, false, () => {
      if (page instanceof GatewayError) throw page;
      return { op: 'dead-letters', ...page };
    });
  });
}
