/**
 * Percent-encoding, decoded strictly, and the check every request passes before its route sees it.
 *
 * RFC 3986 §2.1: a `%` is followed by two hex digits; the octets must then be UTF-8 (RFC 3629),
 * with no replacement of what is not. Lenient decoders each guess differently: decodeURIComponent
 * throws (inside a uWS handler, with nothing answered, that aborts the process), uWS's
 * `req.getQuery(name)` turns `%ZZ` into a control byte or drops a value ending in `%`, and
 * URLSearchParams substitutes U+FFFD. So the raw path (`req.getUrl()`) and the raw query
 * (`req.getQuery()`) are checked once per request, here, and refused with 400
 * GW_ERR_ENCODING_INVALID; past this check every lenient decoder yields the strict answer.
 *
 * uWS hands raw bytes that are not UTF-8 (unencoded, in the request line) to JS as U+FFFD, so a raw
 * U+FFFD is refused too; an encoded one (%EF%BF%BD) is a valid character.
 */
import { isUtf8 } from 'node:buffer';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { guardEveryRoute } from './route-guard.js';

const PERCENT = 0x25;
const REPLACEMENT = '\uFFFD';

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/**
 * Decodes a percent-encoded component (a path segment, a query, a value): the text, or null when a
 * `%` is not followed by two hex digits or the octets are not UTF-8. Never throws. `+` stays `+`
 * (form decoding of queries is uWS's and URLSearchParams' business, after this check).
 */
export function decodeComponent(text: string): string | null {
  if (text.indexOf('%') < 0) return text.includes(REPLACEMENT) ? null : text; // the usual case: no allocation
  if (text.includes(REPLACEMENT)) return null;
  const src = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const byte = src[i];
    if (byte !== PERCENT) {
      out[n++] = byte;
      continue;
    }
    const hi = hexValue(src[i + 1]);
    const lo = hexValue(src[i + 2]);
    if (hi < 0 || lo < 0) return null;
    out[n++] = (hi << 4) | lo;
    i += 2;
  }
  const bytes = out.subarray(0, n);
  return isUtf8(bytes) ? bytes.toString('utf8') : null;
}

/** A path parameter of a route, decoded. '' only if it was broken, which the request check refused already. */
export function pathParameter(req: HttpRequest, index: number): string {
  return decodeComponent(req.getParameter(index) ?? '') ?? '';
}

/** What is wrong with the request's path or query (a message for the client), or null. */
export function encodingProblem(url: string, query: string | undefined): string | null {
  if (decodeComponent(url) === null) return 'The path has malformed percent-encoding (% must be followed by two hex digits) or bytes that are not UTF-8';
  if (query !== undefined && query !== '' && decodeComponent(query) === null) {
    return 'The query has malformed percent-encoding (% must be followed by two hex digits) or bytes that are not UTF-8';
  }
  return null;
}

/** Answers a refused request: 400 GW_ERR_ENCODING_INVALID, in the error format of the route's family. */
type EncodingRefusal = (res: HttpResponse, req: HttpRequest, message: string, upgrade: boolean) => void;

/** Makes every route registered on `app` from now on check the request's encoding first (guardEveryRoute). */
export function guardRequestEncoding(app: TemplatedApp, refuse: EncodingRefusal): TemplatedApp {
  return guardEveryRoute(app, (res, req, upgrade) => {
    const problem = encodingProblem(req.getUrl(), req.getQuery());
    if (problem === null) return true;
    refuse(res, req, problem, upgrade);
    return false;
  });
}
