/**
 * Minimal WebSocket client on a raw TCP socket, for load generation only (RFC 6455).
 *
 * It does what a receiving load client needs and nothing else: the opening handshake (with
 * Sec-WebSocket-Accept checked), unmasked server frames of any length, fragmented messages, pong
 * for ping, and a close reply. It sends no data frames except the few short ones a dialect on top
 * asks for (`sendText`, Socket.IO's handshake and pongs). Compared with `ws` it allocates nothing
 * per frame unless a frame straddles TCP reads, and it stamps the receive time once per read, before
 * any parsing, so parse cost does not show up as latency.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'; // RFC 6455 §1.3
const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
/** Larger frames mean a broken server or stream; the load client does not need them. */
const MAX_PAYLOAD = 16 * 1024 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
/**
 * One read buffer for every socket of this thread (net's `onread`): no Buffer and no stream 'data'
 * event per read. Safe because reads are handled synchronously and anything kept past a read (a
 * partial frame, fragments, handshake bytes) is copied out first.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

interface RawWsOptions {
  readonly host: string;
  readonly port: number;
  /** Request target including the query string, e.g. `/api/v1/stream?device_ids=A,B`. */
  readonly path: string;
  /** Sent as Sec-WebSocket-Protocol when set. */
  readonly protocol?: string;
  readonly handshakeTimeoutMs?: number;
  /**
   * One complete message. `payload` is only valid during the call (it may view the socket's read
   * buffer). `receivedAt` is `performance.timeOrigin + performance.now()` at the start of the read.
   */
  readonly onMessage: (payload: Buffer, binary: boolean, receivedAt: number) => void;
  /**
   * Called once with the client right after the handshake, before any frame that arrived with the
   * 101 response is delivered, so a protocol on top (Socket.IO) can answer its first frame.
   */
  readonly onOpen?: (client: RawWsClient) => void;
  /** Called once, when the socket is gone after the handshake succeeded. */
  readonly onClose?: (info: { code: number | undefined; error: Error | undefined; byUs: boolean }) => void;
}

export class RawWsClient {
  /** The subprotocol the server selected, or undefined if it selected none. */
  readonly protocol: string | undefined;
  private readonly socket: Socket;
  private readonly opts: RawWsOptions;
  private pending: Buffer | null = null;
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private fragmentBytes = 0;
  private closing = false;
  private closedByUs = false;
  private closed = false;
  private closeCode: number | undefined;
  private error: Error | undefined;

  private constructor(socket: Socket, opts: RawWsOptions, protocol: string | undefined, rest: Buffer) {
    this.socket = socket;
    this.opts = opts;
    this.protocol = protocol;
    socket.on('error', (err) => (this.error ??= err));
    socket.on('close', () => this.onSocketClose());
    opts.onOpen?.(this);
    if (rest.length > 0 && !this.closed) this.onData(rest);
  }

