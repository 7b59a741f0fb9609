/**
 * HTTP upgrades and WebSocket frames written byte by byte on a net.Socket, for what `ws` refuses
 * to send: any request path (malformed percent-encoding included), text frames with invalid UTF-8,
 * frames over every limit, reserved bits and opcodes, unmasked client frames. It also checks what
 * the server sends back: frames unmasked, text valid UTF-8, a close frame before TCP closes (else
 * the close is 1006), and how long TCP stays open after the closing handshake (RFC 6455 §7.1.1).
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { onTestFinished } from 'vitest';

export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export type UpgradeOutcome =
  | { readonly kind: 'http'; readonly answer: HttpAnswer }
  | { readonly kind: 'open'; readonly answer: HttpAnswer; readonly ws: RawWebSocket }
  /** The server closed or reset the connection before a whole response. */
  | { readonly kind: 'reset'; readonly error: string }
  | { readonly kind: 'timeout' };

export interface RawRequest {
  /** Written as is (latin1), so it may hold anything a client can put on the request line. */
  readonly path: string;
  readonly protocols?: readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export interface Message {
  readonly opcode: number;
  readonly data: Buffer;
}

export interface CloseInfo {
  /** The close frame's code (1005 when it had none), or 1006 when TCP closed without one. */
  readonly code: number;
  readonly reason: string;
  /** ms from the server's close frame to the end of TCP (null: no close frame). */
  readonly lingerMs: number | null;
  /** Who sent the first close frame. */
  readonly initiator: 'server' | 'client' | 'none';
}

const open = new Set<Socket>();
let cleanupRegistered = false;

function track(socket: Socket): void {
  open.add(socket);
  socket.once('close', () => open.delete(socket));
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    onTestFinished(() => {
      cleanupRegistered = false;
      for (const s of open) s.destroy();
      open.clear();
    });
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function isValidUtf8(bytes: Buffer): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** A client frame: masked unless told otherwise, with any opcode, reserved bits and fin. */
export function encodeFrame(opcode: number, payload: Buffer, o: { fin?: boolean; rsv?: number; masked?: boolean } = {}): Buffer {
  const masked = o.masked !== false;
  const head = [((o.fin === false ? 0 : 1) << 7) | (((o.rsv ?? 0) & 7) << 4) | (opcode & 15)];
  const n = payload.length;
  const maskBit = masked ? 0x80 : 0;
  let header: Buffer;
  if (n < 126) header = Buffer.from([...head, maskBit | n]);
  else if (n < 65536) {
    header = Buffer.alloc(4);
    header[0] = head[0];
    header[1] = maskBit | 126;
    header.writeUInt16BE(n, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = head[0];
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(n), 2);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const key = randomBytes(4);
  const body = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([header, key, body]);
}

export class RawWebSocket {
  readonly messages: Message[] = [];
  /** What the server did wrong at the protocol level (masked frames, invalid UTF-8 text, …). */
  readonly protocolErrors: string[] = [];
  readonly closed: Promise<CloseInfo>;
  private buffer: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private closeFrame: { code: number; reason: string; at: number } | null = null;
  private sentClose = false;
  private initiator: CloseInfo['initiator'] = 'none';
  private waiters: (() => void)[] = [];
  private ended = false;

  constructor(
    readonly socket: Socket,
    initial: Buffer,
  ) {
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.ended = true;
        const f = this.closeFrame;
        resolve(
          f === null
            ? { code: 1006, reason: '', lingerMs: null, initiator: this.initiator }
            : { code: f.code, reason: f.reason, lingerMs: Date.now() - f.at, initiator: this.initiator },
        );
        this.wake();
      });
    });
    socket.on('data', (chunk: Buffer) => this.feed(chunk));
    if (initial.length > 0) this.feed(initial);
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /** True once the server has sent its close frame (TCP may still be open). */
  get closing(): boolean {
    return this.closeFrame !== null || this.ended;
  }

