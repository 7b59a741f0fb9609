/**
 * Reading what an HTTP request carries on uWS: headers are copied synchronously (the request is
 * invalid after the handler returns), the body is collected with a size limit, and an aborted
 * request is noticed so nothing is written to it.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { GatewayError } from '../errors/gateway-error.js';
import { BoundedJsonError, parseJsonBytes } from '../protocol/bounded-json.js';

interface RequestState {
  aborted: boolean;
}

/** Registers onAborted (must precede any await) and returns the flag it sets. */
export function watchAbort(res: HttpResponse): RequestState {
  const state: RequestState = { aborted: false };
  res.onAborted(() => {
    state.aborted = true;
  });
  return state;
}

/** Collects the body (must be called before the handler's first await). Throws GatewayError over `maxBytes`. */
export function readBody(res: HttpResponse, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    res.onData((chunk, isLast) => {
      if (failed) return;
      size += chunk.byteLength;
      if (size > maxBytes) {
        failed = true;
        reject(new GatewayError('GW_ERR_BODY_TOO_LARGE', `Request body is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0))); // the chunk is neutered when this callback returns
      if (isLast) resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
  });
}

interface BodyLimits {
  readonly maxBytes: number;
  /** GATEWAY_MAX_JSON_DEPTH. */
  readonly maxDepth: number;
}

/**
 * Parses a REST body as JSON; empty (or only whitespace) means `{}`. Bounded (protocol/bounded-json.ts):
 * UTF-8 and the nesting depth are checked before JSON.parse, and `__proto__`, `constructor` and
 * `prototype` keys are refused at any level, since bodies are stored, merged and echoed. Throws
 * GW_ERR_BODY_INVALID naming what is wrong.
 */
function parseJsonBody(bytes: Buffer, maxDepth: number): unknown {
  // A UTF-8 byte order mark is not JSON, but some clients send one (String.trim took it before).
  let start = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let end = bytes.length;
  while (start < end && isJsonSpace(bytes[start])) start++;
  while (end > start && isJsonSpace(bytes[end - 1])) end--;
  if (start === end) return {};
  try {
    return parseJsonBytes(bytes.subarray(start, end), { maxDepth, forbidKeys: true });
  } catch (err) {
    if (err instanceof BoundedJsonError) throw new GatewayError('GW_ERR_BODY_INVALID', `Request body ${err.detail}`);
    throw err;
  }
}

const isJsonSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/** Collects the body (must be called before the handler's first await) and parses it as parseJsonBody does. Throws GatewayError on size or content. */
export async function readJsonBody(res: HttpResponse, limits: BodyLimits): Promise<unknown> {
  return parseJsonBody(await readBody(res, limits.maxBytes), limits.maxDepth);
}

/** `Authorization: Bearer <token>` → the token, else undefined. */
export function bearerToken(authorization: string): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  return match ? match[1] : undefined;
}

/** A JWT offered as a subprotocol (`bearer.<jwt>`), for browsers, which cannot set headers. */
export function subprotocolToken(offered: readonly string[]): string | undefined {
  const entry = offered.find((p) => p.startsWith('bearer.'));
  return entry?.slice('bearer.'.length);
}
