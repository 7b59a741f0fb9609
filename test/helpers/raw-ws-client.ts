/**
 * A WebSocket client on a bare net.Socket that behaves as RFC 6455 §7.1.1 asks of a client and as
 * Python's `websockets` does: it answers the server's close frame with its own and then waits for
 * the server to close TCP, never closing it first. `ws` (Node) instead ends TCP itself once both
 * close frames have crossed, so it cannot see a server that leaves the connection open.
 *
 * `closed` resolves with the close code and `tcpAfterCloseMs`: the time from the server's close
 * frame to the server's FIN (or the socket's end, whichever comes first).
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { unpack } from 'msgpackr';
import { onTestFinished } from 'vitest';
import { FrameInbox } from './frame-inbox.js';
import { encodeFrame } from './raw-ws.js';

export interface RawClose {
  readonly code: number;
  readonly reason: string;
  /** From the server's close frame to the server closing TCP. */
  readonly tcpAfterCloseMs: number;
}

export interface RawClient {
  readonly socket: Socket;
  /** Decoded data frames (JSON for text, msgpack for binary). */
  readonly frames: any[];
  next(predicate?: (f: any) => boolean, timeoutMs?: number): Promise<any>;
  send(value: unknown): void;
  /** Stops reading (the kernel buffers fill, then uWS's), and goes on. */
  pause(): void;
  resume(): void;
  readonly closed: Promise<RawClose>;
}

export interface RawOptions {
  readonly protocol?: string;
  readonly headers?: Record<string, string>;
}

const OP_TEXT = 1;
const OP_BINARY = 2;
const OP_CLOSE = 8;
const OP_PING = 9;

/** Connects to `ws://127.0.0.1:<port><pathAndQuery>` and resolves once the server answered 101. */
export function connectRaw(port: number, pathAndQuery: string, options: RawOptions = {}): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1');
  onTestFinished(() => {
    socket.destroy();
  });
  const inbox = new FrameInbox<any>(() => (ended ? `connection closed (${closeFrame?.code})` : null));
  const frames = inbox.frames;
  let buf = Buffer.alloc(0);
  let upgraded = false;
  let closeFrame: { code: number; reason: string; at: number } | null = null;
  let ended = false;

  let resolveClosed!: (c: RawClose) => void;
  const closed = new Promise<RawClose>((resolve) => {
    resolveClosed = resolve;
  });
  const tcpClosed = () => {
    if (ended) return;
    ended = true;
    resolveClosed({ code: closeFrame?.code ?? 1006, reason: closeFrame?.reason ?? '', tcpAfterCloseMs: closeFrame ? Date.now() - closeFrame.at : -1 });
    inbox.wake();
  };
  socket.on('end', tcpClosed);
  socket.on('close', tcpClosed);
  socket.on('error', () => {
    /* 'close' follows and resolves `closed` */
  });

  const parseFrames = () => {
    while (buf.length >= 2) {
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      if (buf.length < off + len) return;
      const payload = buf.subarray(off, off + len);
      buf = buf.subarray(off + len);
      if (opcode === OP_TEXT) frames.push(JSON.parse(payload.toString('utf8')));
      else if (opcode === OP_BINARY) frames.push(unpack(Buffer.from(payload)));
      else if (opcode === OP_PING) socket.write(encodeFrame(0x0a, Buffer.from(payload)));
      else if (opcode === OP_CLOSE && closeFrame === null) {
        closeFrame = { code: len >= 2 ? payload.readUInt16BE(0) : 1005, reason: payload.subarray(2).toString('utf8'), at: Date.now() };
        // Answer with the same code, then wait for the server to close TCP.
        socket.write(encodeFrame(OP_CLOSE, Buffer.from(payload.subarray(0, Math.min(2, len)))));
      }
      inbox.wake();
    }
  };

  const client: RawClient = {
    socket,
    frames,
    closed,
    next: (predicate, timeoutMs) => inbox.next(predicate, timeoutMs),
    send(value) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      socket.write(encodeFrame(OP_TEXT, Buffer.from(text)));
    },
    pause() {
      socket.pause();
    },
    resume() {
      socket.resume();
    },
  };

  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const headers = {
      Host: `127.0.0.1:${port}`,
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': key,
      'Sec-WebSocket-Version': '13',
      ...(options.protocol ? { 'Sec-WebSocket-Protocol': options.protocol } : {}),
      ...options.headers,
    };
    socket.once('connect', () => {
      socket.write(
        `GET ${pathAndQuery} HTTP/1.1\r\n${Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}`)
          .join('\r\n')}\r\n\r\n`,
      );
    });
    socket.once('close', () => {
      if (!upgraded) reject(new Error(`connection closed before the upgrade: ${buf.toString('utf8').slice(0, 500)}`));
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101')) {
          reject(new Error(`upgrade refused: ${buf.toString('utf8').slice(0, 500)}`));
          socket.destroy();
          return;
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve(client);
      }
      parseFrames();
    });
  });
}
