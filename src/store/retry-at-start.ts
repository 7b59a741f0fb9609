/**
 * A load that ingest needs before it reports ready (the channel heads, the revocations, the last
 * positions, the Azure user-group relations), retried with backoff while the store answers that it
 * is busy or cannot be reached, until the start's deadline (GATEWAY_DATABASE_START_WAIT_MS). At
 * start every feature's load shares ingest's few database connections, and a slow or busy
 * database must delay a node's start, not end it. Any other error (a row that does not parse, a
 * schema that does not match) ends the start at once, as before.
 */
import type { Logger } from 'pino';
import { GatewayError } from '../errors/gateway-error.js';
import { Backoff } from '../util/backoff.js';

const BASE_MS = 100;
const CAP_MS = 2_000;

function transient(err: unknown): boolean {
  return err instanceof GatewayError && (err.code === 'GW_ERR_OVERLOADED' || err.code === 'GW_ERR_STORE_UNAVAILABLE');
}

export async function retryAtStart<T>(what: string, load: () => Promise<T>, waitMs: number, logger: Pick<Logger, 'warn'>): Promise<T> {
  const deadline = Date.now() + waitMs;
  const backoff = new Backoff(BASE_MS, CAP_MS);
  for (;;) {
    try {
      return await load();
    } catch (err) {
      const delay = Math.max(BASE_MS / 2, backoff.next());
      if (!transient(err) || Date.now() + delay > deadline) throw err;
      logger.warn({ err, what, attempt: backoff.attempts, retryInMs: delay }, 'the store could not answer a start load; trying again');
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