  /** Opens the TCP connection and completes the handshake; rejects on any non-101 answer. */
  static connect(opts: RawWsOptions): Promise<RawWsClient> {
    return new Promise((resolve, reject) => {
      const key = randomBytes(16).toString('base64');
      const expectedAccept = createHash('sha1')
        .update(key + GUID)
        .digest('base64');
      // Reads go to the handshake parser first, then to the client's frame parser.
      let sink: (chunk: Buffer) => void = (chunk) => onHead(chunk);
      const socket = netConnect({
        host: opts.host,
        port: opts.port,
        noDelay: true,
        onread: {
          buffer: READ_BUFFER,
          callback: (n: number, buf: Uint8Array): boolean => {
            sink((buf as Buffer).subarray(0, n));
            return true; // never pause: the load client consumes everything it is sent
          },
        },
      });
      let head: Buffer = Buffer.alloc(0);
      const timer = setTimeout(() => fail(new Error(`handshake timed out after ${opts.handshakeTimeoutMs ?? 10_000} ms`)), opts.handshakeTimeoutMs ?? 10_000);

      const cleanup = (): void => {
        clearTimeout(timer);
        sink = () => undefined;
        socket.off('error', fail);
        socket.off('close', onEarlyClose);
      };
      function fail(err: Error): void {
        cleanup();
        socket.destroy();
        reject(err);
      }
      const onEarlyClose = (): void => fail(new Error('connection closed during the handshake'));
      const onHead = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]); // copies out of the shared read buffer
        const end = head.indexOf(HEADER_END);
        if (end < 0) {
          if (head.length > 16 * 1024) fail(new Error('handshake response headers exceed 16 KiB'));
          return;
        }
        const lines = head.toString('latin1', 0, end).split('\r\n');
        const status = lines[0] ?? '';
        if (!/^HTTP\/1\.1 101\b/.test(status)) {
          const body = head
            .toString('utf8', end + 4, Math.min(head.length, end + 4 + 200))
            .replace(/\s+/g, ' ')
            .trim();
          fail(new Error(`upgrade refused: ${status}${body ? ` — ${body}` : ''}`));
          return;
        }
        const headers = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        }
        if (headers.get('sec-websocket-accept') !== expectedAccept) {
          fail(new Error('handshake failed: wrong Sec-WebSocket-Accept'));
          return;
        }
        const selected = headers.get('sec-websocket-protocol');
        if (selected !== undefined && selected !== opts.protocol) {
          fail(new Error(`server selected subprotocol "${selected}", requested "${opts.protocol ?? ''}"`));
          return;
        }
        cleanup();
        const client = new RawWsClient(socket, opts, selected, head.subarray(end + 4));
        sink = (data) => client.onData(data);
        resolve(client);
      };

      socket.on('error', fail);
      socket.on('close', onEarlyClose);
      socket.write(
        `GET ${opts.path} HTTP/1.1\r\n` +
          `Host: ${opts.host}:${opts.port}\r\n` +
          'Upgrade: websocket\r\n' +
          'Connection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${key}\r\n` +
          'Sec-WebSocket-Version: 13\r\n' +
          (opts.protocol ? `Sec-WebSocket-Protocol: ${opts.protocol}\r\n` : '') +
          '\r\n',
      );
    });
  }

  get isOpen(): boolean {
    return !this.closed && !this.closing;
  }

  /** Starts the closing handshake (1000) and destroys the socket if the server does not finish it. */
  close(timeoutMs = 1000): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.closedByUs = true;
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    this.send(OP_CLOSE, code);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), timeoutMs).unref();
  }

  /**
   * Sends a short text message (at most 125 bytes, e.g. Socket.IO's `40` connect and `3` pong).
   * Plain-dialect clients never send data.
   */
  sendText(payload: Buffer): void {
    if (payload.length > 125) throw new RangeError(`sendText supports at most 125 bytes, got ${payload.length}`);
    if (!this.closed && !this.closing) this.send(OP_TEXT, payload);
  }

  /** Drops the connection without a closing handshake. */
  destroy(): void {
    this.closing = true;
    this.closedByUs = true;
    this.socket.destroy();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.onClose?.({ code: this.closeCode, error: this.error, byUs: this.closedByUs });
  }

  private onData(chunk: Buffer): void {
    const receivedAt = performance.timeOrigin + performance.now();
    let buf = chunk;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let off = 0;
    const len = buf.length;
    while (len - off >= 2) {
      const b0 = buf[off];
      const b1 = buf[off + 1];
      if (b1 & 0x80) return this.protocolError('server frames must not be masked'); // RFC 6455 §5.1
      if (b0 & 0x70) return this.protocolError('reserved bits set without a negotiated extension');
      let size = b1 & 0x7f;
      let header = 2;
      if (size === 126) {
        if (len - off < 4) break;
        size = buf.readUInt16BE(off + 2);
        header = 4;
      } else if (size === 127) {
        if (len - off < 10) break;
        size = buf.readUInt32BE(off + 2) * 0x1_0000_0000 + buf.readUInt32BE(off + 6);
        header = 10;
      }
      if (size > MAX_PAYLOAD) return this.protocolError(`frame of ${size} bytes exceeds ${MAX_PAYLOAD}`);
      if (len - off - header < size) break;
      const payload = buf.subarray(off + header, off + header + size);
      off += header + size;
      this.onFrame(b0 & 0x80, b0 & 0x0f, payload, receivedAt);
      if (this.closed) return;
    }
    // Keep a partial frame; copy it so the rest of a large read buffer can be freed.
    if (off < len) this.pending = Buffer.from(buf.subarray(off));
  }

  private onFrame(fin: number, opcode: number, payload: Buffer, receivedAt: number): void {
    switch (opcode) {
      case OP_TEXT:
      case OP_BINARY:
        if (this.fragments.length > 0) return this.protocolError('new data frame inside a fragmented message');
        if (fin) {
          this.opts.onMessage(payload, opcode === OP_BINARY, receivedAt);
        } else {
          this.fragmentOpcode = opcode;
          this.pushFragment(payload);
        }
        return;
      case OP_CONTINUATION: {
        if (this.fragments.length === 0) return this.protocolError('continuation frame without a start');
        this.pushFragment(payload);
        if (fin) {
          const whole = Buffer.concat(this.fragments, this.fragmentBytes);
          this.fragments = [];
          this.fragmentBytes = 0;
          this.opts.onMessage(whole, this.fragmentOpcode === OP_BINARY, receivedAt);
        }
        return;
      }
      case OP_PING:
        if (!this.closing) this.send(OP_PONG, payload);
        return;
      case OP_PONG:
        return;
      case OP_CLOSE:
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        if (!this.closing) {
          this.closing = true;
          this.send(OP_CLOSE, payload.subarray(0, 2));
        }
        this.socket.end();
        return;
      default:
        return this.protocolError(`unknown opcode 0x${opcode.toString(16)}`);
    }
  }

  private pushFragment(payload: Buffer): void {
    // Copy: the payload views a read buffer that the next read may replace.
    this.fragments.push(Buffer.from(payload));
    this.fragmentBytes += payload.length;
    if (this.fragmentBytes > MAX_PAYLOAD) this.protocolError(`fragmented message exceeds ${MAX_PAYLOAD} bytes`);
  }

  /** Client frames must be masked (RFC 6455 §5.3); only control frames (≤ 125 bytes) are sent. */
  private send(opcode: number, payload: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const frame = Buffer.allocUnsafe(6 + payload.length);
    frame[0] = 0x80 | opcode;
    frame[1] = 0x80 | payload.length;
    randomFillSync(frame, 2, 4);
    for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i] ^ frame[2 + (i & 3)];
    this.socket.write(frame);
  }

  private protocolError(message: string): void {
    this.error ??= new Error(`protocol error: ${message}`);
    this.closing = true;
    this.socket.destroy();
    this.onSocketClose();
  }
}
