/**
 * Piscina task: one token check on a pool thread (auth/token-checks.ts). The thread builds its
 * checker once from workerData and answers plain objects.
 */
import { TokenCheckCore, type PoolReply, type PoolTask, type TokenCheckConfig } from '../auth/token-checks.js';
import { TokenError } from '../auth/token-error.js';
import { poolData } from './pool-data.js';
import { unreachable } from '../threads/dispatch.js';

const core = TokenCheckCore.create(poolData<TokenCheckConfig>());

export default async function check(task: PoolTask): Promise<PoolReply> {
  try {
    const checker = await core;
    switch (task.kind) {
      case 'jwt':
        return { ok: true, principal: await checker.jwt(task.token) };
      case 'share':
        return { ok: true, grant: checker.share(task.token, task.forDevice) };
      default:
        return unreachable(task.kind);
    }
  } catch (err) {
    if (err instanceof TokenError) return { ok: false, reason: err.reason };
    throw err;
  }
}