  send(opcode: number, payload: Buffer | string, o: { fin?: boolean; rsv?: number; masked?: boolean } = {}): void {
    if (this.ended || this.socket.destroyed) return;
    if (opcode === OP.close) {
      this.sentClose = true;
      if (this.initiator === 'none') this.initiator = 'client';
    }
    this.socket.write(encodeFrame(opcode, typeof payload === 'string' ? Buffer.from(payload) : payload, o));
  }

  /** Raw bytes on the wire (a frame header announcing more than is ever sent, say). */
  writeRaw(bytes: Buffer): void {
    if (!this.ended && !this.socket.destroyed) this.socket.write(bytes);
  }

  /** Resolves with the first message after `from` matching `predicate`, or null on timeout or close. */
  async waitMessage(predicate: (m: Message) => boolean, timeoutMs: number, from = 0): Promise<Message | null> {
    const deadline = Date.now() + timeoutMs;
    let i = from;
    for (;;) {
      for (; i < this.messages.length; i++) if (predicate(this.messages[i])) return this.messages[i];
      if (this.ended || this.closeFrame !== null) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves when the server's close frame has come (or TCP ended), or after `timeoutMs`. */
  async waitClosing(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closing && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Starts the closing handshake and resolves when TCP is closed (destroyed after `timeoutMs`). */
  async close(code = 1000, timeoutMs = 3000): Promise<CloseInfo> {
    if (!this.sentClose && !this.ended) {
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(code);
      this.send(OP.close, payload);
    }
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    const info = await this.closed;
    clearTimeout(timer);
    return info;
  }

  /** Waits for TCP to end after the server's close frame; destroys the socket after `timeoutMs`. */
  async finish(timeoutMs = 4000): Promise<CloseInfo> {
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    const info = await this.closed;
    clearTimeout(timer);
    return info;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private feed(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0;
      const rsv = b[0] & 0x70;
      const opcode = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if (masked) at += 4;
      if (b.length < at + len) return;
      let payload = b.subarray(at, at + len);
      if (masked) {
        this.protocolErrors.push('the server sent a masked frame');
        const key = b.subarray(at - 4, at);
        payload = Buffer.from(payload.map((x, i) => x ^ key[i & 3]));
      }
      this.buffer = b.subarray(at + len);
      if (rsv !== 0) this.protocolErrors.push(`the server set reserved bits ${rsv >> 4}`);
      this.frame(fin, opcode, Buffer.from(payload));
    }
  }

  private frame(fin: boolean, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case OP.close: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        const reason = payload.subarray(2);
        if (!isValidUtf8(reason)) this.protocolErrors.push("the server's close reason is not UTF-8");
        if (this.closeFrame === null) this.closeFrame = { code, reason: reason.toString('utf8'), at: Date.now() };
        if (this.initiator === 'none') this.initiator = 'server';
        // A well-behaved peer answers the close and waits for the server to end TCP.
        if (!this.sentClose) this.send(OP.close, payload.subarray(0, 2));
        this.wake();
        return;
      }
      case OP.ping:
        this.send(OP.pong, payload);
        return;
      case OP.pong:
        return;
      case OP.text:
      case OP.binary:
        if (fin) this.message(opcode, payload);
        else {
          this.fragmentOpcode = opcode;
          this.fragments = [payload];
        }
        return;
      case OP.continuation:
        this.fragments.push(payload);
        if (fin) {
          this.message(this.fragmentOpcode, Buffer.concat(this.fragments));
          this.fragments = [];
        }
        return;
      default:
        this.protocolErrors.push(`the server sent opcode ${opcode}`);
    }
  }

  private message(opcode: number, data: Buffer): void {
    if (opcode === OP.text && !isValidUtf8(data)) this.protocolErrors.push(`the server sent a text frame that is not UTF-8 (${data.length} bytes)`);
    this.messages.push({ opcode, data });
    this.wake();
  }
}

function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers };
}

