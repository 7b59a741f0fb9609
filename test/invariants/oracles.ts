/**
 * What "answered as documented" means for one input, checked against the catalogues in src/errors
 * (so a code added there is documented here too): HTTP errors carry a known GW_ERR_* code with its
 * status; a closed WebSocket got a close frame with a documented code (never 1006, never 1011),
 * the one its last error frame names, and TCP ended soon after the closing handshake; every frame
 * the server sent decodes in the connection's format.
 */
import { unpack } from 'msgpackr';
import { CLOSE } from '../../src/errors/close-codes.js';
import { ERRORS } from '../../src/errors/error-codes.js';
import { isValidUtf8, OP, type CloseInfo, type HttpAnswer, type Message, type RawWebSocket } from '../helpers/raw-ws.js';

/** Close codes a client may see: the table, without 1011 (an unexpected server error is a finding). */
export const DOCUMENTED_CLOSES: ReadonlySet<number> = new Set(
  Object.values(CLOSE)
    .map((c) => c.code)
    .filter((c) => c !== CLOSE.SERVER_ERROR.code),
);
/** After the server's close frame, TCP must end within this (RFC 6455 §7.1.1: the server closes TCP first). */
export const LINGER_LIMIT_MS = 2000;
/** Error codes whose error frame means a bad frame was counted in bad_frames_total. */
export const UNCOUNTED_ERROR_FRAMES: ReadonlySet<string> = new Set(['GW_ERR_TOO_MANY_BAD_FRAMES', 'GW_ERR_RATE_LIMITED']);

export type Format = 'json' | 'msgpack' | 'azure' | 'raw';

const isKnownCode = (code: unknown): code is keyof typeof ERRORS => typeof code === 'string' && Object.hasOwn(ERRORS, code);

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** An HTTP error answer: the gateway's body (or Azure's ErrorDetail), a catalogued code, its status. */
export function httpErrorProblems(answer: HttpAnswer, o: { azure?: boolean; head?: boolean } = {}): string[] {
  if (answer.status >= 500 && !(answer.status === 503)) return [`answered ${answer.status} ${answer.body.toString('utf8').slice(0, 200)}`];
  if (o.head || answer.status < 400) return [];
  const body = parseJson(answer.body) as any;
  const code = o.azure ? (body?.code ?? body?.error?.code) : body?.error?.code;
  if (!isKnownCode(code)) return [`answered ${answer.status} without a catalogued error code: ${answer.body.toString('utf8').slice(0, 200)}`];
  const problems: string[] = [];
  if (ERRORS[code].status !== answer.status) problems.push(`answered ${answer.status} with ${code}, whose status is ${ERRORS[code].status}`);
  if (answer.status === 503 && !['GW_ERR_OVERLOADED', 'GW_ERR_NOT_READY', 'GW_ERR_SHUTTING_DOWN'].includes(code)) problems.push(`answered 503 with ${code}`);
  return problems;
}

/** Keys that must never be stored or echoed, found at any depth of a parsed JSON value. */
export function pollutingKeyPath(value: unknown, path = '$'): string | null {
  if (value === null || typeof value !== 'object') return null;
  for (const key of Object.keys(value)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') return `${path}.${key}`;
    const inner = pollutingKeyPath((value as Record<string, unknown>)[key], `${path}.${key}`);
    if (inner !== null) return inner;
  }
  return null;
}

/** Decodes what the server sent on a connection, in its format; problems for anything that does not decode. */
export function decodeMessages(messages: readonly Message[], format: Format): { frames: any[]; problems: string[] } {
  const frames: any[] = [];
  const problems: string[] = [];
  for (const m of messages) {
    if (m.opcode === OP.text) {
      if (!isValidUtf8(m.data)) continue; // reported by the socket as a protocol error
      const value = parseJson(m.data);
      if (value === undefined && format !== 'raw') problems.push(`the server sent a text frame that is not JSON: ${m.data.toString('utf8').slice(0, 80)}`);
      else frames.push(value);
    } else if (format === 'msgpack') {
      try {
        frames.push(unpack(m.data));
      } catch (err) {
        problems.push(`the server sent a binary frame that is not msgpack (${(err as Error).message})`);
      }
    } else if (format === 'json' || format === 'azure') {
      problems.push(`the server sent a binary frame on a ${format} connection`);
    }
  }
  return { frames, problems };
}

export const errorCodeOf = (f: any): string | undefined => (f?.event === 'error' || f?.type === 'error' ? (f.data?.code ?? f.error?.code) : undefined);

/**
 * A connection the server closed (or that ended): a close frame with a documented code, the code
 * the last error frame names, TCP closed soon after, and GW_ERR_TOO_MANY_BAD_FRAMES before 4501.
 * `garbage`: the client broke the protocol itself (reserved bits, opcodes, unmasked frames), where
 * uWS may drop the connection without a close frame.
 */
export function closeProblems(info: CloseInfo, frames: readonly any[], o: { garbage: boolean; format: Format }): string[] {
  const problems: string[] = [];
  if (info.code === 1006) {
    if (!o.garbage) problems.push('the connection was cut without a close frame (1006)');
    return problems;
  }
  if (info.initiator === 'server') {
    if (!DOCUMENTED_CLOSES.has(info.code) && !(o.garbage && info.code === 1002)) problems.push(`closed with ${info.code}, not a documented close code`);
    if (info.lingerMs !== null && info.lingerMs > LINGER_LIMIT_MS) problems.push(`TCP stayed open ${info.lingerMs} ms after the closing handshake`);
    const codes = frames.map(errorCodeOf).filter((c): c is string => c !== undefined);
    const last = codes.at(-1);
    if (info.code === CLOSE.TOO_MANY_BAD_FRAMES.code && last !== 'GW_ERR_TOO_MANY_BAD_FRAMES')
      problems.push(`closed with 4501 without a GW_ERR_TOO_MANY_BAD_FRAMES error first (last error: ${last ?? 'none'})`);
    // A refusal (the error is all the connection got): the close code is the error's.
    const only = frames.length === 1 ? errorCodeOf(frames[0]) : undefined;
    if (
      only !== undefined &&
      isKnownCode(only) &&
      ERRORS[only].close !== undefined &&
      ERRORS[only].close.code !== info.code &&
      info.code !== CLOSE.GOING_AWAY.code
    ) {
      problems.push(`closed with ${info.code} after a ${only} error, whose close code is ${ERRORS[only].close.code}`);
    }
  }
  for (const f of frames) {
    const code = errorCodeOf(f);
    if ((f?.event === 'error' || f?.type === 'error') && !isKnownCode(code))
      problems.push(`an error frame without a catalogued code: ${JSON.stringify(f).slice(0, 160)}`);
  }
  return problems;
}

/** The protocol errors of a raw connection, prefixed for the report. */
export function socketProblems(ws: RawWebSocket): string[] {
  return ws.protocolErrors.slice(0, 5);
}
