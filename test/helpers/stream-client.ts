/**
 * A real WebSocket client (ws) on the stream endpoint that queues decoded frames, so a test can
 * await "the next frame matching X" instead of sleeping.
 */
import WebSocket from 'ws';
import { unpack } from 'msgpackr';
import { onTestFinished } from 'vitest';
import { FrameInbox } from './frame-inbox.js';

/** A decoded frame: docs/compat/gps-stream.md frames have `event`, docs/compat/user-hub.md and docs/compat/pet-care.md frames have `type`. */
export interface Frame {
  readonly event?: string;
  readonly type?: string;
  readonly data: any;
  readonly timestamp?: string;
  /** Every other field of the frame (epoch, action, notification_type, ...): narrow before use. */
  readonly [field: string]: unknown;
}

export interface StreamClient {
  readonly ws: WebSocket;
  readonly protocol: string;
  readonly frames: Frame[];
  readonly raw: Array<Buffer | string>;
  next(predicate?: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Frames matching `predicate` received so far. */
  count(predicate: (f: Frame) => boolean): number;
  send(value: unknown): void;
  closed: Promise<{ code: number; reason: string }>;
}

export interface ConnectOptions {
  readonly protocol?: string | string[];
  readonly path?: string;
  readonly headers?: Record<string, string>;
  /** CA certificates (PEM) to trust, for a gateway serving wss:// with a test certificate. */
  readonly ca?: string;
  /** Local address to connect from (any 127.x.y.z on Linux), to look like another client. */
  readonly localAddress?: string;
}

export function connectStream(base: string, query: string, options: ConnectOptions = {}): Promise<StreamClient> {
  const url = `${base}${options.path ?? '/api/v1/stream'}${query}`;
  const ws = new WebSocket(url, options.protocol ?? [], { headers: options.headers, ca: options.ca, localAddress: options.localAddress });
  let closeInfo = '';
  const inbox = new FrameInbox<Frame>(() => (ws.readyState === WebSocket.CLOSED ? `socket closed (${closeInfo})` : null));
  const frames = inbox.frames;
  const raw: Array<Buffer | string> = [];
  ws.on('message', (data: Buffer, isBinary) => {
    raw.push(isBinary ? data : data.toString());
    inbox.push(isBinary ? unpack(data) : JSON.parse(data.toString()));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      closeInfo = `${code} ${reason.toString()}`;
      resolve({ code, reason: reason.toString() });
      inbox.wake();
    });
  });
  onTestFinished(() => {
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
  });

  const client: StreamClient = {
    ws,
    frames,
    raw,
    closed,
    get protocol() {
      return ws.protocol;
    },
    next: (predicate, timeoutMs) => inbox.next(predicate, timeoutMs),
    count: (predicate) => frames.filter(predicate).length,
    send(value) {
      ws.send(typeof value === 'string' || Buffer.isBuffer(value) ? value : JSON.stringify(value));
    },
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}

export const isMessage = (deviceId?: string) => (f: Frame) => f.event === 'message' && (deviceId === undefined || f.data.data.DEVICE_ID === deviceId);