/** The response head once `received` holds all of it (status, headers, where the body starts), else null. */
function responseHead(received: Buffer): { status: number; headers: Record<string, string>; bodyAt: number } | null {
  const end = received.indexOf('\r\n\r\n');
  return end < 0 ? null : { ...parseHead(received.subarray(0, end).toString('latin1')), bodyAt: end + 4 };
}

/** Sends an upgrade request for `path`; resolves with the HTTP answer, the open socket, or what went wrong. */
export function rawUpgrade(port: number, request: RawRequest): Promise<UpgradeOutcome> {
  const timeoutMs = request.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    track(socket);
    socket.setNoDelay(true);
    let settled = false;
    let received = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string>; bodyAt: number } | null = null;
    const done = (outcome: UpgradeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      if (outcome.kind !== 'open') socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      head ??= responseHead(received);
      if (head === null) return;
      const rest = received.subarray(head.bodyAt);
      const answer = (body: Buffer): HttpAnswer => ({ status: head!.status, headers: head!.headers, body });
      if (head.status === 101) {
        done({ kind: 'open', answer: answer(Buffer.alloc(0)), ws: new RawWebSocket(socket, rest) });
        return;
      }
      const length = Number(head.headers['content-length'] ?? Number.NaN);
      if (Number.isFinite(length) && rest.length >= length) done({ kind: 'http', answer: answer(rest.subarray(0, length)) });
    };
    socket.on('data', onData);
    socket.on('error', (err) => done({ kind: 'reset', error: err.message }));
    socket.on('close', () => {
      if (head !== null && head.status !== 101)
        done({ kind: 'http', answer: { status: head.status, headers: head.headers, body: received.subarray(head.bodyAt) } });
      else done({ kind: 'reset', error: `connection closed after ${received.length} bytes` });
    });
    const lines = [
      `GET ${request.path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...(request.protocols && request.protocols.length > 0 ? [`Sec-WebSocket-Protocol: ${request.protocols.join(', ')}`] : []),
      ...Object.entries(request.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.write(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'));
  });
}

/** A plain HTTP request with any path and body bytes; resolves with the answer, or reset/timeout. */
export function rawHttp(
  port: number,
  method: string,
  path: string,
  body: Buffer | null,
  headers: Readonly<Record<string, string>> = {},
  timeoutMs = 5000,
): Promise<{ kind: 'http'; answer: HttpAnswer } | { kind: 'reset'; error: string } | { kind: 'timeout' }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    track(socket);
    let settled = false;
    let received = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string>; bodyAt: number } | null = null;
    const done = (outcome: { kind: 'http'; answer: HttpAnswer } | { kind: 'reset'; error: string } | { kind: 'timeout' }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      head ??= responseHead(received);
      if (head === null) return;
      const rest = received.subarray(head.bodyAt);
      const length = Number(head.headers['content-length'] ?? (method === 'HEAD' || head.status === 204 ? 0 : Number.NaN));
      if (Number.isFinite(length) && (rest.length >= length || method === 'HEAD'))
        done({ kind: 'http', answer: { status: head.status, headers: head.headers, body: rest.subarray(0, length) } });
    });
    socket.on('error', (err) => done({ kind: 'reset', error: err.message }));
    socket.on('close', () => {
      if (head !== null) done({ kind: 'http', answer: { status: head.status, headers: head.headers, body: received.subarray(head.bodyAt) } });
      else done({ kind: 'reset', error: `connection closed after ${received.length} bytes` });
    });
    const all: Record<string, string> = { host: `127.0.0.1:${port}`, connection: 'close', ...headers };
    if (body !== null) all['content-length'] = String(body.length);
    const text = `${method} ${path} HTTP/1.1\r\n${Object.entries(all)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\r\n')}\r\n\r\n`;
    socket.write(body === null ? Buffer.from(text, 'latin1') : Buffer.concat([Buffer.from(text, 'latin1'), body]));
  });
}
