/**
 * The operator auth (GATEWAY_OPERATOR_TOKEN, docs/guide/operations.md "Operator routes"): when the
 * token is set, the operator-only routes (`GET /api/v1/cluster`, `GET /metrics`, the outbox dead
 * letters) want `Authorization: Bearer <token>`, compared in constant time; anything else is 401
 * GW_ERR_OPERATOR_UNAUTHORIZED with `WWW-Authenticate: Bearer`, counted in `auth_failures_total`.
 * Unset, they are open (gateway.ts warns once at start). Not behind it: the probes (orchestrators
 * call them without headers) and the reference-compatible stats (their clients send no token).
 * The token is never logged: nothing here logs, and the logger redacts `authorization`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { ERRORS } from '../errors/error-codes.js';
import { bearerToken } from './http-request.js';
import { writeHead } from './http-response.js';

/** Passes a request (true) or answers it 401 (false). Call first thing in the handler: it reads a header. */
export type OperatorGuard = (res: HttpResponse, req: HttpRequest) => boolean;

/** Hashing both sides first makes the compare constant-time whatever the lengths. */
const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

export function operatorGuard(token: string | undefined, onRefused: () => void): OperatorGuard {
  if (token === undefined) return () => true;
  const expected = digest(token);
  return (res, req) => {
    const offered = bearerToken(req.getHeader('authorization'));
    if (offered !== undefined && timingSafeEqual(digest(offered), expected)) return true;
    onRefused();
    const body = JSON.stringify({
      error: {
        code: 'GW_ERR_OPERATOR_UNAUTHORIZED',
        message: offered === undefined ? 'This operator route needs Authorization: Bearer <GATEWAY_OPERATOR_TOKEN>' : 'Wrong operator token',
      },
    });
    res.cork(() => {
      writeHead(res, ERRORS.GW_ERR_OPERATOR_UNAUTHORIZED.status)
        .writeHeader('www-authenticate', 'Bearer realm="gateway-operator"')
        .writeHeader('content-type', 'application/json')
        .end(body);
    });
    return false;
  };
}
