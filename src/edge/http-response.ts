/**
 * Writing HTTP responses on uWS the safe way: always corked, never after the request was
 * aborted, and async handlers register onAborted before their first await (docs/notes/uws.md).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { ERRORS, type ErrorCode } from '../errors/error-codes.js';
import { GatewayError } from '../errors/gateway-error.js';

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trim();
}

/** What browser-guard.ts decided for the request, kept on its response until the answer is written. */
interface CorsMark {
  gwCorsOrigin?: string;
  gwCorsCredentials?: boolean;
}

/** Makes this request's answer carry CORS headers for `origin` (undefined: none). Set on every request. */
export function markCors(res: HttpResponse, origin: string | undefined, credentials: boolean): void {
  const mark = res as unknown as CorsMark;
  mark.gwCorsOrigin = origin;
  mark.gwCorsCredentials = credentials;
}

/**
 * The status line and the headers every answer carries (call inside `res.cork`): `nosniff`,
 * `Vary: Origin`, and the CORS headers when browser-guard.ts allowed the request's origin. Every
 * HTTP answer of the gateway starts here.
 */
export function writeHead(res: HttpResponse, status: number): HttpResponse {
  res.writeStatus(statusLine(status)).writeHeader('x-content-type-options', 'nosniff').writeHeader('vary', 'Origin');
  const mark = res as unknown as CorsMark;
  if (mark.gwCorsOrigin !== undefined) {
    res.writeHeader('access-control-allow-origin', mark.gwCorsOrigin);
    if (mark.gwCorsCredentials === true) res.writeHeader('access-control-allow-credentials', 'true');
  }
  return res;
}

export function sendBody(res: HttpResponse, status: number, contentType: string, body: string): void {
  res.cork(() => {
    writeHead(res, status).writeHeader('content-type', contentType).end(body);
  });
}

export function sendJson(res: HttpResponse, status: number, value: unknown): void {
  sendBody(res, status, 'application/json', JSON.stringify(value));
}

/** The gateway's error body: `{"error":{"code":"GW_ERR_…","message":"…"}}`. */
export function sendError(res: HttpResponse, code: ErrorCode, message: string): void {
  sendJson(res, ERRORS[code].status, { error: { code, message } });
}

/** Refuses a WebSocket upgrade with a plain HTTP error response. */
export const rejectUpgrade = sendError;

/** An HTTP answer built by an async handler. */
interface HttpReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

export function jsonReply(status: number, value: unknown): HttpReply {
  return { status, contentType: 'application/json', body: JSON.stringify(value) };
}

/**
 * Runs an async handler, the one way every route does: onAborted is registered before `work` starts
 * (so `work` may register onData first thing, and nothing is written to a dead response); a
 * GatewayError becomes its catalogue status and error body; anything else goes to `onUnexpected`
 * (to be logged) and is answered 500 without details. `onFailed` sees every failure (for counters).
 */
export function handleAsync(res: HttpResponse, work: () => Promise<HttpReply>, onUnexpected: (err: unknown) => void, onFailed?: () => void): void {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  work().then(
    (reply) => {
      if (!aborted) sendBody(res, reply.status, reply.contentType, reply.body);
    },
    (err: unknown) => {
      onFailed?.();
      if (err instanceof GatewayError) {
        if (!aborted) sendError(res, err.code, err.message);
        return;
      }
      onUnexpected(err);
      if (!aborted) sendError(res, 'GW_ERR_INTERNAL', 'Internal error');
    },
  );
}
