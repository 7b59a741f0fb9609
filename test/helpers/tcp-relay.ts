/**
 * A test-owned TCP relay on 127.0.0.1 (port 0) that forwards every connection to a target port:
 * put it in a path (a Mosquitto bridge, a client in front of a gateway) to cut that path exactly.
 * `cut()` destroys every relayed socket and refuses new connections (accepted, then destroyed at
 * once) until `restore()`; `drop()` destroys the current ones only (a blip: reconnects go through);
 * `retarget(port)` sends new connections elsewhere (a load balancer moving clients to another node).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';

export interface TcpRelay {
  readonly port: number;
  /** host:port of the relay, for a Mosquitto `address` line. */
  readonly address: string;
  /** Connections forwarded to the target so far (each a connected pair). */
  readonly forwarded: number;
  /** Pairs open now. */
  readonly open: number;
  cut(): void;
  restore(): void;
  drop(): void;
  retarget(port: number): void;
  /** Resolves once a connection accepted after this call is connected to the target. */
  nextForward(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpRelay(targetPort: number): Promise<TcpRelay> {
  let target = targetPort;
  let refusing = false;
  let forwarded = 0;
  const pairs = new Set<{ inbound: Socket; outbound: Socket }>();
  const accepted = new Set<Socket>();
  let waiters: (() => void)[] = [];

  const server: Server = createServer((inbound) => {
    accepted.add(inbound);
    inbound.once('close', () => accepted.delete(inbound));
    inbound.on('error', () => undefined);
    if (refusing) {
      inbound.destroy();
      return;
    }
    inbound.pause();
    const outbound = connect(target, '127.0.0.1');
    const pair = { inbound, outbound };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    outbound.on('error', end);
    inbound.on('error', end);
    outbound.once('close', end);
    inbound.once('close', end);
    outbound.once('connect', () => {
      if (refusing) return end();
      inbound.setNoDelay(true);
      outbound.setNoDelay(true);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      inbound.resume();
      forwarded++;
      const ready = waiters;
      waiters = [];
      for (const w of ready) w();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  const destroyAll = () => {
    for (const { inbound, outbound } of pairs) {
      inbound.destroy();
      outbound.destroy();
    }
    pairs.clear();
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    refusing = true;
    destroyAll();
    for (const s of accepted) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  onTestFinished(close);

  return {
    port,
    address: `127.0.0.1:${port}`,
    get forwarded() {
      return forwarded;
    },
    get open() {
      return pairs.size;
    },
    cut() {
      refusing = true;
      destroyAll();
    },
    restore() {
      refusing = false;
    },
    drop: destroyAll,
    retarget(next) {
      target = next;
    },
    nextForward(timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== done);
          reject(new Error(`no connection forwarded through the relay on ${port} to ${target} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.push(done);
      });
    },
    close,
  };
}
