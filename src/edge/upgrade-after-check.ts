/**
 * Upgrading a WebSocket after asynchronous work (a token check), the one way every route does it:
 * what the request holds is copied first (it is invalid once the handler returns), onAborted is
 * registered before the work starts, and a failure of the work itself answers 500.
 *
 * The upgrade is NOT wrapped in `res.cork`, unlike upstream's UpgradeAsync example: in this build
 * (uwebsockets@3.0.6 on Node 20) doing so sometimes sent the upgraded socket's bytes down another
 * client's connection, which then closed with 1006 (test/integration/users-auth.test.ts failed about
 * one run in three; 16 of 16 and every run since passed without the cork). The 101 response is one
 * write, so nothing is lost; uWS prints a one-time "writes must be made from within a corked
 * callback" warning per process.
 */
import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { parseOffered } from '../protocol/subprotocol.js';
import { GatewayError } from '../errors/gateway-error.js';
import { rejectUpgrade } from './http-response.js';
import { bearerToken, subprotocolToken, watchAbort } from './http-request.js';

/**
 * The JWT a WebSocket request carries: `?token=`, else `Authorization: Bearer`, else a
 * `bearer.<jwt>` subprotocol entry (browsers cannot set headers).
 */
export function requestToken(req: HttpRequest, protocolHeader: string): string | undefined {
  return req.getQuery('token') ?? bearerToken(req.getHeader('authorization')) ?? subprotocolToken(parseOffered(protocolHeader));
}

/** Upgrades at once, inside the upgrade handler (nothing asynchronous to wait for). */
export function upgradeNow<T>(res: HttpResponse, req: HttpRequest, context: us_socket_context_t, echo: string, userData: T): void {
  res.upgrade(userData, req.getHeader('sec-websocket-key'), echo, req.getHeader('sec-websocket-extensions'), context);
}

/**
 * Runs `work` (which must not touch `req`) and upgrades with the userData it resolves to, unless
 * the client went away meanwhile. `echo` is the negotiated subprotocol (or how to read it from the
 * userData, when the work chooses it). A GatewayError thrown by
 * `work` refuses the upgrade with its status (routes that report errors in-band resolve instead).
 */
export function upgradeAfter<T>(
  res: HttpResponse,
  req: HttpRequest,
  context: us_socket_context_t,
  echo: string | ((userData: T) => string),
  work: () => Promise<T>,
  logger: Logger,
): void {
  const key = req.getHeader('sec-websocket-key');
  const extensions = req.getHeader('sec-websocket-extensions');
  const state = watchAbort(res);
  work().then(
    (userData) => {
      if (!state.aborted) res.upgrade(userData, key, typeof echo === 'string' ? echo : echo(userData), extensions, context);
    },
    (err: unknown) => {
      if (err instanceof GatewayError) {
        if (!state.aborted) rejectUpgrade(res, err.code, err.message);
        return;
      }
      logger.error({ err }, 'admission failed');
      if (!state.aborted) rejectUpgrade(res, 'GW_ERR_INTERNAL', 'Internal error');
    },
  );
}
