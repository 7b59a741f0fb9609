/**
 * Which failures of a PostgreSQL call mean "the store is unavailable" (docs/design/cluster-store.md
 * §5.3), and the GatewayError they become: GW_ERR_STORE_UNAVAILABLE (503), so the REST client is
 * told to retry after a backoff rather than given a 500. Everything else (a bug, a constraint the
 * driver did not expect) is left as it is, for the pool's 500 and its log.
 *
 * The message names the kind of failure, never the error's own text: node-postgres and Node put
 * the host, port and user in theirs, and the message goes to the client. The original error is the
 * `cause`, for the log. A checkout that waited too long for a connection of a busy pool is
 * GW_ERR_OVERLOADED (503) instead: the database is there, this node has too much to do.
 */
import { GatewayError } from '../../errors/gateway-error.js';

/** SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html) a retry later can cure. */
const SQLSTATES: Readonly<Record<string, string>> = {
  '57014': 'a statement ran past its timeout', // query_canceled: statement_timeout
  '55P03': 'a row stayed locked past the lock timeout', // lock_not_available: lock_timeout
  '25P03': 'a transaction stayed idle past its timeout', // idle_in_transaction_session_timeout
  '57P01': 'the server is shutting down', // admin_shutdown
  '57P02': 'the server crashed', // crash_shutdown
  '57P03': 'the server is starting or shutting down', // cannot_connect_now
  '53300': 'the server has no free connection', // too_many_connections
};

/** Node's socket errors. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * pg-pool's refusal of a checkout that waited connectionTimeoutMillis for a connection of a full
 * pool: the pool was busy, not the database away (a new connection that does not complete in time
 * fails with "Connection terminated due to connection timeout" instead).
 */
const POOL_BUSY = /^timeout exceeded when trying to connect$/;

/** node-postgres's own messages for a connection it lost or could not get. */
const CLIENT_MESSAGES: readonly [RegExp, string][] = [
  [/connection timeout/, 'no connection within the connection timeout'],
  [/^Connection terminated/, 'the connection was lost'],
  [/^Query read timeout$/, 'no answer within the query timeout'],
  [/not queryable|connection error/i, 'the connection was lost'],
];

/** The kind of unavailability `err` is, or null when it is something else. */
function unavailability(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (SQLSTATES[code] !== undefined) return SQLSTATES[code];
    if (code.startsWith('08')) return 'the connection failed'; // class 08: connection exception
    if (SOCKET_CODES.has(code)) return code === 'ECONNREFUSED' ? 'the connection was refused' : 'the connection failed';
  }
  for (const [pattern, kind] of CLIENT_MESSAGES) if (pattern.test(err.message)) return kind;
  return null;
}

/**
 * `err` as the store's caller should see it: a GatewayError as it is, an unavailability as
 * GW_ERR_STORE_UNAVAILABLE, anything else unchanged. `committing`: the failure came while the
 * COMMIT was on its way, so the write may have been applied.
 */
export function storeError(err: unknown, committing = false): unknown {
  if (err instanceof GatewayError) return err;
  if (err instanceof Error && POOL_BUSY.test(err.message)) {
    // Only a checkout fails so, before anything was sent: nothing was written.
    const busy = new GatewayError(
      'GW_ERR_OVERLOADED',
      'The store is busy (no free database connection within GATEWAY_STORE_QUEUE_TIMEOUT_MS); retry after a backoff',
    );
    Object.defineProperty(busy, 'cause', { value: err, enumerable: false });
    return busy;
  }
  const kind = unavailability(err);
  if (kind === null) return err;
  const outcome = committing ? 'the connection was lost while committing, so the write may have been applied: read before retrying' : 'retry after a backoff';
  const unavailable = new GatewayError('GW_ERR_STORE_UNAVAILABLE', `The store is unavailable (${kind}); ${outcome}`);
  Object.defineProperty(unavailable, 'cause', { value: err, enumerable: false });
  return unavailable;
}
